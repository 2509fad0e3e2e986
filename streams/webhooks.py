"""Webhook delivery from the alerts topic, in a consumer group of its own (a durable outbox).

Scoring writes alerts to Kafka and never waits for a receiver. This consumer reads the
alerts topic as ``<app_id><group_suffix>``, hands each alert to the
:class:`~monitor.outputs.webhooks.outbox.Outbox`, and commits only offsets whose deliveries are
all settled (delivered or dead-lettered to ``webhook-dead-letter``). A dead receiver
therefore holds back only this consumer, and only once ``max_in_flight`` alerts wait;
a restart resumes at the first unsettled alert.
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

from monitor.config import Settings, secret_from_env
from monitor.errors import ConfigError
from monitor.outputs.metrics import Metrics
from monitor.outputs.webhooks.outbox import Outbox
from monitor.outputs.webhooks.retry import Backoff
from monitor.outputs.webhooks.signing import parse_secrets
from monitor.outputs.webhooks.sink import WebhookSink, http_client

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
    def __init__(self, dispatcher: WebhookDispatcher) -> None:
        self.dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in revoked}
        await self.dispatcher.commit(gone)
        assert self.dispatcher.outbox is not None  # noqa: S101 - set before consuming
        await self.dispatcher.outbox.revoke(gone)
        for partition in gone:
            self.dispatcher.committed.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        logger.info("webhooks: delivering from %s", sorted(tp.partition for tp in assigned))


class WebhookDispatcher:
    """Consumer, dead-letter producer, shared HTTP client and outbox: opened by
    :meth:`start`, closed by :meth:`stop`."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.config = settings.webhooks
        self.topic = settings.kafka.topic("alerts")
        self.dead_topic = settings.kafka.topic("webhook_dead_letter")
        self.group = settings.kafka.app_id + settings.webhooks.group_suffix
        self.keys = receiver_keys(settings)  # fail at start-up, not at the first alert
        self.client: httpx.AsyncClient | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.outbox: Outbox | None = None
        self.task: asyncio.Task[None] | None = None
        self.committed: dict[int, int] = {}

    async def start(self) -> None:
        kafka = self.settings.kafka
        self.client = http_client(self.config)
        sinks = [WebhookSink(receiver, self.keys[receiver.name], self.client)
                 for receiver in self.config.receivers]
        self.producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all",
                                         enable_idempotence=True)
        await self.producer.start()
        self.outbox = Outbox(sinks, self._dead_letter, self.metrics,
                             Backoff(self.config.backoff_initial_seconds,
                                     self.config.backoff_max_seconds,
                                     self.config.max_retry_after_seconds),
                             self.config.max_attempts, self.config.concurrency)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset=self.config.start_from,
            session_timeout_ms=int(kafka.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_seconds * 1000))
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        await self.consumer.start()
        self.task = asyncio.create_task(self._run(), name="webhook-dispatcher")
        logger.info("webhooks: %d receivers, group %s", len(sinks), self.group)

    async def stop(self) -> None:
        """Commit what is settled, cancel the rest (redelivered after a restart), close."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.commit()
        if self.outbox is not None:
            await self.outbox.close()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.client is not None:
            await self.client.aclose()

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    async def commit(self, only: set[int] | None = None) -> None:
        """Commit settled offsets that moved since the last commit."""
        assert self.consumer is not None and self.outbox is not None  # noqa: S101
        owned = {tp.partition for tp in self.consumer.assignment()}
        offsets = {TopicPartition(self.topic, partition): offset
                   for partition, offset in self.outbox.committable().items()
                   if partition in owned and (only is None or partition in only)
                   and offset > self.committed.get(partition, -1)}
        if offsets:
            await self.consumer.commit(offsets)
            self.committed.update({tp.partition: offset for tp, offset in offsets.items()})

    async def _dead_letter(self, record: dict[str, Any]) -> None:
        assert self.producer is not None  # noqa: S101
        key = str(record.get("alert_id") or "").encode() or None
        await self.producer.send_and_wait(self.dead_topic, orjson.dumps(record), key=key)

    async def _run(self) -> None:
        assert self.consumer is not None and self.outbox is not None  # noqa: S101
        consumer, outbox = self.consumer, self.outbox
        last_commit = time.monotonic()
        while True:
            assigned = consumer.assignment()
            if outbox.in_flight >= self.config.max_in_flight:
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
            if time.monotonic() - last_commit >= self.config.commit_interval_seconds:
                try:
                    await self.commit()
                except Exception:  # a failed commit is retried at the next interval
                    logger.exception("webhooks: committing offsets failed")
                last_commit = time.monotonic()


def _alert(value: bytes | None) -> dict[str, Any] | None:
    try:
        alert = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    return alert if isinstance(alert, dict) and isinstance(alert.get("alert_id"), str) else None
