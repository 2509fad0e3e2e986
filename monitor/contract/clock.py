"""Time sanity: which event times are plausible, and how far a watermark may run ahead.

An event time is any RFC 3339 time the contract parses, year 0001 to 9999; a shard's
watermark is the largest event time it has seen and never goes back. One event dated
9999 would age every entity past the idle horizon at once. So an event time must lie
between a floor (default 2000-01-01) and the clock plus an allowed future skew (default
one day), and a watermark never advances more than a step past the clock.

Which clock: the live worker and the HTTP API use the wall clock (:class:`WallClock`).
Replay, backtests and evaluation use the file's own clock (:class:`StreamClock`): the
largest plausible time seen so far, advancing at most one step per event, so a history
file from any year replays as it ran, and one outlier inside it moves the clock by a step,
not to the outlier. Replay also admits any time up to the wall clock plus the skew (a
history file may have gaps), and nothing beyond both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from monitor.errors import InvalidEvent

DEFAULT_FLOOR: Final = datetime(2000, 1, 1, tzinfo=UTC).timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class TimeRule:
    """The bounds event times obey (``processing`` settings)."""

    floor: float = DEFAULT_FLOOR
    """The earliest plausible event time, epoch seconds."""
    max_future_skew: float = 86_400.0
    """How far past the clock an event time may lie, in seconds (producers' clocks drift)."""
    max_watermark_step: float = 3_600.0
    """How far past the clock a shard's watermark may advance, in seconds."""

    def check(self, ts: float, now: float, *, also_before: float | None = None) -> None:
        """Raise :class:`InvalidEvent` when ``ts`` is before the floor or more than the
        skew past ``now`` (and past ``also_before``, a second clock that may vouch for it).

        >>> rule = TimeRule(floor=0.0, max_future_skew=10.0)
        >>> rule.check(5.0, now=0.0)
        >>> rule.check(20.0, now=0.0)
        Traceback (most recent call last):
        ...
        monitor.errors.InvalidEvent: field 'ts' is 20 s ahead of the clock (at most 10 s)
        """
        if ts < self.floor:
            raise InvalidEvent(f"field 'ts' is before {_iso(self.floor)}")
        limit = now + self.max_future_skew
        if ts > limit and (also_before is None or ts > also_before + self.max_future_skew):
            raise InvalidEvent(f"field 'ts' is {ts - now:.0f} s ahead of the clock "
                               f"(at most {self.max_future_skew:.0f} s)")


class WallClock:
    """The host's clock: what the live worker and the HTTP API measure times against."""

    def now(self) -> float:
        return time.time()


class StreamClock:
    """A file's own clock: the largest plausible event time seen, moving at most
    ``step`` seconds per event (replay, backtests, evaluation).

    >>> clock = StreamClock(step=60.0)
    >>> clock.observe(1000.0); clock.observe(1030.0); clock.observe(9e9); clock.now()
    1090.0
    """

    __slots__ = ("step", "value")

    def __init__(self, step: float) -> None:
        self.step = step
        self.value: float | None = None

    def observe(self, ts: float) -> None:
        """Move the clock toward ``ts`` (an admitted event's time)."""
        value = self.value
        if value is None:
            self.value = ts
        elif ts > value:
            ahead = value + self.step
            self.value = ts if ts < ahead else ahead

    def now(self) -> float:
        """The clock; the wall clock before the first event."""
        value = self.value
        return time.time() if value is None else value
