"""Records produced while handling one consumer batch, grouped into producer batches.

``add`` is synchronous: it appends to one aiokafka ``BatchBuilder`` per topic-partition
(partition chosen as the producer's default partitioner would, with the compiled murmur2
of :mod:`monitor.routing.partitioner` for keyed records: aiokafka's is pure Python, a few us a
record), so handling a batch
never waits per record. ``send`` hands the builders to the producer in order; ``take``
returns the futures of the batches sent so far, and :func:`settle` waits for them and
raises if any was not delivered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from monitor.routing.partitioner import murmur2


class Outputs:
    """Pending producer batches of the topics one worker writes."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitioner = DefaultPartitioner()
        self.partitions: dict[str, list[int]] = {}
        self.batches: dict[tuple[str, int], list[Any]] = {}
        self.deliveries: list[asyncio.Future[Any]] = []

    async def prepare(self, *topics: str) -> None:
        """Learn the partitions of ``topics`` (once, at start-up)."""
        for topic in topics:
            self.partitions[topic] = sorted(await self.producer.partitions_for(topic))

    def add(self, topic: str, key: bytes | None, value: bytes,
            partition: int | None = None) -> None:
        if partition is None:
            every = self.partitions[topic]
            partition = (self.partitioner(key, every, every) if key is None
                         else every[(murmur2(key) & 0x7FFFFFFF) % len(every)])
        builders = self.batches.get((topic, partition))
        if builders is None:
            builders = self.batches[(topic, partition)] = [self.producer.create_batch()]
        if builders[-1].append(key=key, value=value, timestamp=None) is None:
            builders.append(self.producer.create_batch())
            if builders[-1].append(key=key, value=value, timestamp=None) is None:
                raise KafkaError(f"a record of {len(value)} bytes does not fit a batch")

    async def send(self) -> None:
        """Queue every pending batch on the producer (waits only where it pushes back)."""
        batches, self.batches = self.batches, {}
        for (topic, partition), builders in batches.items():
            for builder in builders:
                self.deliveries.append(
                    await self.producer.send_batch(builder, topic, partition=partition))

    def take(self) -> list[asyncio.Future[Any]]:
        """The deliveries of every batch sent so far, handed to the caller to wait on."""
        deliveries, self.deliveries = self.deliveries, []
        return deliveries


async def settle(deliveries: list[asyncio.Future[Any]]) -> None:
    """Wait until these batches are acknowledged; raise if any was not."""
    if not deliveries:
        return
    await asyncio.wait(deliveries)
    failed = [d.exception() for d in deliveries if not d.cancelled() and d.exception()]
    if failed or any(d.cancelled() for d in deliveries):
        raise KafkaError(f"{len(failed) or 'some'} output batches were not delivered"
                         + (f": {failed[0]!r}" if failed else ""))
