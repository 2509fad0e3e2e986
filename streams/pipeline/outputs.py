"""Records produced while handling one consumer batch, grouped into producer batches.

``add`` is synchronous: it appends to one aiokafka ``BatchBuilder`` per topic-partition
(partition chosen as the producer's default partitioner would, with the compiled murmur2
of :mod:`monitor.routing.partitioner` for keyed records: aiokafka's is pure Python, a few us a
record), so handling a batch
never waits per record. ``send`` hands the builders to the producer in order; ``take``
returns the futures of the batches sent so far, and :func:`settle` waits for them and
raises if any was not delivered.

Records of a *soft* topic (the dead letters) are best effort: a batch of them the broker
refuses is retried record by record, with backoff, and a record that still fails is
handed to ``lost`` (counted and logged by the worker), never raised. A dead letter
cannot stop scoring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from monitor.routing.partitioner import murmur2

SOFT_RETRIES = 3
"""Attempts per record of a soft topic after its batch failed."""
SOFT_BACKOFF_SECONDS = 0.2
"""Wait before the first of them; doubles with each."""


class Outputs:
    """Pending producer batches of the topics one worker writes."""

    def __init__(self, producer: AIOKafkaProducer, soft: Iterable[str] = (),
                 lost: Callable[[str, int, BaseException], None] | None = None) -> None:
        self.producer = producer
        self.soft = frozenset(soft)
        self.lost = lost
        """Called with a soft topic, a record count and the error, for records given up."""
        self.soft_records: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
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
        if topic in self.soft:
            self.soft_records.setdefault((topic, partition), []).append((key, value))
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
        soft, self.soft_records = self.soft_records, {}
        for (topic, partition), builders in batches.items():
            sent = [await self.producer.send_batch(builder, topic, partition=partition)
                    for builder in builders]
            records = soft.get((topic, partition))
            if records is None:
                self.deliveries += sent
            else:
                self.deliveries.append(asyncio.ensure_future(
                    self._best_effort(sent, topic, partition, records)))

    async def _best_effort(self, sent: list[asyncio.Future[Any]], topic: str,
                           partition: int, records: list[tuple[bytes | None, bytes]]) -> None:
        """Wait for a soft topic's batches; on failure send their records one by one."""
        await asyncio.wait(sent)
        if all(not f.cancelled() and f.exception() is None for f in sent):
            return
        failed = 0
        error: BaseException | None = None
        for key, value in records:  # all of them: which of the batches failed is not kept
            for attempt in range(SOFT_RETRIES):
                try:
                    await self.producer.send_and_wait(topic, value, key=key,
                                                      partition=partition)
                    break
                except KafkaError as exc:
                    error = exc
                    await asyncio.sleep(SOFT_BACKOFF_SECONDS * 2 ** attempt)  # backoff
            else:
                failed += 1
        if failed and self.lost is not None and error is not None:
            self.lost(topic, failed, error)

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
