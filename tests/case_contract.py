"""What every alert store backend must do with cases, as checks over open, empty
:class:`~monitor.outputs.store.AlertStore` s: run on SQLite by the unit tests and on a real
PostgreSQL server by the integration tests (the same checks, the same SQL)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson

from monitor.outputs.store import AlertStore
from monitor.outputs.store.cases import COUNT_CAP, CaseQuery, PendingLabel
from monitor.outputs.store.query import Position
from tests.store_contract import BASE_US, alert, corpus, stored

NOW_US = 1_780_000_000_000_000
CLAIM_US = 30_000_000
STATUSES = ("open", "investigating", "confirmed", "dismissed")


def entry(by: str, to: str, version: int) -> dict[str, Any]:
    return {"at": "2026-06-01T00:00:00.000Z", "by": by, "action": "transition", "to": to,
            "version": version}


def label(alert_id: str, decision: int = 1, checked_from: int = 0) -> PendingLabel:
    event_id = f"case-{alert_id}-{decision}"
    body = orjson.dumps({"event_id": event_id, "alert_id": alert_id})
    return PendingLabel(event_id, "labels", 0, "e-1", body, checked_from)


async def move(store: AlertStore, alert_id: str, before: int, status: str,
               assignee: str | None, decisions: int = 0,
               pending: PendingLabel | None = None, claim_us: int = NOW_US + CLAIM_US,
               ) -> bool:
    return await store.apply_change(alert_id, before, (status, assignee, before + 1, decisions),
                                    entry(assignee or "x", status, before + 1), pending,
                                    NOW_US, claim_us)


async def table_rows(store: AlertStore, sql: str) -> list[Any]:
    """Rows of a fixed query (the checks look under the interface)."""
    return await store._run(False, lambda conn: store.backend._fetch(conn, sql, ()))


async def page_all(store: AlertStore, query: CaseQuery) -> tuple[list[str], dict[str, int]]:
    seen: list[str] = []
    counts: dict[str, int] | None = None
    cursor: Position | None = None
    while True:
        page = await store.query_cases(CaseQuery(
            query.status, query.pattern, query.severity, query.assignee, query.since_us,
            query.until_us, query.limit, cursor))
        assert len(page.rows) <= query.limit
        assert counts is None or page.counts == counts  # the counts ignore the page
        counts = page.counts
        seen.extend(row.alert_id for row in page.rows)
        if page.next_cursor is None:
            return seen, counts
        cursor = Position.decode(page.next_cursor)


QUERIES = [
    CaseQuery(limit=9),
    CaseQuery(status="open", limit=7),
    CaseQuery(status="investigating", limit=2),
    CaseQuery(status="confirmed", pattern="rollover_loan", limit=3),
    CaseQuery(assignee="bob", limit=4),
    CaseQuery(assignee="alice", status="dismissed", limit=4),
    CaseQuery(severity=2, limit=5),
    CaseQuery(since_us=BASE_US + 10_000_000, until_us=BASE_US + 50_000_000, limit=6),
]


def reference(records: list[dict[str, Any]], worked: dict[str, tuple[str, str | None]],
              query: CaseQuery) -> tuple[list[str], dict[str, int]]:
    """The ids ``query`` pages through, newest first, and its counts, in Python."""
    chosen, counts = [], dict.fromkeys(STATUSES, 0)
    for record in records:
        made = stored(record)
        status, assignee = worked.get(made.alert_id, ("open", None))
        if ((query.pattern is None or made.pattern == query.pattern)
                and (query.severity is None or made.severity == query.severity)
                and (query.assignee is None or assignee == query.assignee)
                and (query.since_us is None or made.ts_us >= query.since_us)
                and (query.until_us is None or made.ts_us < query.until_us)):
            counts[status] += 1
            if query.status is None or status == query.status:
                chosen.append(made)
    chosen.sort(key=lambda a: (a.ts_us, a.alert_id), reverse=True)
    return [a.alert_id for a in chosen], counts


async def check_queries_filter_page_and_count(store: AlertStore) -> None:
    records = corpus(120, seed=11)
    await store.write([stored(r) for r in records], {}, "c", "alerts")
    draw = random.Random(3)
    worked: dict[str, tuple[str, str | None]] = {}
    for record in draw.sample(records, 60):
        alert_id, who = record["alert_id"], draw.choice(("alice", "bob"))
        assert await move(store, alert_id, 0, "investigating", who)
        ending = draw.choice(("investigating", "confirmed", "dismissed", "open"))
        if ending != "investigating":
            decided = ending in ("confirmed", "dismissed")
            assert await move(store, alert_id, 1, ending, None if ending == "open" else who,
                              int(decided), label(alert_id) if decided else None)
        worked[alert_id] = (ending, None if ending == "open" else who)
    assert {status for status, _ in worked.values()} == set(STATUSES)
    for query in QUERIES:
        assert await page_all(store, query) == reference(records, worked, query), query
    found = await store.read_case(records[0]["alert_id"])
    assert found is not None and found[0].alert == records[0]


async def check_counts_stop_at_the_cap(store: AlertStore) -> None:
    await store.write([stored(alert(n)) for n in range(COUNT_CAP + 5)], {}, "c", "alerts")
    page = await store.query_cases(CaseQuery(limit=3))
    assert page.counts["open"] == COUNT_CAP and len(page.rows) == 3


async def check_a_change_needs_the_version_it_was_planned_on(
        store: AlertStore, other: AlertStore) -> None:
    """Two stores on one database (two workers) deciding the same cases at once: one
    wins each case, the other writes nothing (no history entry, no label)."""
    ids = [alert(n)["alert_id"] for n in range(8)]
    await store.write([stored(alert(n)) for n in range(8)], {}, "c", "alerts")
    for alert_id in ids:
        assert await move(store, alert_id, 0, "investigating", "alice")
    results = await asyncio.gather(*(
        move(writer, alert_id, 1, status, "alice", 1, label(alert_id))
        for alert_id in ids for writer, status in ((store, "confirmed"), (other, "dismissed"))))
    assert all(a != b for a, b in zip(results[::2], results[1::2], strict=True)), results
    for alert_id in ids:
        found = await other.read_case(alert_id)
        assert found is not None
        row, history = found
        assert row.version == 2 and row.decisions == 1 and len(history) == 2
        assert row.status == history[-1]["to"]
    assert await store.pending_labels() == len(ids)
    # A stale version again, later: refused, nothing written.
    assert not await move(store, ids[0], 1, "open", None)
    found = await store.read_case(ids[0])
    assert found is not None and len(found[1]) == 2
    # A case of an alert the store does not hold reads as nothing.
    assert await store.read_case("al_nowhere") is None


async def check_labels_are_claimed_once_and_settled(store: AlertStore) -> None:
    await store.write([stored(alert(n)) for n in range(2)], {}, "c", "alerts")
    first, second = alert(0)["alert_id"], alert(1)["alert_id"]
    assert await move(store, first, 0, "confirmed", "alice", 1, label(first, checked_from=7))
    assert await move(store, second, 0, "dismissed", "bob", 1, label(second))
    # Held by their writer until the claim runs out.
    assert await store.claim_pending_labels(NOW_US, NOW_US + CLAIM_US) == []
    later = NOW_US + CLAIM_US + 1
    claimed = await store.claim_pending_labels(later, later + CLAIM_US)
    assert [(c.event_id, c.checked_from) for c in claimed] == [
        (f"case-{first}-1", 7), (f"case-{second}-1", 0)]
    assert claimed[0].body == label(first).body and claimed[0].partition == 0
    # Claimed now: another settle pass at the same moment gets nothing.
    assert await store.claim_pending_labels(later, later + CLAIM_US) == []
    await store.mark_label_produced(f"case-{first}-1", 41)
    await store.mark_label_produced(f"case-{first}-1", 99)  # recorded once
    assert await store.pending_labels() == 1
    rows = await table_rows(store, "SELECT event_id, produced_offset FROM "
                            "fraudmon_case_labels ORDER BY event_id")
    assert [(str(e), o) for e, o in rows] == [(f"case-{first}-1", 41),
                                              (f"case-{second}-1", None)]
    # The unsettled one comes back once its new claim runs out.
    again = later + 2 * CLAIM_US
    assert [c.event_id for c in await store.claim_pending_labels(again, again + 1)] == [
        f"case-{second}-1"]


async def check_retention_takes_the_cases_with_their_alerts(store: AlertStore) -> None:
    await store.write([stored(alert(n)) for n in range(10)], {}, "c", "alerts")
    ids = [alert(n)["alert_id"] for n in range(10)]
    for alert_id in ids[:2] + ids[-2:]:  # two old cases, two new ones, each decided
        assert await move(store, alert_id, 0, "confirmed", "alice", 1, label(alert_id))
    await store.mark_label_produced(f"case-{ids[0]}-1", 5)
    await store.mark_label_produced(f"case-{ids[-1]}-1", 6)
    assert await store.prune(BASE_US + 5 * 1_000_000, None) == 5  # alerts 0-4 go
    assert await store.read_case(ids[0]) is None
    cases = await table_rows(store, "SELECT alert_id FROM fraudmon_cases ORDER BY alert_id")
    history = await table_rows(store, "SELECT DISTINCT alert_id FROM fraudmon_case_history "
                               "ORDER BY alert_id")
    assert [str(c) for (c,) in cases] == [str(h) for (h,) in history] == ids[-2:]
    # A label not yet known to be on the topic outlives its alert until it is settled.
    labels = await table_rows(store, "SELECT event_id FROM fraudmon_case_labels "
                              "ORDER BY event_id")
    assert [str(e) for (e,) in labels] == sorted(
        [f"case-{ids[1]}-1", f"case-{ids[-2]}-1", f"case-{ids[-1]}-1"])
    page = await store.query_cases(CaseQuery(limit=50))
    assert page.counts == {"open": 3, "investigating": 0, "confirmed": 2, "dismissed": 0}
