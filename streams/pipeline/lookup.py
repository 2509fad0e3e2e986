"""Input messages read back by offset: the events behind routed references.

A worker folds the views of the events it ingests into the shards it owns at once, and
logs them in the routed topic as references to the input message (topic, partition,
offset; :class:`monitor.routing.envelope.Reference`). Only a worker that reads such a reference
without having folded it, after a crash, needs the message again: this reads it from
the input topic, on a consumer of its own, outside the worker's group.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.config import Settings
from monitor.processing.folding import Place
from streams.connection import client_options

logger = logging.getLogger(__name__)

#: How long one lookup may take before the messages not found are given up on.
LOOKUP_SECONDS = 60.0


class InputLookup:
    """Reads input messages at given offsets; opened on first use, closed by :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consumer: AIOKafkaConsumer | None = None

    async def values(self, places: Iterable[Place]) -> dict[Place, tuple[bytes, float]]:
        """The value and Kafka time (unix seconds) of the message at each place; a place
        absent from the result is no longer in Kafka (deleted by retention) or was never
        written."""
        wanted: dict[TopicPartition, set[int]] = defaultdict(set)
        for topic, partition, offset in places:
            wanted[TopicPartition(topic, partition)].add(offset)
        if not wanted:
            return {}
        consumer = await self._consumer()
        consumer.assign(list(wanted))
        for tp, offsets in wanted.items():
            consumer.seek(tp, min(offsets))
        found: dict[Place, tuple[bytes, float]] = {}
        deadline = time.monotonic() + LOOKUP_SECONDS
        ends = await consumer.end_offsets(list(wanted))
        # Offsets at or past the end were never written: nothing to wait for.
        left = {tp: below for tp, offsets in wanted.items()
                if (below := {offset for offset in offsets if offset < ends[tp]})}
        while left and time.monotonic() < deadline:
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                if tp not in left:
                    continue
                offsets = left[tp]
                # Offsets below the first one read were deleted by retention (the
                # consumer starts at the earliest one left).
                offsets.difference_update([o for o in offsets if o < records[0].offset])
                for record in records:
                    if record.offset in offsets:
                        found[(tp.topic, tp.partition, record.offset)] = (
                            record.value or b"", record.timestamp / 1000)
                        offsets.discard(record.offset)
                if not offsets or await consumer.position(tp) > max(offsets):
                    del left[tp]
        if left:
            logger.warning("input messages not found in %.0f s: %s", LOOKUP_SECONDS,
                           {f"{tp.topic}[{tp.partition}]": len(o) for tp, o in left.items()})
        return found

    async def _consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            kafka = self.settings.kafka
            self.consumer = AIOKafkaConsumer(
                **client_options(kafka), group_id=None,
                client_id=f"{kafka.app_id}-lookup", enable_auto_commit=False,
                auto_offset_reset="earliest")
            await self.consumer.start()
        return self.consumer

    async def stop(self) -> None:
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            await consumer.stop()
