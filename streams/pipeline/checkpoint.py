"""Checkpoint: save dirty shards once their outputs are delivered, then commit offsets.

An input offset is committed only after the producer has delivered everything its
records led to; a routed offset only after the checkpoint that holds its effects is
durable (:mod:`streams.state.shards`). This part of the loop is the one a state store
replaces: it sees the shard manager, the clients and the offsets, nothing of ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from monitor.errors import CheckpointError
from streams.pipeline.outputs import settle

if TYPE_CHECKING:
    from streams.pipeline.clients import Clients
    from streams.state.shards import Begun, ShardManager, Snapshot

logger = logging.getLogger(__name__)

#: Share of wall time timer checkpoints may spend pickling: after a snapshot whose header
#: and slices took ``p`` seconds in all, the next one is due ``p / SNAPSHOT_SHARE``
#: seconds later. Processing waits only for the header and one slice at a time now, but
#: this one thread does not process while it pickles either way (and a thread compresses
#: what it pickled), so the share bounds the throughput checkpoints cost (entities the
#: shard pickles itself before changing them are not counted: a slice would have pickled
#: them). At 0.03 a shard of 200,000 events' state (~50 ms to pickle) is saved every ~7 s
#: with four shards, which bounds what a restart re-folds. Input offsets are committed on
#: every tick regardless.
SNAPSHOT_SHARE = 0.03
#: After a slice of a snapshot that took ``t`` seconds the next waits ``SLICE_REST * t``,
#: so a snapshot takes at most a quarter of the loop while it runs. Taken back to back
#: (the loop ran between slices only when a fetch had come back), the slices of one
#: snapshot (40-60 ms at 10,000 events/s) overloaded the worker for a tenth of a second
#: every two seconds: at half load the p99 was 60-68 ms with them and 32-36 ms paced
#: (paired bench runs); under a backlog, throughput was the same either way.
SLICE_REST = 3.0


class Offsets:
    """Where the worker is on each partition it consumes."""

    def __init__(self) -> None:
        self.ingested: dict[TopicPartition, int] = {}   # input tp -> next offset, sent
        self.committed: dict[TopicPartition, int] = {}
        self.durable: dict[TopicPartition, int] = {}    # safe to commit, not yet committed

    def drop(self, partitions: list[TopicPartition]) -> None:
        """Forget partitions given up."""
        for tp in partitions:
            self.ingested.pop(tp, None)
            self.committed.pop(tp, None)
            self.durable.pop(tp, None)


class Checkpointer:
    """Saves shards and commits offsets, on the app's timer, on a revoke and at stop.

    ``owned`` gives the shards this worker owns; ``failed`` whether a failure mid-batch
    forbids checkpointing (shard state may hold effects whose outputs were never sent);
    ``fail`` reports outputs that were not delivered, which stops the worker.
    """

    def __init__(self, routed: str, clients: Clients, manager: ShardManager, offsets: Offsets,
                 owned: Callable[[], set[int]], failed: Callable[[], bool],
                 fail: Callable[[BaseException, str], None]) -> None:
        self.routed = routed
        self.clients = clients
        self.manager = manager
        self.offsets = offsets
        self.owned = owned
        self.failed = failed
        self.fail = fail
        self.snapshot_due = 0.0  # monotonic time of the next timer snapshot

    async def checkpoint(self, only: set[int] | None = None, shards: int | None = None) -> int:
        """Save dirty shards (of ``only``; at most ``shards``, least recently saved
        first) once their outputs are delivered, then commit.

        One shard at a time: under the lock, processing paused, queue every pending
        output and begin the shard's snapshot (offsets fixed, models and small parts
        pickled); then pickle its entities, dedup window and decision memory a slice at
        a time, processing going on between slices (the shard pickles an entity before
        changing it, so the snapshot stays the state it began at). Then: wait until the
        outputs queued before each snapshot began are acknowledged, write the files,
        commit. A snapshot is thus written only after every output it implies is in
        Kafka, and an input offset is committed only after the envelopes it led to are.
        A timer checkpoint (``shards`` given) pickles only when due (see
        ``SNAPSHOT_SHARE``). Returns the number of shards saved.
        """
        if self.clients.consumer is None or self.clients.outputs is None or self.failed():
            return 0
        manager, offsets = self.manager, self.offsets
        async with manager.saving:
            started = time.perf_counter()
            begun: list[Begun] = []
            snapshots: list[Snapshot] = []
            pickled = paused = 0.0  # pickling in all; the longest pause it imposed
            try:
                async with manager.lock:
                    if not (manager.dirty or offsets.durable) and (
                            offsets.ingested == offsets.committed):
                        return 0
                    inputs = dict(offsets.ingested)
                    owned = self.owned()
                    scope = owned if only is None else only & owned
                    if shards is not None and time.monotonic() < self.snapshot_due:
                        shards = 0
                    targets = manager.stalest(scope, shards)
                    deliveries, items, took = await self._begin(targets[:1])
                for index, shard_id in enumerate(targets):
                    if index:  # a turn of the lock per shard: one pause at a time
                        async with manager.lock:
                            more, items, took = await self._begin([shard_id])
                        deliveries += more
                    begun += items
                    pickled, paused = pickled + took, max(paused, took)
                    for item in items:
                        # Paced on the timer; a revoke or a stop waits for it.
                        snapshot, took, longest = await self.slices(
                            item, SLICE_REST if shards is not None else 0.0)
                        pickled, paused = pickled + took, max(paused, longest)
                        if snapshot is not None:
                            snapshots.append(snapshot)
            except BaseException:
                manager.abandon(begun)  # a shard still owned stays dirty
                raise
            if targets:
                self.snapshot_due = time.monotonic() + pickled / SNAPSHOT_SHARE
            try:
                await settle(deliveries)
            except KafkaError as exc:
                self.fail(exc, "outputs were not delivered")
                return 0
            offsets.durable.update(inputs)
            saved = await manager.save(snapshots)
            offsets.durable.update({TopicPartition(self.routed, snap.shard_id):
                                    snap.commit_offset for snap in saved})
            await self.commit()
            if saved:
                manager.checkpoints += 1
                manager.last_checkpoint_seconds = time.perf_counter() - started
                manager.last_pause_seconds = paused
            return len(saved)

    async def _begin(self, targets: list[int],
                     ) -> tuple[list[asyncio.Future[Any]], list[Begun], float]:
        """Under the lock: queue pending outputs, take their deliveries, and begin the
        snapshots of ``targets``; the deliveries, the snapshots begun and the seconds
        spent beginning them."""
        outputs = self.clients.out()
        await outputs.send()
        deliveries = outputs.take()
        pickling = time.perf_counter()
        begun = self.manager.begin(targets)
        return deliveries, begun, time.perf_counter() - pickling

    async def slices(self, begun: Begun, rest: float) -> tuple[Snapshot | None, float, float]:
        """Pickle a begun snapshot's entities a slice at a time, waiting ``rest`` times
        as long as each slice took before the next (``SLICE_REST``);
        the snapshot (None when its shard was released meanwhile), the seconds spent and
        the longest slice. No lock: a slice reads only entities unchanged since the snapshot
        began, and the state changes only on this thread."""
        spent = longest = 0.0
        while True:
            pickling = time.perf_counter()
            try:
                done = begun.step()
            except CheckpointError as exc:
                logger.warning("snapshot of shard %d dropped: %s", begun.shard_id, exc)
                return None, spent, longest
            took = time.perf_counter() - pickling
            spent, longest = spent + took, max(longest, took)
            if done:
                return begun.snapshot(), spent, longest
            await asyncio.sleep(took * rest)  # the consumer loop runs meanwhile

    async def commit(self) -> None:
        """Commit the durable offsets of the partitions still assigned."""
        consumer = self.clients.reader()
        offsets = self.offsets
        assigned = consumer.assignment()
        due = {tp: offset for tp, offset in offsets.durable.items()
               if tp in assigned and offsets.committed.get(tp) != offset}
        offsets.durable.clear()
        if not due:
            return
        try:
            await consumer.commit(due)
        except KafkaError as exc:
            # The next checkpoint commits again; until then a restart re-reads a little
            # more (skipped by applied offsets and the dedup window).
            logger.warning("committing offsets failed: %r", exc)
            for tp, offset in due.items():
                offsets.durable.setdefault(tp, offset)
            return
        offsets.committed.update(due)
