"""State cost per idle entity, measured in-process (for ``fraudmon bench``).

Builds ``entities`` account entities through a real :class:`~monitor.processing.engine.Engine`
(one payment between two fresh accounts each, an hour of event time apart, so every
entity ends idle with one event), then reports what the shards hold per entity:
traced Python allocations (``tracemalloc``) with the per-shard dedup window and the
decision memory set aside (both are bounded per shard, not per entity), and the
pickled checkpoint bytes. The shards' models are built before the count starts: they
are per shard too (:meth:`monitor.state.shard.Shard.prepare`).
"""

from __future__ import annotations

import gc
import pickle
import tracemalloc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.contract.events import Payment
from monitor.processing.engine import Engine

if TYPE_CHECKING:
    from monitor.config import Settings

_START = 1_767_196_800.0  # 2026-01-01T00:00:00+08:00


@dataclass(frozen=True, slots=True)
class StateSize:
    entities: int
    traced_bytes_per_entity: float
    pickled_bytes_per_entity: float
    bounded_bytes: int
    """Dedup window and decision memory at the end: per shard, capped, not per entity."""


def measure(settings: Settings, entities: int) -> StateSize:
    """Build ``entities`` idle account entities and measure what each one costs."""
    gc.collect()
    tracemalloc.start()
    try:
        engine = Engine(settings)  # its shards' models built: not per entity
        base = tracemalloc.get_traced_memory()[0]
        for number in range(entities // 2):
            ts = _START + number * 3600.0 / 50
            text = f"{number:09d}"
            engine.process(Payment(event_id=f"ss-{text}", ts=ts, ts_text=text,
                                   payer=f"p{text}", payee=f"q{text}", amount=120.0,
                                   currency="CNY", channel="card"))
        gc.collect()
        total = tracemalloc.get_traced_memory()[0] - base
        for shard in engine.shards:
            shard.seen.clear()
            shard.memory.expire(float("inf"))
        gc.collect()
        state = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    held = sum(len(shard.entities) for shard in engine.shards)
    pickled = sum(len(pickle.dumps(shard.entities, protocol=pickle.HIGHEST_PROTOCOL))
                  for shard in engine.shards)
    return StateSize(held, state / max(held, 1), pickled / max(held, 1), total - state)
