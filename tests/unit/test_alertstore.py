"""The recent-alerts store behind ``GET /alerts``: filters, pages, bounds, repeats."""

from __future__ import annotations

from typing import Any

from monitor.outputs.alertstore import AlertQuery, AlertStore


def alert(n: int, pattern: str = "mule_account", severity: str = "low",
          entity: str = "a-1") -> dict[str, Any]:
    return {"alert_id": f"al_{n}", "pattern": pattern, "severity": severity, "entity": entity,
            "entity_type": "account", "ts": f"2026-01-05T09:{n:02d}:00+08:00"}


def filled() -> AlertStore:
    store = AlertStore(capacity=100)
    for n in range(10):
        store.put(alert(n, pattern="rollover_loan" if n % 2 else "mule_account",
                        severity=("low", "medium", "high")[n % 3], entity=f"e-{n % 4}"),
                  ts=1000.0 + n)
    return store


def ids(alerts: list[dict[str, Any]]) -> list[int]:
    return [int(a["alert_id"][3:]) for a in alerts]


def test_pages_run_newest_first_and_cover_everything_once() -> None:
    store = filled()
    seen: list[int] = []
    page = store.query(AlertQuery(limit=3))
    while True:
        seen += ids(page.alerts)
        if page.next_cursor is None:
            break
        page = store.query(AlertQuery(limit=3, cursor=page.next_cursor))
    assert seen == list(range(9, -1, -1))


def test_an_exact_last_page_has_no_next_cursor() -> None:
    store = filled()
    first = store.query(AlertQuery(limit=5))
    assert first.next_cursor is not None
    assert store.query(AlertQuery(limit=5, cursor=first.next_cursor)).next_cursor is None


def test_filters_combine() -> None:
    store = filled()
    assert ids(store.query(AlertQuery(pattern="rollover_loan")).alerts) == [9, 7, 5, 3, 1]
    assert ids(store.query(AlertQuery(severity="high")).alerts) == [8, 5, 2]
    assert ids(store.query(AlertQuery(min_severity="medium")).alerts) == [8, 7, 5, 4, 2, 1]
    assert ids(store.query(AlertQuery(entity="e-1", pattern="rollover_loan")).alerts) == [9, 5, 1]
    assert ids(store.query(AlertQuery(since=1003, until=1006)).alerts) == [5, 4, 3]
    assert store.query(AlertQuery(entity_type="lender")).alerts == []


def test_bounded_and_repeats_kept_once() -> None:
    store = AlertStore(capacity=3)
    for n in range(5):
        store.put(alert(n), ts=float(n))
    store.put(alert(4), ts=4.0)
    assert len(store) == 3
    assert ids(store.query(AlertQuery()).alerts) == [4, 3, 2]


async def test_it_is_a_sink_reading_the_event_time_from_the_alert() -> None:
    store = AlertStore()
    await store.add(alert(5))
    await store.flush()
    assert store.query(AlertQuery(since=1767575100.0)).alerts == [alert(5)]
    assert store.query(AlertQuery(since=1767575101.0)).alerts == []
