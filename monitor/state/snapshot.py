"""Shard snapshots: taken a slice at a time while the shard goes on, and read back.

A snapshot is the shard at one point of its log: the header (models and small parts,
pickled when the snapshot begins), the entities pickled in groups, and the dedup window
and decision memory in pieces. :class:`SnapshotJob` takes one without stopping the
shard for long; :func:`read_snapshot` checks and reads one back (either format, and
checkpoints written before the layout moved, through :mod:`monitor.state.pickled`).
"""

from __future__ import annotations

import pickle
import time
from typing import TYPE_CHECKING, Any

from monitor.detection.models.supervised import DecisionMemory, Remembered
from monitor.errors import CheckpointError
from monitor.state import pickled
from monitor.state.dedup import pack, unpacked

if TYPE_CHECKING:
    from monitor.detection.entities import EntityState
    from monitor.state.shard import Shard

SNAPSHOT_FORMAT = 1
_SNAPSHOT_KEYS = frozenset({"model_version", "entities", "models", "seen", "applied_offset",
                            "watermark", "processed"})
"""Keys every checkpoint has; keys added later are optional and default when absent."""
SLICED_FORMAT = 2
"""A snapshot in parts (:class:`SnapshotJob`): the header, a format-1 dict whose
``"entities"`` lists the entity keys in order (its ``"seen"`` and ``"memory"`` are None),
the entities pickled in groups, and the dedup window and decision memory in pieces."""
_SLICED_KEYS = frozenset({"header", "entities", "seen", "memory"})
ENTITIES_PER_PICKLE = 8
"""Entities per pickled group; a job checks its time budget after each group (8 entities
pickle in 0.1-0.2 ms)."""
SLICE_SECONDS = 0.002
"""How long one :meth:`SnapshotJob.step` pickles before it returns."""
SEEN_PER_PART = 16_384
"""Dedup-window tokens joined per piece of a step (about 1 ms)."""
MEMORY_PER_PART = 128
"""Remembered decisions pickled per piece of a step (each holds its features)."""
def read_snapshot(shard_id: int, data: bytes, horizon: float, capacity: int,
                  ) -> dict[str, Any]:
    """A snapshot's state as one format-1 dict (``"entities"`` a dict of entity states,
    ``"seen"`` the dedup window's tokens, ``"memory"`` a :class:`DecisionMemory` of
    ``horizon`` and ``capacity`` when the snapshot is sliced), checked; raises
    :class:`CheckpointError` for anything else."""
    state = _loaded(shard_id, data)
    entities = state["entities"]
    if state["format"] == SLICED_FORMAT:
        parts = state
        state = _loaded(shard_id, state["header"])
        if state["format"] != SNAPSHOT_FORMAT:
            raise CheckpointError(f"shard {shard_id}: not a checkpoint header")
        state["entities"] = _entities(shard_id, state["entities"], entities)
        state["seen"], state["memory"] = _pieces(shard_id, parts, horizon, capacity)
    if not isinstance(state["entities"], dict):
        raise CheckpointError(f"shard {shard_id}: checkpoint entities are not a dict")
    return state


def _loaded(shard_id: int, data: bytes) -> dict[str, Any]:
    """A checkpoint's outer dict (either form), or its header, checked."""
    try:
        state = pickled.loads(data)
    except Exception as exc:  # any unpickling failure means a bad file
        raise CheckpointError(f"shard {shard_id}: unreadable checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") not in (SNAPSHOT_FORMAT,
                                                                  SLICED_FORMAT):
        raise CheckpointError(f"shard {shard_id}: not a checkpoint of this format")
    if state.get("shard_id") != shard_id:
        raise CheckpointError(f"shard {shard_id}: checkpoint of another shard")
    keys = _SNAPSHOT_KEYS if state["format"] == SNAPSHOT_FORMAT else _SLICED_KEYS
    missing = keys.difference(state)
    if missing:
        raise CheckpointError(f"shard {shard_id}: checkpoint lacks {sorted(missing)}")
    return state

def _pieces(shard_id: int, parts: dict[str, Any], horizon: float, capacity: int,
        ) -> tuple[list[str], DecisionMemory]:
    """The dedup window's tokens and the decision memory of a sliced snapshot."""
    try:
        seen = [token for piece in parts["seen"] for token in unpacked(piece)]
        memory = DecisionMemory(horizon, capacity)
        for piece in parts["memory"]:
            memory.items.update(pickled.loads(piece))
    except Exception as exc:  # a missing or damaged piece means a bad checkpoint
        raise CheckpointError(f"shard {shard_id}: unreadable checkpoint part: "
                              f"{exc!r}") from exc
    return seen, memory

def _entities(shard_id: int, order: Any, parts: Any) -> dict[str, EntityState]:
    """The entities of a sliced snapshot, in their order at the snapshot."""
    try:
        merged: dict[str, EntityState] = {}
        for part in parts:
            merged.update(pickled.loads(part))
        return {key: merged[key] for key in order}
    except Exception as exc:  # a part that does not unpickle, or an entity missing
        raise CheckpointError(f"shard {shard_id}: unreadable checkpoint entities: "
                              f"{exc!r}") from exc


class SnapshotJob:
    """A point-in-time snapshot of one shard, its entities pickled a slice at a time.

    The models and small parts were pickled when the job began (the header), and the
    dedup window's tokens and the decision memory's items copied. The entities that
    existed then are "remaining" until pickled: :meth:`step` pickles them in groups, and
    the shard calls :meth:`preserve` before it changes or drops one of them, so each is
    pickled as it was at the beginning (copy on write). Entities created
    since are not in the snapshot. Unpickled, the parts share no objects with each other
    or with the header, which nothing needs: the mappings an entity shares with the
    decision memory (``scores``) are replaced, never changed in place.
    """

    def __init__(self, shard: Shard, header: dict[str, Any], order: list[str],
                 seen: list[str], memory: list[tuple[str, Remembered]]) -> None:
        self.shard = shard
        self.header = pickle.dumps({"format": SNAPSHOT_FORMAT, **header},
                                   protocol=pickle.HIGHEST_PROTOCOL)
        self.order = order
        self.seen = seen  # the dedup window's tokens when the job began, oldest first
        self.memory = memory  # the decision memory's items then
        self.seen_parts: list[str | list[str]] = []
        self.memory_parts: list[bytes] = []
        self.seen_next = self.memory_next = 0
        self.remaining = set(order)
        self.next = 0  # index in ``order`` of the next entity to consider
        self.parts: list[bytes] = []
        self.data: bytes | None = None
        self.cancelled = False

    def preserve(self, key: str, state: EntityState) -> None:
        """Pickle ``state`` now if the snapshot still needs it (it is about to change)."""
        remaining = self.remaining
        if key in remaining:
            remaining.discard(key)
            self.parts.append(pickle.dumps({key: state}, protocol=pickle.HIGHEST_PROTOCOL))

    def step(self, budget: float | None = SLICE_SECONDS) -> bool:
        """Pickle remaining entities for about ``budget`` seconds (all of them when
        ``None``); True once the snapshot is complete (see :meth:`result`)."""
        if self.cancelled:
            raise CheckpointError(f"shard {self.shard.shard_id}: snapshot cancelled")
        if self.data is not None:
            return True
        order, remaining, entities = self.order, self.remaining, self.shard.entities
        started = time.perf_counter()
        count = len(order)
        worked = self.next < count
        while self.next < count:
            group: dict[str, EntityState] = {}
            while self.next < count and len(group) < ENTITIES_PER_PICKLE:
                key = order[self.next]
                self.next += 1
                if key in remaining:
                    remaining.discard(key)
                    group[key] = entities[key]
            if group:
                self.parts.append(pickle.dumps(group, protocol=pickle.HIGHEST_PROTOCOL))
            if budget is not None and time.perf_counter() - started >= budget:
                return False
        # Then the dedup window and the decision memory, in pieces of about a millisecond,
        # and the assembly in a step of its own.
        seen, memory = self.seen, self.memory
        while self.seen_next < len(seen):
            if worked and budget is not None and time.perf_counter() - started >= budget:
                return False
            piece = seen[self.seen_next:self.seen_next + SEEN_PER_PART]
            self.seen_next += SEEN_PER_PART
            self.seen_parts.append(pack(piece))
            worked = True
        while self.memory_next < len(memory):
            if worked and budget is not None and time.perf_counter() - started >= budget:
                return False
            items = memory[self.memory_next:self.memory_next + MEMORY_PER_PART]
            self.memory_next += MEMORY_PER_PART
            self.memory_parts.append(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
            worked = True
        if worked and budget is not None:
            return False
        self.data = pickle.dumps({"format": SLICED_FORMAT, "shard_id": self.shard.shard_id,
                                  "header": self.header, "entities": self.parts,
                                  "seen": self.seen_parts, "memory": self.memory_parts},
                                 protocol=pickle.HIGHEST_PROTOCOL)
        self.parts = []
        self._detach()
        return True

    def result(self) -> bytes:
        """The snapshot, once :meth:`step` returned True."""
        if self.data is None:
            raise CheckpointError(f"shard {self.shard.shard_id}: snapshot not complete")
        return self.data

    def cancel(self) -> None:
        """Abandon the snapshot: the shard stops preserving, :meth:`step` raises."""
        self.cancelled = True
        self.parts = []
        self.remaining = set()
        self._detach()

    @property
    def active(self) -> bool:
        """Whether the shard still preserves entities for this job."""
        return self.shard.job is self

    def _detach(self) -> None:
        if self.shard.job is self:
            self.shard.job = None
