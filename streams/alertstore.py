"""The alert store's feeder: a consumer of the alerts topic that writes every alert into
the store (:mod:`monitor.outputs.store`), and the store's retention.

Where a batch's alerts go, its next offsets go too, in the same database transaction:
the store, not Kafka, knows where to resume, so nothing is lost or stored twice across
restarts, crashes and rebalances (and a repeat of an ``alert_id`` is ignored anyway).

* **SQLite** (one file per worker): the feeder reads *every* partition of the alerts
  topic, by manual assignment (no consumer group), so each worker's file holds every
  alert of the deployment and ``GET /alerts`` on any worker answers for all.
* **PostgreSQL** (one database for the deployment): the feeders of all workers share the
  group ``<app_id><store.group_suffix>``, each writing the partitions it is assigned;
  after a rebalance each resumes at the offsets the database holds.

A record that is not an alert (or larger than ``store.max_alert_bytes``) is counted in
``fraudmon_alert_store_skipped_total`` and stepped over. A database that fails holds the
feeder back (the batch is read again after ``store.retry_seconds``), never the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitor.errors import StoreUnavailable
from monitor.outputs.store.record import StoredAlert, stored_alert
from streams.connection import client_options

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from monitor.outputs.store import AlertStore

logger = logging.getLogger(__name__)

LOCAL_CONSUMER = "local"
"""The offsets' consumer name in a worker's own SQLite file."""
PARTITIONS_REFRESH_SECONDS = 30.0
POLL_MS = 500


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, feeder: StoreFeeder) -> None:
        self.feeder = feeder

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.feeder.unpositioned.difference_update(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.feeder.position(assigned)


class StoreFeeder:
    """Reads the alerts topic into ``store``: :meth:`start`, then :meth:`stop`."""

    def __init__(self, settings: Settings, store: AlertStore, metrics: Metrics) -> None:
        self.settings, self.store, self.metrics = settings, store, metrics
        self.config = settings.store
        self.topic = settings.kafka.topic("alerts")
        self.shared = self.config.backend == "postgresql"
        self.group = (settings.kafka.app_id + self.config.group_suffix
                      if self.shared else None)
        self.name = self.group or LOCAL_CONSUMER
        self.consumer: AIOKafkaConsumer | None = None
        self.admin: AIOKafkaAdminClient | None = None  # finds the partitions (SQLite)
        self.unpositioned: set[TopicPartition] = set()
        self.task: asyncio.Task[None] | None = None
        self.written = 0
        self.next_offsets: dict[int, int] = {}

    async def start(self) -> None:
        kafka = self.settings.kafka
        self.consumer = AIOKafkaConsumer(
            **client_options(kafka), group_id=self.group, client_id=f"{kafka.app_id}-store",
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=max(1 << 20, self.config.max_alert_bytes * 4),
            session_timeout_ms=int(kafka.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_seconds * 1000))
        await self.consumer.start()
        if self.shared:
            self.consumer.subscribe([self.topic], listener=_Listener(self))
        else:
            self.admin = AIOKafkaAdminClient(**client_options(kafka))
            await self.admin.start()
        self.task = asyncio.create_task(self._run(), name="fraudmon-alert-store")
        logger.info("alert store: feeding %s from %s (%s)", self.store.backend.describe(),
                    self.topic, f"group {self.group}" if self.shared else "every partition")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.consumer is not None:
            await self.consumer.stop()
        if self.admin is not None:
            await self.admin.close()

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def position(self, assigned: list[TopicPartition]) -> None:
        """Read nothing of ``assigned`` until each is moved to the store's offset."""
        assert self.consumer is not None  # noqa: S101 - started
        self.unpositioned.update(assigned)
        self.consumer.pause(*assigned)

    async def _seek_to_stored(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started
        stored = await self.store.offsets(self.name, self.topic)
        owned = self.consumer.assignment()
        for tp in sorted(self.unpositioned & owned):
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)
            self.consumer.resume(tp)
        self.unpositioned.clear()

    async def _discover(self) -> None:
        """Manual assignment: every partition of the topic, new ones included."""
        assert self.consumer is not None and self.admin is not None  # noqa: S101 - started
        described = await self.admin.describe_topics([self.topic])
        wanted = {TopicPartition(self.topic, int(p["partition"]))
                  for topic in described if topic.get("topic") == self.topic
                  and not topic.get("error_code") for p in topic.get("partitions", ())}
        have = self.consumer.assignment()
        if wanted - have:
            self.consumer.assign(sorted(wanted))
            self.unpositioned |= wanted - have
            # Known partitions keep their positions: assign() forgets them, so seek again.
            self.unpositioned |= have
            self.consumer.pause(*wanted)

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None  # noqa: S101 - started
        discovered = 0.0
        while True:
            try:
                if not self.shared and time.monotonic() - discovered > \
                        PARTITIONS_REFRESH_SECONDS:
                    await self._discover()
                    discovered = time.monotonic()
                if self.unpositioned:
                    await self._seek_to_stored()
                batch = await consumer.getmany(timeout_ms=POLL_MS,
                                               max_records=self.config.batch_size)
                if batch:
                    await self._write(batch)
                self._export_lag()
            except StoreUnavailable as exc:
                self.metrics.store_failures.labels("write").inc()
                logger.warning("alert store: %s; retrying in %.0f s", exc,
                               self.config.retry_seconds)
                await asyncio.sleep(self.config.retry_seconds)  # backoff, not readiness
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alert store: the feeder failed; retrying")
                self.metrics.store_failures.labels("write").inc()
                await asyncio.sleep(self.config.retry_seconds)

    async def _write(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
                     ) -> None:
        assert self.consumer is not None  # noqa: S101 - started
        alerts: list[StoredAlert] = []
        offsets: dict[int, int] = {}
        firsts: dict[TopicPartition, int] = {}
        for tp, messages in batch.items():
            for message in messages:
                firsts.setdefault(tp, message.offset)
                found = stored_alert(message.value, self.config.max_alert_bytes)
                if isinstance(found, str):
                    self.metrics.store_skipped.labels(found).inc()
                    logger.warning("alert store: %s[%d]@%d skipped (%s)", tp.topic,
                                   tp.partition, message.offset, found)
                else:
                    alerts.append(found)
                offsets[tp.partition] = message.offset + 1
        try:
            added = await self.store.write(alerts, offsets, self.name, self.topic)
        except Exception:
            for tp, first in firsts.items():  # read again once the database is back
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, first)
            raise
        self.written += added
        self.next_offsets.update(offsets)
        self.metrics.store_written.inc(added)

    def _export_lag(self) -> None:
        """Records behind the end of each partition, from the offsets last stored."""
        assert self.consumer is not None  # noqa: S101 - started
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            stored = self.next_offsets.get(tp.partition)
            if high is not None and stored is not None:
                self.metrics.store_lag.labels(str(tp.partition)).set(max(0, high - stored))


async def store_preflight(settings: Settings) -> None:
    """Connect to the store once and create its tables if missing; ``StoreUnavailable``
    with one line naming the cause (a wrong password, no such database, a bad path)."""
    from monitor.outputs.store import AlertStore, backend_for

    if settings.store.backend == "sqlite":
        settings.processing.state_dir.mkdir(parents=True, exist_ok=True)
    store = AlertStore(backend_for(settings), readers=1)
    try:
        await store.open()
    finally:
        await store.close()


class Retention:
    """Deletes what ``store.retention_days`` and ``store.max_alerts`` let go, every
    ``store.retention_interval_seconds``, off the event loop (the store's writer thread,
    a chunk at a time)."""

    def __init__(self, settings: Settings, store: AlertStore, metrics: Metrics) -> None:
        self.config, self.store, self.metrics = settings.store, store, metrics
        metrics.store_alerts_limit.set(self.config.max_alerts or 0)

    async def run_once(self) -> int:
        days = self.config.retention_days
        older_than = (round((time.time() - days * 86_400) * 1_000_000)
                      if days is not None else None)
        try:
            pruned = await self.store.prune(older_than, self.config.max_alerts)
            self.metrics.store_pruned.inc(pruned)
            await self.store.maintain()
            self.metrics.store_alerts.set(await self.store.count())
        except StoreUnavailable as exc:
            self.metrics.store_failures.labels("retention").inc()
            logger.warning("alert store retention: %s", exc)
            return 0
        if pruned:
            logger.info("alert store retention: %d alerts deleted", pruned)
        return pruned


def run_alert_store(settings: Settings) -> int:
    """``fraudmon alert-store``: the feeder and retention alone, until SIGTERM or SIGINT
    (workers then run with ``store.consume: false``)."""
    import signal

    from monitor.outputs.metrics import Metrics
    from monitor.outputs.store import AlertStore, backend_for
    from streams.connection import preflight

    async def serve() -> None:
        await preflight(settings.kafka)
        await store_preflight(settings)
        store = AlertStore(backend_for(settings))
        metrics = Metrics()
        await store.open()
        feeder = StoreFeeder(settings, store, metrics)
        retention = Retention(settings, store, metrics)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await feeder.start()
        try:
            while not stop.is_set():
                await retention.run_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(),
                                           settings.store.retention_interval_seconds)
        finally:
            await feeder.stop()
            await store.close()
            logger.info("alert store: stopped after %d new alerts", feeder.written)

    asyncio.run(serve())
    return 0
