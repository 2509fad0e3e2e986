"""The Faust app factory: ``create_app(settings)`` builds the whole worker, connects nothing.

Two agents, both at concurrency 1 (faust-streaming #606: with more, committed offsets
can pass an event still in flight):

* ``ingest`` reads the input topics, validates each message against the contract,
  dead-letters what breaks it, and routes one envelope per entity view to the routed
  topic, on the partition (shard) that owns the entity. Stateless, at-least-once:
  faust flushes the producer before it commits.
* ``score`` folds each routed partition into its :class:`~monitor.shard.Shard` and
  emits decisions and alerts. Acks are manual and released only by a checkpoint
  (see :mod:`streams.shards`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import faust
import orjson
import prometheus_client
from aiokafka import TopicPartition

from monitor import envelope, events
from monitor.alertstore import AlertStore
from monitor.checkpoint import FileCheckpointStore
from monitor.config import Settings
from monitor.entities import FAMILIES
from monitor.errors import CheckpointError, InvalidEvent
from monitor.metrics import Metrics
from monitor.records import dead_letter
from monitor.routing import placements, shard_of
from monitor.shard import model_version
from streams.api import register_api
from streams.lag import LagProbe
from streams.shards import ShardManager
from streams.topics import Topics, declare, kind_by_topic
from streams.web import register_views
from streams.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(",") if server)


def create_app(settings: Settings) -> faust.App:
    """Build the monitor's Faust app from validated settings."""
    app = faust.App(
        settings.kafka.app_id,
        broker=_broker_url(settings.kafka.bootstrap_servers),
        autodiscover=False,
        store="memory://",
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        producer_acks=-1,
        producer_linger=0.005,
        broker_session_timeout=settings.kafka.session_timeout_seconds,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_seconds,
        web_enabled=True,
        web_host=settings.web.host,
        web_bind=settings.web.host,
        web_port=settings.web.port,
        web_in_thread=False,
    )
    topics = declare(app, settings)
    # No *_created series: noise for dashboards. (The client leaves this function untyped.)
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    manager = ShardManager(settings, FileCheckpointStore(settings.processing.state_dir))
    metrics = Metrics(receivers=[r.name for r in settings.webhooks.receivers],
                      families=FAMILIES)
    metrics.model.info({"model_version": model_version(settings)})
    metrics.watch_shards(lambda: list(manager.shards.values()))
    store = AlertStore(settings.api.recent_alerts)
    _register_ingest(app, settings, topics, metrics)
    _register_score(app, settings, topics, manager, metrics, store)
    _register_services(app, settings, metrics)
    register_views(app, manager, metrics)
    register_api(app, settings, manager, store)
    return app


def _register_services(app: faust.App, settings: Settings, metrics: Metrics) -> None:
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
        if not started or app.consumer is None:
            return
        assigned = {TopicPartition(tp.topic, tp.partition) for tp in app.consumer.assignment()}
        await probe.export("worker", settings.kafka.app_id, assigned)
        if dispatcher is not None:
            await probe.export("webhooks", dispatcher.group, dispatcher.assignment())

    async def stop_services(sender: Any, **_: Any) -> None:
        if dispatcher is not None:
            await dispatcher.stop()
        await probe.stop()

    app.task(start_services)
    app.timer(settings.metrics.consumer_lag_interval_seconds, name="consumer_lag")(measure_lag)
    app.on_before_shutdown.connect(cast(Any, stop_services))


async def _dead_letter(topics: Topics, key: bytes | None, payload: bytes | None,
                       message: Any, reason: str) -> None:
    record = dead_letter(payload, message.topic, message.partition, message.offset, reason)
    await topics.dead_letter.send(key=key, value=orjson.dumps(record))


async def _dead_letter_bug(topics: Topics, event: Any, stage: str, exc: Exception) -> None:
    """A record our own code failed on: log where (never the record), dead-letter it."""
    message = event.message
    logger.exception("%s %s[%d]@%d failed", stage, message.topic, message.partition,
                     message.offset)
    await _dead_letter(topics, event.key, event.value, message,
                       f"internal error while {stage}: {type(exc).__name__}")


def _register_ingest(app: faust.App, settings: Settings, topics: Topics,
                     metrics: Metrics) -> None:
    kinds = kind_by_topic(settings)
    partitions = settings.kafka.partitions
    max_bytes = settings.processing.max_event_bytes
    routed = settings.kafka.topic("routed")

    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            kind = kinds[message.topic]
            try:
                parsed = events.parse(kind, event.value, max_bytes=max_bytes)
            except InvalidEvent as exc:
                await _dead_letter(topics, event.key, event.value, message, exc.reason)
                metrics.dead_lettered[kind].inc()
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                await _dead_letter_bug(topics, event, "validating", exc)
                metrics.dead_lettered[kind].inc()
                continue
            metrics.valid[kind].inc()
            producer = app.producer
            for view, shard in placements(parsed, partitions):
                await producer.send(routed, view.key.encode(),
                                    envelope.encode(view, parsed, message.timestamp), shard,
                                    None, None)

    app.agent(topics.inputs, name="ingest", concurrency=1)(ingest)


def _register_score(app: faust.App, settings: Settings, topics: Topics,
                    manager: ShardManager, metrics: Metrics, store: AlertStore) -> None:
    routed_topic = settings.kafka.topic("routed")
    decisions_topic = settings.kafka.topic("decisions")
    alerts_topic = settings.kafka.topic("alerts")
    partitions = settings.kafka.partitions
    owned: set[int] = set()

    async def score(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            shard_id = message.partition
            if shard_id not in owned:
                continue  # revoked while buffered: its new owner will fold it
            async with manager.lock:
                try:
                    view, parsed, arrived = envelope.decode_with_arrival(event.value)
                except InvalidEvent as exc:
                    await _dead_letter(topics, event.key, event.value, message, exc.reason)
                    manager.skip(shard_id, (manual, event))
                    continue
                try:
                    shard = manager.shard(shard_id)
                    drift_before = dict(shard.drift_detections)
                    outcome = manager.process(shard_id, message.offset, view, parsed,
                                              (manual, event))
                except CheckpointError:
                    # Not the record's fault: stop here, unacked, rather than lose state.
                    logger.critical("shard %d cannot be restored; not consuming it", shard_id)
                    raise
                except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                    await _dead_letter_bug(topics, event, "scoring", exc)
                    manager.skip(shard_id, (manual, event))
                    continue
                if outcome is None:
                    continue
                if shard.drift_detections != drift_before:
                    for family, count in shard.drift_detections.items():
                        if count > drift_before.get(family, 0):
                            metrics.drifted(family, count - drift_before.get(family, 0))
                # Onward views first: in the routed log they then precede anything caused
                # by later events, as in replay (monitor.engine). Sent on the app's producer
                # directly (faust's Topic.send adds ~30 us a record): the same producer that
                # is flushed before every checkpoint and every offset commit.
                producer = app.producer
                for onward in outcome.forwards:
                    await producer.send(routed_topic, onward.key.encode(),
                                        envelope.encode(onward, parsed, arrived),
                                        shard_of(onward, partitions), None, None)
                if outcome.decision is not None:
                    await producer.send(decisions_topic, parsed.event_id.encode(),
                                        orjson.dumps(outcome.decision), None, None, None)
                    metrics.decided(parsed.kind, outcome.decision["scores"], arrived, parsed.ts,
                                    time.time())
                for alert in outcome.alerts:
                    await producer.send(alerts_topic, view.key.encode(), orjson.dumps(alert),
                                        None, None, None)
                    metrics.alert(alert["pattern"], alert["severity"])
                    store.put(alert, parsed.ts)

    async def flush() -> None:
        await app.producer.flush()

    async def ack(token: Any) -> None:
        stream, event = token
        await stream.ack(event)

    async def checkpoint() -> None:
        if await manager.checkpoint(flush, ack, only=set(owned)):
            metrics.checkpoint_seconds.observe(manager.last_checkpoint_seconds)

    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        owned.clear()
        owned.update(tp.partition for tp in assigned if tp.topic == routed_topic)
        logger.info("owning shards %s", sorted(owned))

    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == routed_topic}
        await manager.checkpoint(flush, ack, only=gone & owned)
        manager.release(gone)
        owned.difference_update(gone)

    async def on_shutdown(sender: Any, **_: Any) -> None:
        saved = await manager.checkpoint(flush, ack, only=set(owned))
        logger.info("final checkpoint: %d shards saved", saved)

    app.agent(topics.routed, name="score", concurrency=1)(score)
    app.timer(settings.processing.checkpoint_interval_seconds, name="checkpoint")(checkpoint)
    # mode types signal receivers narrowly; these take the documented arguments.
    app.on_partitions_assigned.connect(cast(Any, on_assigned))
    app.on_partitions_revoked.connect(cast(Any, on_revoked))
    app.on_before_shutdown.connect(cast(Any, on_shutdown))
