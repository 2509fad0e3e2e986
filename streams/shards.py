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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
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
                if snap.shard_id in self.shards:
                    self.dirty.add(snap.shard_id)
                    self.pending.setdefault(snap.shard_id, snap.commit_offset)
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
