"""Random draws the generators share: skewed amounts, counts, times of day, and ids.

Every generator gets its own ``random.Random`` seeded from the run seed and its name,
so adding a pattern does not reshuffle the everyday traffic.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

from monitor.tools.simulator.clock import HOUR

T = TypeVar("T")

# Relative activity by local hour: quiet nights, lunch and evening peaks.
CONSUMER_HOURS = (0.3, 0.15, 0.08, 0.05, 0.05, 0.1, 0.4, 1.2, 1.8, 1.6, 1.5, 2.2,
                  2.8, 2.0, 1.4, 1.4, 1.6, 2.0, 2.8, 3.0, 2.6, 2.0, 1.2, 0.6)
OFFICE_HOURS = (0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.1, 0.4, 1.5, 2.5, 2.5, 2.0,
                1.2, 1.8, 2.4, 2.4, 2.0, 1.4, 0.6, 0.3, 0.2, 0.1, 0.05, 0.02)


def seeded(seed: int, name: str) -> random.Random:
    """The generator ``name``'s own stream (string seeds hash with SHA-512: stable)."""
    return random.Random(f"{seed}:{name}")  # noqa: S311 - simulation, not security


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A right-skewed positive draw around ``median``."""
    return median * math.exp(rng.gauss(0.0, sigma))


def clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def money(value: float) -> float:
    """Yuan to the fen, never zero."""
    return max(0.01, round(value, 2))


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def split(rng: random.Random, total: float, parts: int) -> list[float]:
    """``total`` cut into ``parts`` uneven positive shares."""
    weights = [0.3 + rng.random() for _ in range(parts)]
    scale = total / sum(weights)
    return [w * scale for w in weights]


class Weighted(Generic[T]):
    """Repeated weighted picks from a fixed list, by bisection on cumulative weights."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("need as many positive weights as items")
        self._items = list(items)
        self._cumulative = list(accumulate(weights))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return self._items[min(index, len(self._items) - 1)]


class HourOfDay:
    """Seconds into a day, drawn from an hourly activity profile."""

    def __init__(self, weights: Sequence[float]) -> None:
        self._hours = Weighted(range(24), weights)

    def draw(self, rng: random.Random) -> int:
        return self._hours.pick(rng) * HOUR + rng.randrange(HOUR)


def zipf_weights(n: int, exponent: float) -> list[float]:
    return [1.0 / (rank ** exponent) for rank in range(1, n + 1)]


class Ids:
    """Opaque, unique identifiers: ``acct-48213907``. Nothing in an id hints at a role."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def new(self, prefix: str, digits: int = 8) -> str:
        while True:
            candidate = f"{prefix}-{self._rng.randrange(10 ** digits):0{digits}d}"
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate

    def account(self) -> str:
        return self.new("acct", 9)

    def device(self) -> str:
        return self.new("dev", 9)
