"""Case decisions' labels onto the ``labels`` topic, exactly once.

A decision is recorded in the store together with its label (the outbox of
:mod:`monitor.outputs.store.cases`) and with ``checked_from``, the end offset of the
label's partition read just before. Then the label is written (an idempotent producer,
``acks=all``, to the partition its key hashes to, as Kafka's default partitioner puts
it) and the store records where it landed. A worker that dies between the two leaves the
row unrecorded; once its claim runs out (:data:`CLAIM_SECONDS`), any worker's settle
pass claims the row, reads the partition from ``checked_from`` and writes the label only
if it is not there. The label's ``event_id`` is the same on every try (alert id and
decision number), so even a copy written by a worker that stalled past its claim is
dropped by the shard that learns it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from monitor.errors import LabelsUnavailable, StoreUnavailable
from monitor.routing.partitioner import partition_for
from streams.connection import client_options

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from monitor.outputs.store import AlertStore
    from monitor.outputs.store.cases import PendingLabel

logger = logging.getLogger(__name__)

CLAIM_SECONDS: Final = 30.0
"""How long a worker holds a label it is writing before another may settle it."""
SETTLE_INTERVAL_SECONDS: Final = 5.0
MAX_SCAN: Final = 200_000
"""Records of one partition read at most when looking for a label already written."""
TIMEOUT_SECONDS: Final = 10.0


class CaseLabels:
    """Writes decisions' labels: :meth:`start`, then :meth:`stop`."""

    def __init__(self, settings: Settings, store: AlertStore, metrics: Metrics) -> None:
        self.settings, self.store, self.metrics = settings, store, metrics
        self.topic = settings.kafka.topic("labels")
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()  # one reader of the consumer at a time

    async def start(self) -> None:
        kafka = self.settings.kafka
        self.producer = AIOKafkaProducer(**client_options(kafka), acks="all",
                                         enable_idempotence=True,
                                         client_id=f"{kafka.app_id}-case-labels")
        self.consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None,
                                         enable_auto_commit=False,
                                         client_id=f"{kafka.app_id}-case-labels")
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        for client in (self.producer, self.consumer):
            if client is not None:
                await client.stop()

    async def place(self, key: str) -> tuple[int, int]:
        """The partition ``key``'s label goes to and that partition's end offset now."""
        assert self.consumer is not None and self.producer is not None  # noqa: S101
        try:
            async with self.lock, asyncio.timeout(TIMEOUT_SECONDS):
                partitions = await self.producer.partitions_for(self.topic)
                if not partitions:
                    raise LabelsUnavailable(f"the topic {self.topic} has no partitions")
                partition = partition_for(key, len(partitions))
                tp = TopicPartition(self.topic, partition)
                ends = await self.consumer.end_offsets([tp])
        except (KafkaError, TimeoutError) as exc:
            raise LabelsUnavailable(f"the labels topic did not answer: {exc!r}") from exc
        return partition, int(ends[tp])

    async def write(self, label: PendingLabel) -> int:
        """Write ``label`` (the offset it landed at); :class:`LabelsUnavailable` if not."""
        assert self.producer is not None  # noqa: S101 - started first
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                sent = await self.producer.send_and_wait(
                    label.topic, label.body, key=label.key.encode(), partition=label.partition)
        except (KafkaError, TimeoutError) as exc:
            raise LabelsUnavailable(f"the label was not written: {exc!r}") from exc
        return int(sent.offset)

    async def find(self, label: PendingLabel) -> int | None:
        """The offset of ``label`` if it is on its partition at or after ``checked_from``."""
        assert self.consumer is not None  # noqa: S101 - started first
        tp = TopicPartition(label.topic, label.partition)
        async with self.lock:
            end = int((await self.consumer.end_offsets([tp]))[tp])
            if end <= label.checked_from:
                return None
            self.consumer.assign([tp])
            self.consumer.seek(tp, label.checked_from)
            read = 0
            while read < MAX_SCAN:
                batch = await self.consumer.getmany(tp, timeout_ms=1000, max_records=2000)
                records = batch.get(tp, [])
                for record in records:
                    read += 1
                    if record.key == label.key.encode() and _event_id(record.value) == \
                            label.event_id:
                        return int(record.offset)
                if await self.consumer.position(tp) >= end:
                    return None
            logger.warning("label %s: not found in %d records of %s[%d]; writing it",
                           label.event_id, read, tp.topic, tp.partition)
            return None

    async def settle(self, label: PendingLabel) -> None:
        """Make sure ``label`` is on the topic, once, and record where."""
        found = await self.find(label)
        if found is None:
            found = await self.write(label)
            self.metrics.case_labels.labels("written_late").inc()
        else:
            self.metrics.case_labels.labels("found").inc()
        await self.store.mark_label_produced(label.event_id, found)
        logger.info("label %s settled at %s[%d]@%d", label.event_id, label.topic,
                    label.partition, found)

    async def settle_pending(self) -> None:
        """Settle every label whose writer's claim ran out (a crash, a failed write)."""
        now = time.time()
        try:
            pending = await self.store.claim_pending_labels(
                round(now * 1e6), round((now + CLAIM_SECONDS) * 1e6))
            for label in pending:
                await self.settle(label)
            self.metrics.case_labels_pending.set(await self.store.pending_labels())
        except (StoreUnavailable, LabelsUnavailable, KafkaError) as exc:
            logger.warning("case labels: %s; trying again in %g s", exc,
                           SETTLE_INTERVAL_SECONDS)


def _event_id(value: bytes | None) -> object:
    try:
        data = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    return data.get("event_id") if isinstance(data, dict) else None
