"""The Faust app factory: ``create_app(settings)`` builds the whole worker, connects nothing.

The faust app hosts the worker: web server and API, timers, start-up and shutdown,
topic declarations. It runs no agents and no faust consumer: ingest and score run on
one plain aiokafka consumer loop (:mod:`streams.pipeline.loop`) started with the app, and
the checkpoint timer flushes, saves shards and commits (:mod:`streams.state.shards`), to the
Kafka changelog (:mod:`streams.state.changelog`) and local files, or local files only
(``processing.checkpoint_store``). Beside them: the alert store's feeder and retention
(:mod:`streams.alertstore`), and the web server's roles (:mod:`streams.web.auth`) and
forwarded entity lookups (:mod:`streams.web.entities`).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import faust
import prometheus_client
from faust.app.base import BootStrategy
from faust.web.base import BlueprintManager, Web

from monitor.config import Settings
from monitor.detection.entities import FAMILIES
from monitor.outputs.metrics import Metrics
from monitor.outputs.store import AlertStore, backend_for
from monitor.runtime import gcpolicy
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import model_version
from streams.alertstore import Retention, StoreFeeder
from streams.caselabels import SETTLE_INTERVAL_SECONDS, CaseLabels
from streams.connection import faust_credentials
from streams.lag import LagProbe
from streams.pipeline.loop import Pipeline
from streams.state.changelog import KafkaChangelog
from streams.state.shards import ShardManager
from streams.topics import declare
from streams.web import auth
from streams.web.api import register_api
from streams.web.cases import register_cases
from streams.web.console import register_console
from streams.web.entities import Forwarder, register_entities
from streams.web.health import register_views
from streams.web.owners import AdvertisingAssignor, advertised_url
from streams.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(",") if server)


class _Boot(BootStrategy):
    """faust's services minus its consumer, conductor and tables (the pipeline consumes)."""

    enable_kafka_consumer = False


class _App(faust.App):
    BootStrategy = _Boot

    def _new_web(self) -> Web:
        """The web server with the project's routes only: faust's own views (``/``,
        ``/router``, ``/table``, ``/graph``, statistics) would answer without a token."""
        server = super()._new_web()
        server.blueprints = BlueprintManager([])
        return server


def create_app(settings: Settings) -> faust.App:
    """Build the monitor's Faust app from validated settings."""
    app = _App(
        settings.kafka.app_id,
        datadir=str(settings.processing.state_dir / "faust"),
        broker=_broker_url(settings.kafka.bootstrap_servers),
        broker_credentials=faust_credentials(settings.kafka),
        autodiscover=False,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_disable_leader=True,
        producer_acks=-1,  # faust's producer only sends the API's labels
        producer_linger=0.005,
        web_enabled=True,
        web_host=settings.web.host,
        web_bind=settings.web.host,
        web_port=settings.web.port,
        web_in_thread=False,
    )
    declare(app, settings)
    # No *_created series: noise for dashboards. (The client leaves this function untyped.)
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    changelog = (KafkaChangelog(settings)
                 if settings.processing.checkpoint_store == "kafka" else None)
    manager = ShardManager(settings, FileCheckpointStore(settings.processing.state_dir),
                           changelog)
    metrics = Metrics(receivers=[r.name for r in settings.webhooks.receivers],
                      families=FAMILIES)
    metrics.model.info({"model_version": model_version(settings)})
    metrics.watch_shards(lambda: list(manager.shards.values()))
    tokens = auth.tokens_from_env(settings)  # a malformed variable stops the start
    store = AlertStore(backend_for(settings))
    assignor = AdvertisingAssignor(advertised_url(settings), settings.kafka.topic("routed"))
    pipeline = Pipeline(settings, manager, metrics, assignor)
    forwarder = Forwarder(settings, metrics)
    _register_pipeline(app, settings, pipeline, metrics)
    _register_services(app, settings, metrics, pipeline)
    _register_store(app, settings, metrics, store, forwarder)
    register_views(app, manager, metrics, pipeline, settings.api.metrics_token_env)
    register_api(app, settings, store, metrics)
    register_entities(app, settings, manager, pipeline, assignor, forwarder)
    register_console(app)
    register_cases(app, settings, store, _case_labels(app, settings, store, metrics), metrics)
    auth.install(app, tokens, metrics)
    return app


def _register_pipeline(app: faust.App, settings: Settings, pipeline: Pipeline,
                       metrics: Metrics) -> None:
    """The consumer loop starts with the app and stops (final checkpoint) before it."""
    async def start_pipeline() -> None:
        pipeline.on_crash = app.crash
        gcpolicy.configure()
        await pipeline.start()

    async def checkpoint() -> None:
        # One shard per tick: pickling takes the worker's time, and grows with the state.
        if await pipeline.checkpoint(shards=1):
            metrics.checkpoint_seconds.observe(pipeline.manager.last_checkpoint_seconds)
            metrics.checkpoint_pause_seconds.observe(pipeline.manager.last_pause_seconds)
        gcpolicy.settle()  # state kept since the last tick leaves the collector's walks

    async def stop_pipeline(sender: Any, **_: Any) -> None:
        await pipeline.stop()

    app.task(start_pipeline)
    app.timer(settings.processing.checkpoint_interval_seconds, name="checkpoint")(checkpoint)
    # mode types signal receivers narrowly; this takes the documented arguments.
    app.on_before_shutdown.connect(cast(Any, stop_pipeline))


def _register_services(app: faust.App, settings: Settings, metrics: Metrics,
                       pipeline: Pipeline) -> None:
    """Webhook delivery and the consumer-lag probe: started with the app, stopped before it."""
    dispatcher = None
    if settings.webhooks.enabled and settings.webhooks.receivers:
        dispatcher = WebhookDispatcher(settings, metrics)
    probe = LagProbe(settings, metrics)
    started = False

    async def start_services() -> None:
        nonlocal started
        await probe.start()
        if dispatcher is not None:
            await dispatcher.start()
        started = True

    async def measure_lag() -> None:
        if not started:
            return
        await probe.export("worker", settings.kafka.app_id, pipeline.assignment())
        for lane in dispatcher.lanes if dispatcher is not None else ():
            await probe.export(f"webhooks-{lane.name}", lane.group, lane.assignment())

    async def stop_services(sender: Any, **_: Any) -> None:
        if dispatcher is not None:
            await dispatcher.stop()
        await probe.stop()

    app.task(start_services)
    app.timer(settings.metrics.consumer_lag_interval_seconds, name="consumer_lag")(measure_lag)
    app.on_before_shutdown.connect(cast(Any, stop_services))


def _register_store(app: faust.App, settings: Settings, metrics: Metrics, store: AlertStore,
                    forwarder: Forwarder) -> None:
    """The alert store (opened before the API answers), its feeder and retention, and the
    client that forwards entity lookups: started with the app, stopped before it."""
    feeder = StoreFeeder(settings, store, metrics) if settings.store.consume else None
    retention = Retention(settings, store, metrics)

    async def start_store() -> None:
        await store.open()  # run_worker created the schema already (store_preflight)
        await forwarder.start()
        if feeder is not None:
            await feeder.start()
        await retention.run_once()  # and the store's size in the metrics from the start

    async def prune() -> None:
        await retention.run_once()

    async def stop_store(sender: Any, **_: Any) -> None:
        if feeder is not None:
            await feeder.stop()
        await forwarder.stop()
        await store.close()

    app.task(start_store)
    app.timer(settings.store.retention_interval_seconds, name="alert_store_retention")(prune)
    app.on_before_shutdown.connect(cast(Any, stop_store))


def _case_labels(app: faust.App, settings: Settings, store: AlertStore,
                 metrics: Metrics) -> CaseLabels:
    """The writer of case decisions' labels and its settle pass (streams/caselabels.py):
    started with the app, stopped before it."""
    labels = CaseLabels(settings, store, metrics)

    async def start_labels() -> None:
        await labels.start()

    async def settle() -> None:
        if labels.producer is not None:
            await labels.settle_pending()

    async def stop_labels(sender: Any, **_: Any) -> None:
        await labels.stop()

    app.task(start_labels)
    app.timer(SETTLE_INTERVAL_SECONDS, name="case_labels")(settle)
    app.on_before_shutdown.connect(cast(Any, stop_labels))
    return labels

