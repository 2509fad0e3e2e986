"""When to try a failed delivery again: exponential backoff with jitter, and ``Retry-After``.

Attempt ``n`` (1 for the first retry) waits ``min(cap, initial * 2**(n-1))``, of which
the upper half is random ("equal jitter"): retries of many alerts spread out, yet none
comes back sooner than half its step. A receiver's ``Retry-After`` (seconds or an HTTP
date) replaces the backoff, capped so that a bogus value cannot park an alert forever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with equal jitter."""

    initial: float = 5.0
    cap: float = 3600.0
    max_retry_after: float = 3600.0
    rng: random.Random = field(default_factory=random.Random)

    def step(self, attempt: int) -> float:
        """The un-jittered delay before retry ``attempt`` (1-based)."""
        return float(min(self.cap, self.initial * 2 ** min(attempt - 1, 62)))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt``; the peer's ``retry_after`` wins."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        step = self.step(attempt)
        return step / 2 + self.rng.uniform(0, step / 2)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from ``now`` a ``Retry-After`` header asks for; ``None`` if absent or bad.

    >>> parse_retry_after("7", now=0)
    7.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=30)
    30.0
    >>> parse_retry_after("soon", now=0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
