"""What detection costs per entity family: time per view, the longest pause, state bytes.

``fraudmon cost EVENTS.jsonl`` replays a file through the real :class:`Engine` with the
engine timing every shard call, so the figures are those of ``fraudmon replay`` itself (plus two
clock reads per view). A view's time covers everything its family does for it: folding
the event into the state, windows and sketches, features, typology rules, the anomaly
model's scoring and learning, the label model, the policy and the decision record.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.processing.engine import Engine
from monitor.tools.replay import replay

if TYPE_CHECKING:
    from collections.abc import Callable

    from monitor.config import Settings
    from monitor.routing.views import View


@dataclass(slots=True)
class FamilyCost:
    """Timings of the views of one entity family (``label`` views included as a family)."""

    views: int = 0
    seconds: float = 0.0
    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.views += 1
        self.seconds += seconds
        self.samples.append(seconds)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _book(costs: dict[str, FamilyCost]) -> Callable[[View, float], None]:
    """Books each view's shard time to its family (labels to ``label``)."""

    def book(view: View, seconds: float) -> None:
        family = "label" if view.role in ("label", "label_copy") else view.entity_type
        cost = costs.get(family)
        if cost is None:
            cost = costs[family] = FamilyCost()
        cost.add(seconds)

    return book


@dataclass(frozen=True, slots=True)
class CostReport:
    events: int
    seconds: float
    families: dict[str, FamilyCost]
    state_bytes: dict[str, tuple[int, int]]   # family -> (entities, pickled bytes)

    def lines(self) -> list[str]:
        out = [f"{'family':<10}{'views':>10}{'us/view':>10}{'p99 us':>10}{'max ms':>9}"
               f"{'share':>8}{'entities':>10}{'B/entity':>10}"]
        timed = sum(cost.seconds for cost in self.families.values()) or 1.0
        for name, cost in sorted(self.families.items()):
            entities, size = self.state_bytes.get(name, (0, 0))
            out.append(
                f"{name:<10}{cost.views:>10,}{1e6 * cost.seconds / max(cost.views, 1):>10.1f}"
                f"{1e6 * cost.quantile(0.99):>10.1f}{1e3 * max(cost.samples, default=0):>9.2f}"
                f"{cost.seconds / timed:>8.1%}{entities:>10,}"
                f"{size / entities if entities else 0:>10,.0f}")
        views = sum(cost.views for cost in self.families.values())
        out.append(f"{self.events:,} events, {views / max(self.events, 1):.2f} views per event;"
                   f" shards {1e6 * timed / max(self.events, 1):.1f} us per event of"
                   f" {1e6 * self.seconds / max(self.events, 1):.1f} us in all (the rest is"
                   f" reading, parsing, routing and writing)")
        return out


def measure(path: Path, settings: Settings) -> CostReport:
    """Replay ``path`` with timed shards; then size every entity's pickled state."""
    engine = Engine(settings)
    costs: dict[str, FamilyCost] = {}
    shards = engine.shards
    engine.timer = _book(costs)
    with tempfile.TemporaryDirectory(prefix="fraudmon-cost-") as out_dir:
        summary = replay(path, Path(out_dir), engine, settings.processing.max_event_bytes)
    state: dict[str, list[int]] = {}
    for shard in shards:
        for key, entity in shard.entities.items():
            tally = state.setdefault(key.split(":", 1)[0], [0, 0])
            tally[0] += 1
            tally[1] += len(pickle.dumps(entity, protocol=pickle.HIGHEST_PROTOCOL))
    return CostReport(summary.events, summary.seconds, costs,
                      {name: (n, size) for name, (n, size) in state.items()})


def main_cost(args: argparse.Namespace, settings: Settings) -> int:
    for line in measure(args.events, settings).lines():
        print(line)
    return 0
