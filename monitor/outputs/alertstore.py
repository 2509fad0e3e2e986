"""Recent alerts, kept in memory for ``GET /alerts``: bounded, filtered, paged.

The worker adds each alert as it emits it, so the store holds the alerts of the shards
this worker scored since it started (a re-emitted alert, same ``alert_id``, is kept
once). Pages run newest first; ``cursor`` is the sequence number to continue below.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.contract.vocabulary import severity_rank


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters and page of one ``GET /alerts``; ``None`` means no filter."""

    pattern: str | None = None
    entity: str | None = None
    entity_type: str | None = None
    severity: str | None = None
    min_severity: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: int | None = None

    def matches(self, alert: dict[str, Any], ts: float) -> bool:
        return ((self.pattern is None or alert.get("pattern") == self.pattern)
                and (self.entity is None or alert.get("entity") == self.entity)
                and (self.entity_type is None or alert.get("entity_type") == self.entity_type)
                and (self.severity is None or alert.get("severity") == self.severity)
                and (self.min_severity is None or severity_rank(str(alert.get("severity")))
                     >= severity_rank(self.min_severity))
                and (self.since is None or ts >= self.since)
                and (self.until is None or ts < self.until))


@dataclass(frozen=True, slots=True)
class Page:
    alerts: list[dict[str, Any]]
    next_cursor: int | None


class AlertStore:
    """The latest ``capacity`` alerts; a sink (``add``/``flush``) fed by the score agent."""

    name = "recent-alerts"

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self.by_id: OrderedDict[str, tuple[int, float, dict[str, Any]]] = OrderedDict()
        self.sequence = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def put(self, alert: dict[str, Any], ts: float) -> None:
        """Keep ``alert`` (event time ``ts``); a repeat of a kept alert id is ignored."""
        alert_id = str(alert["alert_id"])
        if alert_id in self.by_id:
            return
        self.sequence += 1
        self.by_id[alert_id] = (self.sequence, ts, alert)
        if len(self.by_id) > self.capacity:
            self.by_id.popitem(last=False)

    async def add(self, record: dict[str, Any]) -> None:
        """Sink interface; the event time comes from the record's own ``ts`` (RFC 3339)."""
        self.put(record, datetime.fromisoformat(str(record["ts"])).timestamp())

    async def flush(self) -> None:
        """Nothing to make durable: the store is memory only."""

    def _newest_first(self) -> Iterator[tuple[int, float, dict[str, Any]]]:
        return reversed(self.by_id.values())

    def query(self, query: AlertQuery) -> Page:
        """One page of matching alerts, newest first."""
        found: list[dict[str, Any]] = []
        last = None
        for sequence, ts, alert in self._newest_first():
            if query.cursor is not None and sequence >= query.cursor:
                continue
            if not query.matches(alert, ts):
                continue
            if len(found) == query.limit:
                return Page(found, last)
            found.append(alert)
            last = sequence
        return Page(found, None)
