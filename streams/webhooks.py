"""Webhook delivery from the alerts topic, a consumer group per receiver (a durable outbox).

Scoring writes alerts to Kafka and never waits for a receiver. Each receiver has a lane:
a consumer of the alerts topic in group ``<app_id><group_suffix>-<receiver>``, an
:class:`~monitor.outputs.webhooks.outbox.Outbox` and an in-flight limit of its own. A lane
commits only offsets whose deliveries are all settled (delivered or dead-lettered to
``webhook-dead-letter``), with its progress (attempts made, a 410 Gone) in the commit's
metadata (:mod:`monitor.outputs.webhooks.progress`). A dead receiver therefore holds back
only its own lane, once ``max_in_flight`` of its alerts wait; the other receivers go on;
a restart resumes at the first unsettled alert, with the attempts already made.

Before lanes, one group ``<app_id><group_suffix>`` served every receiver: a lane with no
commit of its own starts where that group had got to, so an upgrade neither redelivers
nor skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from monitor.config import ReceiverSettings, Settings, secret_from_env
from monitor.errors import ConfigError
from monitor.outputs.metrics import Metrics
from monitor.outputs.webhooks.outbox import Outbox
from monitor.outputs.webhooks.progress import Progress, decode, encode, fingerprint
from monitor.outputs.webhooks.retry import Backoff
from monitor.outputs.webhooks.signing import parse_secrets
from monitor.outputs.webhooks.sink import WebhookSink, http_client
from streams.connection import client_options

logger = logging.getLogger(__name__)


def receiver_keys(settings: Settings) -> dict[str, list[bytes]]:
    """Receiver name -> its signing keys, from the environment; ``ConfigError`` if missing."""
    keys = {}
    for receiver in settings.webhooks.receivers:
        secret = secret_from_env(receiver.secret_env)
        if secret is None:
            raise ConfigError(f"webhooks.receivers.{receiver.name}: environment variable "
                              f"{receiver.secret_env} is not set")
        try:
            keys[receiver.name] = parse_secrets(secret.get_secret_value())
        except ValueError as exc:
            raise ConfigError(f"webhooks.receivers.{receiver.name}: {receiver.secret_env}: "
                              f"{exc}") from None
    return keys


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lane: _Lane) -> None:
        self.lane = lane

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in revoked}
        await self.lane.commit(gone)
        await self.lane.outbox.revoke(gone)
        for partition in gone:
            self.lane.committed.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            await self.lane.resume_from(assigned)
        except KafkaError as exc:  # delivery goes on; attempts count from zero again
            logger.warning("webhooks %s: reading back delivery progress failed: %s",
                           self.lane.name, exc)


class _Lane:
    """One receiver's delivery: its consumer group, outbox, in-flight limit and commits."""

    def __init__(self, dispatcher: WebhookDispatcher, receiver: ReceiverSettings,
                 sink: WebhookSink) -> None:
        self.dispatcher = dispatcher
        self.name = receiver.name
        self.fingerprint = fingerprint(receiver)
        config = dispatcher.config
        self.group = f"{dispatcher.settings.kafka.app_id}{config.group_suffix}-{receiver.name}"
        self.outbox = Outbox([sink], dispatcher.dead_letter, dispatcher.metrics,
                             Backoff(config.backoff_initial_seconds, config.backoff_max_seconds,
                                     config.max_retry_after_seconds),
                             config.max_attempts, config.concurrency)
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[None] | None = None
        self.committed: dict[int, tuple[int, str]] = {}  # partition -> (offset, metadata)

    async def start(self) -> None:
        kafka, config = self.dispatcher.settings.kafka, self.dispatcher.config
        self.consumer = AIOKafkaConsumer(
            **client_options(kafka), group_id=self.group,
            enable_auto_commit=False, auto_offset_reset=config.start_from,
            session_timeout_ms=int(kafka.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_seconds * 1000))
        self.consumer.subscribe([self.dispatcher.topic], listener=_Listener(self))
        await self.consumer.start()
        self.task = asyncio.create_task(self._run(), name=f"webhooks {self.name}")

    async def stop(self) -> None:
        """Commit what is settled, cancel the rest (redelivered after a restart), close."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.commit()
        await self.outbox.close()
        if self.consumer is not None:
            await self.consumer.stop()

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    async def resume_from(self, assigned: list[TopicPartition]) -> None:
        """Read back the progress committed with ``assigned``; a partition this lane never
        committed starts where the shared group of earlier versions had got to."""
        if not assigned:
            return
        admin = self.dispatcher.admin
        assert admin is not None and self.consumer is not None  # noqa: S101 - started
        found = await admin.list_consumer_group_offsets(self.group, partitions=assigned)
        for tp in assigned:
            mark = found.get(tp)
            if mark is None or mark.offset < 0:
                continue
            progress = decode(mark.metadata)
            self.committed[tp.partition] = (mark.offset, mark.metadata or "")
            self.outbox.restore(tp.partition, progress.attempts)
            if progress.gone == self.fingerprint:
                self.outbox.disable(self.name, "it answered 410 Gone earlier, and its "
                                    "configuration has not changed since")
        fresh = [tp for tp in assigned if tp.partition not in self.committed]
        if fresh:
            legacy = self.dispatcher.legacy_group
            earlier = await admin.list_consumer_group_offsets(legacy, partitions=fresh)
            for tp in fresh:
                mark = earlier.get(tp)
                if mark is not None and mark.offset >= 0:
                    self.consumer.seek(tp, mark.offset)
                    logger.info("webhooks %s: partition %d starts at %d, where group %s "
                                "had got to", self.name, tp.partition, mark.offset, legacy)
        logger.info("webhooks %s: delivering from %s", self.name,
                    sorted(tp.partition for tp in assigned))

    async def commit(self, only: set[int] | None = None) -> None:
        """Commit settled offsets, with the progress, where either changed since the last."""
        assert self.consumer is not None  # noqa: S101 - started
        owned = {tp.partition for tp in self.consumer.assignment()}
        gone = self.fingerprint if self.name in self.outbox.disabled else None
        offsets = {}
        for partition, offset in self.outbox.committable().items():
            if partition not in owned or (only is not None and partition not in only):
                continue
            attempts = {at: n for at, n in self.outbox.progress(partition).items()
                        if at >= offset}
            mark = (offset, encode(Progress(attempts, gone)))
            if mark != self.committed.get(partition):
                offsets[TopicPartition(self.dispatcher.topic, partition)] = mark
        if offsets:
            await self.consumer.commit(
                {tp: OffsetAndMetadata(*mark) for tp, mark in offsets.items()})
            self.committed.update({tp.partition: mark for tp, mark in offsets.items()})

    async def _run(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started
        consumer, outbox, limit = self.consumer, self.outbox, self.dispatcher.config.max_in_flight
        interval = self.dispatcher.config.commit_interval_seconds
        last_commit = time.monotonic()
        while True:
            assigned = consumer.assignment()
            if outbox.in_flight >= limit:
                consumer.pause(*assigned)
            else:
                consumer.resume(*assigned)
            batch = await consumer.getmany(timeout_ms=200, max_records=200)
            for tp, messages in batch.items():
                for message in messages:
                    alert = _alert(message.value)
                    if alert is None:
                        logger.warning("webhooks: %s[%d]@%d is not an alert; skipped",
                                       tp.topic, tp.partition, message.offset)
                        outbox.skip(tp.partition, message.offset)
                    else:
                        outbox.submit(tp.partition, message.offset, alert)
            if time.monotonic() - last_commit >= interval:
                try:
                    await self.commit()
                except Exception:  # a failed commit is retried at the next interval
                    logger.exception("webhooks %s: committing offsets failed", self.name)
                last_commit = time.monotonic()


class WebhookDispatcher:
    """The shared HTTP client, dead-letter producer and admin client, and a lane per
    receiver: opened by :meth:`start`, closed by :meth:`stop`."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.config = settings.webhooks
        self.topic = settings.kafka.topic("alerts")
        self.dead_topic = settings.kafka.topic("webhook_dead_letter")
        self.legacy_group = settings.kafka.app_id + settings.webhooks.group_suffix
        self.keys = receiver_keys(settings)  # fail at start-up, not at the first alert
        self.client: httpx.AsyncClient | None = None
        self.producer: AIOKafkaProducer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self.lanes: list[_Lane] = []

    async def start(self) -> None:
        kafka = self.settings.kafka
        self.client = http_client(self.config)
        self.producer = AIOKafkaProducer(**client_options(kafka), acks="all",
                                         enable_idempotence=True)
        await self.producer.start()
        self.admin = AIOKafkaAdminClient(**client_options(kafka))
        await self.admin.start()
        self.lanes = [_Lane(self, receiver,
                            WebhookSink(receiver, self.keys[receiver.name], self.client))
                      for receiver in self.config.receivers]
        for lane in self.lanes:
            await lane.start()
        logger.info("webhooks: %d receivers, groups %s", len(self.lanes),
                    ", ".join(lane.group for lane in self.lanes))

    async def stop(self) -> None:
        for lane in self.lanes:
            await lane.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.admin is not None:
            await self.admin.close()
        if self.client is not None:
            await self.client.aclose()

    async def dead_letter(self, record: dict[str, Any]) -> None:
        assert self.producer is not None  # noqa: S101 - started
        key = str(record.get("alert_id") or "").encode() or None
        await self.producer.send_and_wait(self.dead_topic, orjson.dumps(record), key=key)


def _alert(value: bytes | None) -> dict[str, Any] | None:
    try:
        alert = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    return alert if isinstance(alert, dict) and isinstance(alert.get("alert_id"), str) else None
