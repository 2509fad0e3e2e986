"""Live shard ownership: load on first use, checkpoint on a cadence, commit only after.

The processing guarantee rests on one invariant: a routed record's offset is committed
only after the checkpoint that contains its effects is durable, and that checkpoint is
written only after every decision, alert and onward view it implies has been flushed to
Kafka. After a crash the worker resumes from the committed offset, which is never past
the checkpoint; records the checkpoint already holds are skipped
(``Shard.applied_offset``) and the rest are re-folded deterministically, so they yield
the same decisions and alerts, and no model learns an event twice.

A checkpoint runs in steps (:mod:`streams.pipeline.loop` drives them): under ``lock``,
with processing paused, the caller queues every pending output and
:meth:`ShardManager.begin` begins a dirty shard's snapshot (a point in time: its commit
and applied offsets are taken, everything but the entities is pickled); then, with
processing going on, the caller runs the snapshot's slices (:class:`Begun`; the shard
pickles an entity before changing it, see :class:`monitor.state.shard.SnapshotJob`), waits
until the outputs queued before the snapshot began are acknowledged,
:meth:`ShardManager.save` writes the files (off the event loop) and the caller commits
the offsets. ``saving`` serialises whole checkpoints, so an older snapshot never
overwrites a newer one and commits never go backwards. A snapshot that is not finished
is abandoned (:meth:`ShardManager.abandon`; its shard stays dirty) or, when its shard
is released, cancelled: it is never saved.

Where a checkpoint is durable depends on ``processing.checkpoint_store``: ``file``
means in the local file (fsynced); ``kafka`` means acknowledged by the broker (acks=all)
in the compacted changelog topic (:mod:`streams.state.changelog`) *and* in the local file,
which stays as a cache. A shard is restored (:meth:`ShardManager.ensure`, off the event
loop) from the local file when it is at least as new as the changelog's newest complete
snapshot (by ``applied_offset``), else from the changelog read to its end; so a shard
that moves to a worker on another host, or comes back after one, resumes where its last
owner left it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from monitor.errors import CheckpointError
from monitor.state.shard import Shard
from monitor.state.snapshot import SLICE_SECONDS, SnapshotJob

if TYPE_CHECKING:
    from collections.abc import Iterable

    from monitor.config import Settings
    from monitor.state.checkpoint import FileCheckpointStore
    from streams.state.changelog import Restored

logger = logging.getLogger(__name__)


class Changelog(Protocol):
    """Where checkpoints go besides the local file 
    (:class:`streams.state.changelog.KafkaChangelog`)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def load(self, shard_id: int) -> Restored | None: ...
    async def save(self, shard_id: int, data: bytes, applied_offset: int) -> None: ...
    def forget(self, shard_ids: Iterable[int]) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    """A shard's pickled state and the offset to commit once it is durable."""

    shard_id: int
    data: bytes | None
    commit_offset: int
    applied_offset: int = -1


@dataclass
class Begun:
    """A snapshot begun: its offsets are fixed, :meth:`step` pickles its entities."""

    shard_id: int
    job: SnapshotJob | None  # None: the shard was gone, nothing to save
    commit_offset: int
    applied_offset: int

    def step(self, budget: float | None = SLICE_SECONDS) -> bool:
        """One slice (all of them when ``budget`` is None); True once complete.

        Raises ``CheckpointError`` when the snapshot was cancelled (its shard released).
        """
        return self.job is None or self.job.step(budget)

    def snapshot(self) -> Snapshot:
        """The complete snapshot (after :meth:`step` returned True)."""
        data = self.job.result() if self.job is not None else None
        return Snapshot(self.shard_id, data, self.commit_offset, self.applied_offset)


class ShardManager:
    """The shards this worker owns, with the offsets they have folded but not saved."""

    def __init__(self, settings: Settings, store: FileCheckpointStore,
                 changelog: Changelog | None = None) -> None:
        self.settings = settings
        self.store = store
        self.changelog = changelog
        self.shards: dict[int, Shard] = {}
        self.dirty: set[int] = set()
        # shard -> next offset to commit (last processed + 1), not yet checkpointed
        self.pending: dict[int, int] = {}
        self.lock = asyncio.Lock()
        self.saving = asyncio.Lock()
        self.checkpoints = 0
        self.last_checkpoint_seconds = 0.0
        self.last_pause_seconds = 0.0  # the longest a snapshot of it held processing up
        self.saved_at: dict[int, int] = {}  # shard -> number of the checkpoint that saved it

    async def start(self) -> None:
        if self.changelog is not None:
            await self.changelog.start()

    async def stop(self) -> None:
        if self.changelog is not None:
            await self.changelog.stop()

    def shard(self, shard_id: int) -> Shard:
        """The shard; without a changelog, restored from its file the first time it is used.

        With a changelog a shard must be restored by :meth:`ensure` first (a local file
        alone may be stale): until then this raises ``CheckpointError``.
        """
        shard = self.shards.get(shard_id)
        if shard is None:
            if self.changelog is not None:
                raise CheckpointError(f"shard {shard_id} is used before it was restored")
            shard = self.shards[shard_id] = self._from_file(shard_id) or self._new(shard_id)
        return shard

    async def ensure(self, shard_id: int) -> Shard:
        """The shard, restored off the event loop the first time (see the module docstring).

        Raises ``CheckpointError`` when the shard had state that cannot be read: the
        caller must not process the shard rather than start it empty.
        """
        shard = self.shards.get(shard_id)
        if shard is not None:
            return shard
        local: Shard | None = None
        unreadable: CheckpointError | None = None
        try:
            local = await asyncio.to_thread(self._from_file, shard_id)
        except CheckpointError as exc:
            if self.changelog is None:
                raise
            logger.warning("shard %d: local checkpoint unreadable (%s); trying the changelog",
                           shard_id, exc)
            unreadable = exc
        remote = await self.changelog.load(shard_id) if self.changelog is not None else None
        if remote is None and unreadable is not None:
            raise unreadable
        if remote is not None and (local is None or remote.applied_offset > local.applied_offset):
            shard = await asyncio.to_thread(self._restored, shard_id, remote.data, "changelog")
        elif local is not None:
            shard = local
        else:
            shard = await asyncio.to_thread(self._new, shard_id)
        self.shards.setdefault(shard_id, shard)
        return self.shards[shard_id]

    def _from_file(self, shard_id: int) -> Shard | None:
        data = self.store.load(shard_id)
        return None if data is None else self._restored(shard_id, data, "file")

    def _new(self, shard_id: int) -> Shard:
        shard = Shard(shard_id, self.settings)
        shard.prepare()
        return shard

    def _restored(self, shard_id: int, data: bytes, source: str) -> Shard:
        shard = Shard(shard_id, self.settings)
        shard.restore(data)
        shard.prepare()
        logger.info("shard %d restored from its %s at offset %d (%d entities)", shard_id,
                    source, shard.applied_offset, len(shard.entities))
        return shard

    def advance(self, shard_id: int, next_offset: int) -> None:
        """Records of ``shard_id`` before ``next_offset`` are folded (or dead-lettered)."""
        self.pending[shard_id] = next_offset
        self.dirty.add(shard_id)

    def touch(self, shard_id: int) -> None:
        """``shard_id`` folded views ahead of its routed offset (``streams.pipeline.loop``:
        folding here); it is dirty, and its offset to commit stays where it was."""
        self.dirty.add(shard_id)
        if shard_id not in self.pending:
            self.pending[shard_id] = self.shards[shard_id].applied_offset + 1

    def stalest(self, scope: Iterable[int], count: int | None) -> list[int]:
        """The dirty shards of ``scope``, least recently saved first, at most ``count``."""
        dirty = sorted(self.dirty & set(scope), key=lambda shard: (self.saved_at.get(shard, -1),
                                                                   shard))
        return dirty if count is None else dirty[:count]

    def snapshot(self, only: Iterable[int] | None = None) -> list[Snapshot]:
        """Pickle the dirty shards (of ``only``) in one call each; call under ``lock``
        after the flush."""
        taken = []
        for begun in self.begin(only):
            begun.step(None)
            taken.append(begun.snapshot())
        return taken

    def begin(self, only: Iterable[int] | None = None) -> list[Begun]:
        """Begin snapshots of the dirty shards (of ``only``); call under ``lock`` after
        the flush. Each shard is no longer dirty: a snapshot that is not saved must be
        given back (:meth:`abandon`, or :meth:`save` when the write fails)."""
        targets = sorted(self.dirty if only is None else self.dirty & set(only))
        begun = []
        for shard_id in targets:
            shard = self.shards.get(shard_id)
            job = shard.begin_snapshot() if shard is not None else None
            applied = shard.applied_offset if shard is not None else -1
            begun.append(Begun(shard_id, job, self.pending.pop(shard_id), applied))
            self.dirty.discard(shard_id)
            self.saved_at[shard_id] = self.checkpoints
        return begun

    def abandon(self, begun: Iterable[Begun]) -> None:
        """Give up snapshots begun and not saved: cancel their jobs; a shard still owned
        is dirty again, its offset uncommitted (the next checkpoint retries it)."""
        for item in begun:
            if item.job is not None:
                item.job.cancel()
            self._retry(item.shard_id, item.commit_offset)

    def _retry(self, shard_id: int, commit_offset: int) -> None:
        if shard_id in self.shards:
            self.dirty.add(shard_id)
            self.pending.setdefault(shard_id, commit_offset)

    async def save(self, snapshots: list[Snapshot]) -> list[Snapshot]:
        """Write snapshots durably, off the event loop; returns those that were saved.

        Durable means in the changelog, acknowledged (when there is one), and in the
        local file. A shard whose write fails stays dirty (the next checkpoint retries
        it) and its offset is not returned, so it is not committed.
        """
        saved = []
        for snap in snapshots:
            try:
                if snap.data is not None:
                    if self.changelog is not None:
                        await self.changelog.save(snap.shard_id, snap.data, snap.applied_offset)
                    await asyncio.to_thread(self.store.save, snap.shard_id, snap.data)
            except CheckpointError:
                logger.exception("checkpoint of shard %d failed; its offsets stay uncommitted",
                                 snap.shard_id)
                self._retry(snap.shard_id, snap.commit_offset)
                continue
            saved.append(snap)
        return saved

    def release(self, shard_ids: Iterable[int]) -> None:
        """Forget shards this worker no longer owns (after their final checkpoint)."""
        shard_ids = list(shard_ids)
        if self.changelog is not None:
            self.changelog.forget(shard_ids)
        for shard_id in shard_ids:
            shard = self.shards.pop(shard_id, None)
            if shard is not None and shard.job is not None:
                # Checkpoints finish before a release (``saving``); never save this one.
                logger.warning("shard %d released during a snapshot; the snapshot is dropped",
                               shard_id)
                shard.job.cancel()
            self.pending.pop(shard_id, None)
            self.saved_at.pop(shard_id, None)
            self.dirty.discard(shard_id)
