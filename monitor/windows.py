"""Event-time sliding windows with running aggregates, cheap to query on every event.

A window keeps its entries in arrival order and evicts from the left whatever is older
than the horizon, so a sum or a distinct count costs O(1) per query instead of a scan.
Entries that arrive late (older than the newest) are still counted until they age out.
"""

from __future__ import annotations

from collections import deque


class FlowWindow:
    """Money flows of one direction: total amount, count, distinct counterparties."""

    __slots__ = ("entries", "flagged", "parties", "total")

    def __init__(self) -> None:
        # (ts, amount, counterparty, flagged)
        self.entries: deque[tuple[float, float, str, bool]] = deque()
        self.total = 0.0
        self.flagged = 0.0
        self.parties: dict[str, int] = {}

    def add(self, ts: float, amount: float, party: str, flagged: bool = False,
            cap: int = 512) -> None:
        if len(self.entries) >= cap:
            self._pop()
        self.entries.append((ts, amount, party, flagged))
        self.total += amount
        if flagged:
            self.flagged += amount
        self.parties[party] = self.parties.get(party, 0) + 1

    def evict(self, oldest: float) -> bool:
        """Drop entries older than ``oldest``; True when the window is then empty."""
        entries = self.entries
        if entries and entries[0][0] < oldest:
            # The loop of ``_pop``, with the running sums in locals (same operations).
            parties = self.parties
            total, flagged_total = self.total, self.flagged
            while entries and entries[0][0] < oldest:
                _, amount, party, flagged = entries.popleft()
                total -= amount
                if flagged:
                    flagged_total -= amount
                left = parties[party] - 1
                if left:
                    parties[party] = left
                else:
                    del parties[party]
            if entries:
                self.total, self.flagged = total, flagged_total
            else:
                self.total = self.flagged = 0.0  # no float residue once empty
        return not entries

    def _pop(self) -> None:
        _, amount, party, flagged = self.entries.popleft()
        self.total -= amount
        if flagged:
            self.flagged -= amount
        left = self.parties[party] - 1
        if left:
            self.parties[party] = left
        else:
            del self.parties[party]
        if not self.entries:
            self.total = self.flagged = 0.0  # no float residue once empty

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def distinct(self) -> int:
        return len(self.parties)

    def __bool__(self) -> bool:
        return bool(self.entries)


class TimeWindow:
    """Just timestamps (and a tag), for counts within a horizon."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: deque[tuple[float, str]] = deque()

    def add(self, ts: float, tag: str = "", cap: int = 512) -> None:
        if len(self.entries) >= cap:
            self.entries.popleft()
        self.entries.append((ts, tag))

    def evict(self, oldest: float) -> None:
        entries = self.entries
        while entries and entries[0][0] < oldest:
            entries.popleft()

    @property
    def count(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)
