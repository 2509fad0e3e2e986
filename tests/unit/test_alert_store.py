"""The alert store on SQLite: pages against a reference, idempotent writes with their
offsets, retention, cursors and the check of hostile alerts-topic records. The same
checks run on a real PostgreSQL in tests/integration/test_alert_store_postgres.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.outputs.store import AlertStore
from monitor.outputs.store.query import BadCursor, Position
from monitor.outputs.store.record import StoredAlert, stored_alert
from monitor.outputs.store.sqlite import SqliteBackend
from tests import store_contract as contract


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    opened = AlertStore(SqliteBackend(tmp_path / "alerts.sqlite3"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_pages_match_the_reference(store: AlertStore) -> None:
    await contract.check_pages_match_the_reference(store)


async def test_writes_are_idempotent_and_offsets_move_with_them(store: AlertStore) -> None:
    await contract.check_writes_are_idempotent_and_offsets_move_with_them(store)


async def test_retention_by_age_and_count(store: AlertStore) -> None:
    await contract.check_retention_by_age_and_count(store)


async def test_the_store_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    first = AlertStore(SqliteBackend(path))
    await first.open()
    await first.write([contract.stored(contract.alert(1))], {0: 1}, "c", "t")
    await first.close()
    second = AlertStore(SqliteBackend(path))
    await second.open()
    try:
        assert await second.count() == 1
        assert await second.offsets("c", "t") == {0: 1}
    finally:
        await second.close()


def test_a_page_is_one_index_range(tmp_path: Path) -> None:
    """Each filter's query plan reads the table through an index, never in full."""
    import sqlite3

    from monitor.outputs.store.query import AlertQuery

    backend = SqliteBackend(tmp_path / "plan.sqlite3")
    conn = backend.connect(writer=True)
    backend.create_schema(conn)
    plans = []

    class Explain:
        def __init__(self, inner: sqlite3.Connection) -> None:
            self.inner = inner

        def cursor(self) -> object:
            outer = self

            class Cur:
                rowcount = 0

                def execute(self, sql: str, params: object = ()) -> None:
                    plans.append(outer.inner.execute("EXPLAIN QUERY PLAN " + sql,
                                                     params).fetchall())

                def fetchall(self) -> list[object]:
                    return []

                def close(self) -> None:
                    pass
            return Cur()

        def rollback(self) -> None:
            pass

    for query in [*contract.QUERIES,
                  AlertQuery(pattern="structuring", cursor=Position(1, "al_1"))]:
        plans.clear()
        backend.query(Explain(conn), query)  # type: ignore[arg-type]
        if query.severities() == ():
            assert not plans  # nothing can match: no query at all
            continue
        reads = [str(step[3]) for step in plans[0] if "fraudmon_alerts" in str(step[3])]
        # Every read of the table walks an index in page order (a temporary B-tree
        # only ever sorts the merged branches, a page each).
        assert reads and all("INDEX fraudmon_alerts_" in read for read in reads), (query, reads)


@pytest.mark.parametrize(("value", "reason"), [
    (None, "not_json"), (b"{", "not_json"), (b"[1, 2]", "not_an_alert"),
    (b'{"alert_id": "al_1"}', "not_an_alert"), (b"x" * 70_000, "too_large"),
    (orjson.dumps({**contract.alert(1), "severity": "extreme"}), "not_an_alert"),
    (orjson.dumps({**contract.alert(1), "ts": "2026-01-05T00:00:00"}), "not_an_alert"),
    (orjson.dumps({**contract.alert(1), "alert_id": "al 1; DROP TABLE"}), "not_an_alert"),
    (orjson.dumps({**contract.alert(1), "entity": "e" * 129}), "not_an_alert"),
    (orjson.dumps({**contract.alert(1), "pattern": 7}), "not_an_alert"),
])
def test_hostile_records_are_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    assert stored_alert(value, 65536) == reason


@given(st.binary(max_size=300))
def test_no_bytes_crash_the_check(value: bytes) -> None:
    result = stored_alert(value, 256)
    assert isinstance(result, StoredAlert | str)


@given(st.text(max_size=300))
def test_no_cursor_text_crashes_decoding(text: str) -> None:
    try:
        position = Position.decode(text)
    except BadCursor:
        return
    assert Position.decode(position.encode()) == position
