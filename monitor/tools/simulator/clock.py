"""Simulated time: whole seconds since the start, rendered as RFC 3339 in China time.

Generators work in integer seconds (``t``) from the simulation start; only the event
log turns them into text, once per kept event.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Final

MINUTE: Final = 60
HOUR: Final = 3_600
DAY: Final = 86_400
CHINA: Final = timezone(timedelta(hours=8))
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=CHINA)


class Clock:
    """Maps simulation seconds to local (+08:00) calendar days and RFC 3339 text."""

    def __init__(self, start: datetime, days: int) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulation start needs a UTC offset")
        if days < 1:
            raise ValueError("the simulation needs at least one day")
        local = start.astimezone(CHINA)
        self.start = local
        self.days = days
        self.horizon = days * DAY
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self._offset = int((local - midnight).total_seconds())
        self._first_date = midnight.date()
        self._dates: dict[int, str] = {}

    def date(self, day: int) -> date:
        """The local calendar date of day index ``day`` (day 0 holds the start)."""
        return self._first_date + timedelta(days=day)

    def day_of(self, t: int) -> int:
        """The local day index that second ``t`` falls on."""
        return (t + self._offset) // DAY

    def at(self, day: int, seconds_into_day: float = 0.0) -> int:
        """Simulation seconds of a local time of day on day index ``day``."""
        return day * DAY + int(seconds_into_day) - self._offset

    def text(self, t: int) -> str:
        """RFC 3339 with the +08:00 offset, to the second.

        >>> Clock(DEFAULT_START, 1).text(DAY + 3_661)
        '2026-01-02T01:01:01+08:00'
        """
        day, rest = divmod(t + self._offset, DAY)
        prefix = self._dates.get(day)
        if prefix is None:
            prefix = self._dates[day] = self.date(day).isoformat()
        hour, rest = divmod(rest, HOUR)
        minute, second = divmod(rest, MINUTE)
        return f"{prefix}T{hour:02d}:{minute:02d}:{second:02d}+08:00"

    def monthly(self, day_of_month: int, *, workday: bool = False) -> list[int]:
        """Day indices of ``day_of_month`` (capped at 28) in each month of the run;
        with ``workday``, a weekend date moves back to the Friday before."""
        dom = max(1, min(28, day_of_month))
        found: list[int] = []
        first, last = self.date(0), self.date(self.days - 1)
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            target = date(year, month, dom)
            if workday and target.weekday() >= 5:
                target -= timedelta(days=target.weekday() - 4)
            day = (target - first).days
            if 0 <= day < self.days:
                found.append(day)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return found
