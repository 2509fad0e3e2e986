"""Live shard ownership: load on first use, checkpoint on a cadence, commit only after.

The processing guarantee rests on one invariant: a routed record's offset is committed
only after the checkpoint that contains its effects is durable, and that checkpoint is
written only after every decision, alert and onward view it implies has been flushed to
Kafka. After a crash the worker resumes from the committed offset, which is never past
the checkpoint; records the checkpoint already holds are skipped
(``Shard.applied_offset``) and the rest are re-folded deterministically, so they yield
the same decisions and alerts, and no model learns an event twice.

A checkpoint runs in two steps (:mod:`streams.pipeline` drives them): under ``lock``,
with processing paused, the caller queues every pending output and
:meth:`ShardManager.snapshot` pickles a dirty shard and takes its commit offset; then,
with processing going on, the caller waits until those outputs are acknowledged,
:meth:`ShardManager.save` writes the files (off the event loop) and the caller commits
the offsets. ``saving`` serialises whole checkpoints, so an older snapshot never
overwrites a newer one and commits never go backwards.

Where the platform can fork, :meth:`ShardManager.fork_snapshot` replaces the pickling
under the lock: a child process, a copy-on-write image of the shards at that instant,
pickles and stages them while the parent goes on processing; the pause is the fork
(milliseconds) instead of the pickling (hundreds of milliseconds for a large shard).
:meth:`ShardManager.publish` puts the staged files in force only after the child
succeeded, and the caller calls it only after the outputs are acknowledged, so the
invariant above is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.errors import CheckpointError
from monitor.shard import Shard

if TYPE_CHECKING:
    from collections.abc import Iterable

    from monitor.checkpoint import FileCheckpointStore
    from monitor.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """A shard's pickled state and the offset to commit once it is on disk."""

    shard_id: int
    data: bytes | None
    commit_offset: int


CAN_FORK = hasattr(os, "fork")


@dataclass
class ChildSnapshot:
    """Shards being pickled and staged by a forked child, with their commit offsets."""

    pid: int
    snapshots: list[Snapshot]
    staged: set[int] = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    staged_all: bool | None = None

    async def wait(self) -> bool:
        """Reap the child (off the event loop, once); whether every snapshot was staged."""
        if self.staged_all is None:
            _, status = await asyncio.to_thread(os.waitpid, self.pid, 0)
            self.seconds = time.perf_counter() - self.started
            self.staged_all = os.waitstatus_to_exitcode(status) == 0
        return self.staged_all


class ShardManager:
    """The shards this worker owns, with the offsets they have folded but not saved."""

    def __init__(self, settings: Settings, store: FileCheckpointStore) -> None:
        self.settings = settings
        self.store = store
        self.shards: dict[int, Shard] = {}
        self.dirty: set[int] = set()
        # shard -> next offset to commit (last processed + 1), not yet checkpointed
        self.pending: dict[int, int] = {}
        self.lock = asyncio.Lock()
        self.saving = asyncio.Lock()
        self.checkpoints = 0
        self.last_checkpoint_seconds = 0.0
        self.saved_at: dict[int, int] = {}  # shard -> number of the checkpoint that saved it

    def shard(self, shard_id: int) -> Shard:
        """The shard, restored from its checkpoint the first time it is used."""
        shard = self.shards.get(shard_id)
        if shard is None:
            shard = Shard(shard_id, self.settings)
            data = self.store.load(shard_id)
            if data is not None:
                shard.restore(data)
                logger.info("shard %d restored at offset %d (%d entities)", shard_id,
                            shard.applied_offset, len(shard.entities))
            self.shards[shard_id] = shard
        return shard

    def advance(self, shard_id: int, next_offset: int) -> None:
        """Records of ``shard_id`` before ``next_offset`` are folded (or dead-lettered)."""
        self.pending[shard_id] = next_offset
        self.dirty.add(shard_id)

    def stalest(self, scope: Iterable[int], count: int | None) -> list[int]:
        """The dirty shards of ``scope``, least recently saved first, at most ``count``."""
        dirty = sorted(self.dirty & set(scope), key=lambda shard: (self.saved_at.get(shard, -1),
                                                                   shard))
        return dirty if count is None else dirty[:count]

    def snapshot(self, only: Iterable[int] | None = None) -> list[Snapshot]:
        """Pickle the dirty shards (of ``only``); call under ``lock`` after the flush."""
        targets = sorted(self.dirty if only is None else self.dirty & set(only))
        taken = []
        for shard_id in targets:
            shard = self.shards.get(shard_id)
            data = shard.snapshot() if shard is not None else None
            taken.append(Snapshot(shard_id, data, self.pending.pop(shard_id)))
            self.dirty.discard(shard_id)
            self.saved_at[shard_id] = self.checkpoints
        return taken

    def fork_snapshot(self, only: Iterable[int]) -> ChildSnapshot | None:
        """Fork a child that pickles and stages the dirty shards of ``only``; call under
        ``lock`` after the flush, exactly where :meth:`snapshot` would be called."""
        targets = sorted(self.dirty & set(only))
        if not targets:
            return None
        shards = [(shard_id, self.shards.get(shard_id)) for shard_id in targets]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child: pickle, stage, leave at once
            code = 0
            try:
                for shard_id, shard in shards:
                    if shard is not None:
                        self.store.stage(shard_id, shard.snapshot())
            except BaseException:  # noqa: BLE001 - any failure is the exit status
                code = 1
            os._exit(code)  # no atexit, no buffers or sockets of the parent touched
        job = ChildSnapshot(pid, [Snapshot(shard_id, None, self.pending.pop(shard_id))
                                  for shard_id in targets],
                            staged={shard_id for shard_id, shard in shards
                                    if shard is not None})
        for shard_id in targets:
            self.dirty.discard(shard_id)
            self.saved_at[shard_id] = self.checkpoints
        return job

    async def publish(self, job: ChildSnapshot) -> list[Snapshot]:
        """Wait for the child, then put its staged snapshots in force; returns those saved.

        If the child failed, or a rename fails, the shard stays dirty and its offset
        uncommitted, as in :meth:`save`.
        """
        if not await job.wait():
            logger.error("the snapshot child failed; offsets of shards %s stay uncommitted",
                         [snap.shard_id for snap in job.snapshots])
            for snap in job.snapshots:
                self._retry(snap)
            return []
        saved = []
        for snap in job.snapshots:
            try:
                if snap.shard_id in job.staged:
                    await asyncio.to_thread(self.store.publish, snap.shard_id)
            except CheckpointError:
                logger.exception("checkpoint of shard %d failed; its offsets stay uncommitted",
                                 snap.shard_id)
                self._retry(snap)
                continue
            saved.append(snap)
        return saved

    def _retry(self, snap: Snapshot) -> None:
        if snap.shard_id in self.shards:
            self.dirty.add(snap.shard_id)
            self.pending.setdefault(snap.shard_id, snap.commit_offset)

    async def save(self, snapshots: list[Snapshot]) -> list[Snapshot]:
        """Write snapshots durably, off the event loop; returns those that were saved.

        A shard whose write fails stays dirty (the next checkpoint retries it) and its
        offset is not returned, so it is not committed.
        """
        saved = []
        for snap in snapshots:
            try:
                if snap.data is not None:
                    await asyncio.to_thread(self.store.save, snap.shard_id, snap.data)
            except CheckpointError:
                logger.exception("checkpoint of shard %d failed; its offsets stay uncommitted",
                                 snap.shard_id)
                self._retry(snap)
                continue
            saved.append(snap)
        return saved

    def release(self, shard_ids: Iterable[int]) -> None:
        """Forget shards this worker no longer owns (after their final checkpoint)."""
        for shard_id in shard_ids:
            self.shards.pop(shard_id, None)
            self.pending.pop(shard_id, None)
            self.saved_at.pop(shard_id, None)
            self.dirty.discard(shard_id)
