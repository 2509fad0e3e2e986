"""Live shard ownership: load on first use, checkpoint on a cadence, ack only after.

The processing guarantee rests on one invariant: a routed record is acknowledged (so
its offset may be committed) only after the checkpoint that contains its effects is
durable, and that checkpoint is written only after every decision and alert it implies
has been flushed to Kafka. After a crash the worker resumes from the committed offset,
which is never past the checkpoint; records the checkpoint already holds are skipped
(``Shard.applied_offset``) and the rest are re-folded deterministically, so they yield
the same decisions and alerts, and no model learns an event twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from monitor.shard import Outcome, Shard

if TYPE_CHECKING:
    from monitor.checkpoint import FileCheckpointStore
    from monitor.config import Settings
    from monitor.events import Event
    from monitor.routing import View

logger = logging.getLogger(__name__)


class ShardManager:
    """The shards this worker owns, with their pending acknowledgements."""

    def __init__(self, settings: Settings, store: FileCheckpointStore) -> None:
        self.settings = settings
        self.store = store
        self.shards: dict[int, Shard] = {}
        self.dirty: set[int] = set()
        self.pending: dict[int, list[Any]] = {}
        self.lock = asyncio.Lock()
        self.checkpoints = 0
        self.last_checkpoint_seconds = 0.0

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

    def process(self, shard_id: int, offset: int, view: View, event: Event,
                ack_token: Any) -> Outcome | None:
        """Fold one record; remember its ack for the next checkpoint."""
        outcome = self.shard(shard_id).process(view, event, offset)
        self.dirty.add(shard_id)
        self.pending.setdefault(shard_id, []).append(ack_token)
        return outcome

    def skip(self, shard_id: int, ack_token: Any) -> None:
        """A record that needs no state change (a dead letter) still waits for the checkpoint."""
        self.pending.setdefault(shard_id, []).append(ack_token)
        self.dirty.add(shard_id)

    async def checkpoint(self, flush: Callable[[], Awaitable[None]],
                         ack: Callable[[Any], Awaitable[Any]],
                         only: Iterable[int] | None = None) -> int:
        """Flush outputs, save dirty shards, then release their acks. Returns shards saved."""
        async with self.lock:
            targets = sorted(self.dirty if only is None else self.dirty & set(only))
            if not targets:
                return 0
            started = time.perf_counter()
            await flush()
            for shard_id in targets:
                shard = self.shards.get(shard_id)
                if shard is not None:
                    self.store.save(shard_id, shard.snapshot())
                self.dirty.discard(shard_id)
            for shard_id in targets:
                for token in self.pending.pop(shard_id, []):
                    await ack(token)
            self.checkpoints += 1
            self.last_checkpoint_seconds = time.perf_counter() - started
            return len(targets)

    def release(self, shard_ids: Iterable[int]) -> None:
        """Forget shards this worker no longer owns (after their final checkpoint)."""
        for shard_id in shard_ids:
            self.shards.pop(shard_id, None)
            self.pending.pop(shard_id, None)
            self.dirty.discard(shard_id)
