"""What every alert store backend must do, as checks over an open, empty
:class:`~monitor.outputs.store.AlertStore`: run on SQLite by the unit tests and on a
real PostgreSQL server by the integration tests."""

from __future__ import annotations

import random
from typing import Any

import orjson

from monitor.contract.vocabulary import PATTERNS, SEVERITIES
from monitor.outputs.store import AlertStore
from monitor.outputs.store.query import AlertQuery, Position
from monitor.outputs.store.record import StoredAlert, stored_alert

BASE_US = 1_767_571_200_000_000  # 2026-01-05T00:00:00Z


def alert(n: int, seconds: int | None = None, pattern: str = "mule_account",
          severity: str = "low", entity: str = "a-1", entity_type: str = "account",
          ) -> dict[str, Any]:
    from datetime import UTC, datetime

    at = BASE_US // 1_000_000 + (n if seconds is None else seconds)
    return {"alert_id": f"al_{n:06d}", "pattern": pattern, "severity": severity,
            "entity": entity, "entity_type": entity_type, "score": 0.9,
            "ts": datetime.fromtimestamp(at, UTC).isoformat()}


def stored(record: dict[str, Any]) -> StoredAlert:
    made = stored_alert(orjson.dumps(record), 65536)
    assert isinstance(made, StoredAlert), made
    return made


def corpus(count: int = 300, seed: int = 5) -> list[dict[str, Any]]:
    """Alerts with ties in event time, every pattern, severity and a few entities."""
    draw = random.Random(seed)
    return [alert(n, seconds=draw.randrange(count // 3), pattern=draw.choice(PATTERNS),
                  severity=draw.choice(SEVERITIES), entity=f"e-{draw.randrange(7)}",
                  entity_type=draw.choice(("account", "borrower", "lender")))
            for n in range(count)]


def expected(records: list[dict[str, Any]], query: AlertQuery) -> list[str]:
    """The ids ``query`` must page through, newest first: the reference in Python."""
    wanted = query.severities()
    chosen = []
    for record in records:
        made = stored(record)
        if ((query.pattern is None or made.pattern == query.pattern)
                and (query.entity is None or made.entity == query.entity)
                and (query.entity_type is None or made.entity_type == query.entity_type)
                and (wanted is None or made.severity in wanted)
                and (query.since is None or made.ts_us >= round(query.since * 1e6))
                and (query.until is None or made.ts_us < round(query.until * 1e6))):
            chosen.append(made)
    chosen.sort(key=lambda a: (a.ts_us, a.alert_id), reverse=True)
    return [a.alert_id for a in chosen]


async def page_all(store: AlertStore, query: AlertQuery) -> list[str]:
    seen: list[str] = []
    cursor: Position | None = None
    while True:
        page = await store.query(AlertQuery(**{**_fields(query), "cursor": cursor}))
        assert len(page.alerts) <= query.limit
        seen.extend(a["alert_id"] for a in page.alerts)
        if page.next_cursor is None:
            return seen
        assert len(page.alerts) == query.limit
        cursor = Position.decode(page.next_cursor)


def _fields(query: AlertQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in AlertQuery.__slots__}


QUERIES = [
    AlertQuery(limit=7),
    AlertQuery(pattern="rollover_loan", limit=5),
    AlertQuery(entity="e-3", limit=4),
    AlertQuery(entity_type="lender", min_severity="medium", limit=6),
    AlertQuery(severity="high", limit=3),
    AlertQuery(min_severity="high", pattern="structuring", limit=2),
    AlertQuery(severity="low", min_severity="medium", limit=2),
    AlertQuery(since=(BASE_US / 1e6) + 20, until=(BASE_US / 1e6) + 60, limit=9),
    AlertQuery(min_severity="medium", until=(BASE_US / 1e6) + 50, limit=11),
]


async def check_pages_match_the_reference(store: AlertStore) -> None:
    records = corpus()
    batch = [stored(r) for r in records]
    assert await store.write(batch, {0: 10, 1: 20}, "c", "alerts") == len(records)
    for query in QUERIES:
        assert await page_all(store, query) == expected(records, query), query


async def check_writes_are_idempotent_and_offsets_move_with_them(store: AlertStore) -> None:
    first = [stored(alert(n)) for n in range(5)]
    assert await store.write(first, {0: 5}, "group-a", "alerts") == 5
    # The same alerts again (a re-read topic, a re-emitted alert): nothing new.
    assert await store.write(first[2:], {0: 3, 1: 7}, "group-a", "alerts") == 0
    assert await store.count() == 5
    # An offset never goes back; offsets are per consumer and topic.
    assert await store.offsets("group-a", "alerts") == {0: 5, 1: 7}
    assert await store.offsets("group-b", "alerts") == {}
    assert await store.offsets("group-a", "other") == {}


async def check_retention_by_age_and_count(store: AlertStore) -> None:
    await store.write([stored(alert(n)) for n in range(12_000)], {}, "c", "alerts")
    gone = await store.prune(BASE_US + 1_000 * 1_000_000, None)  # older than +1000 s
    assert gone == 1_000 and await store.count() == 11_000
    gone = await store.prune(None, 4_000)
    assert gone == 7_000 and await store.count() == 4_000
    left = await page_all(store, AlertQuery(limit=500))
    assert left == [f"al_{n:06d}" for n in range(11_999, 7_999, -1)]
    assert await store.prune(None, 4_000) == 0
