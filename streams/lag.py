"""Consumer lag per partition: end offset minus the group's committed offset.

This is the usual definition (what ``kafka-consumer-groups`` shows): it keeps growing
when a consumer stops committing, even while fetches go on (faust-streaming #175,
#523), which a fetch-position figure would miss. Each worker measures the partitions
assigned to it, so a deployment's figures add up without double counting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from monitor.config import Settings
from monitor.outputs.metrics import Metrics
from streams.connection import client_options

logger = logging.getLogger(__name__)


class LagProbe:
    """Measures and exports lag of consumer groups; one admin client, one offsets client."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.kafka = settings.kafka
        self.metrics = metrics
        self.admin: AIOKafkaAdminClient | None = None
        self.offsets: AIOKafkaConsumer | None = None
        self.exported: dict[str, set[tuple[str, str]]] = {}

    async def start(self) -> None:
        self.admin = AIOKafkaAdminClient(**client_options(self.kafka),
                                         request_timeout_ms=10_000)
        self.offsets = AIOKafkaConsumer(**client_options(self.kafka), group_id=None,
                                        enable_auto_commit=False, request_timeout_ms=10_000)
        await self.admin.start()
        await self.offsets.start()

    async def stop(self) -> None:
        if self.offsets is not None:
            await self.offsets.stop()
        if self.admin is not None:
            await self.admin.close()

    async def lag(self, group: str, partitions: Iterable[TopicPartition],
                  ) -> dict[TopicPartition, int]:
        """Lag of ``group`` on each of ``partitions``."""
        assert self.admin is not None and self.offsets is not None  # noqa: S101 - started
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        committed = await self.admin.list_consumer_group_offsets(group, partitions=wanted)
        ends = await self.offsets.end_offsets(wanted)
        missing = [tp for tp in wanted if tp not in committed or committed[tp].offset < 0]
        starts = await self.offsets.beginning_offsets(missing) if missing else {}
        return {tp: max(0, ends[tp] - (starts[tp] if tp in starts else committed[tp].offset))
                for tp in wanted}

    async def export(self, consumer: str, group: str,
                     partitions: Iterable[TopicPartition]) -> None:
        """Measure and set ``fraudmon_consumer_lag``; drop partitions no longer assigned."""
        try:
            measured = await self.lag(group, partitions)
        except KafkaError as exc:
            logger.warning("measuring consumer lag of %s failed: %s", group, exc)
            return
        gauge = self.metrics.consumer_lag
        now = {(tp.topic, str(tp.partition)) for tp in measured}
        for topic, partition in self.exported.get(consumer, set()) - now:
            gauge.remove(consumer, topic, partition)
        for tp, value in measured.items():
            gauge.labels(consumer, tp.topic, str(tp.partition)).set(value)
        self.exported[consumer] = now
