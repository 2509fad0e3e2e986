"""The alert store on a real PostgreSQL server: the backend contract the SQLite unit
tests hold (pages against a reference, idempotent writes with their offsets, retention;
cases: filters and counts, versions, the label outbox, retention), two workers sharing
one database (and its cases), and a wrong password as one line and a fast exit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from monitor.errors import StoreUnavailable
from monitor.outputs.store import AlertStore
from monitor.outputs.store.postgres import PostgresBackend
from streams.devtools.postgres import LocalPostgres
from tests import case_contract as cases
from tests import store_contract as contract
from tests.integration.harness import make_config, wait_for
from tests.integration.two_workers import (
    all_alerts,
    deployment,
    get,
    labels_with,
    post,
    spread_alerts,
    started,
    store_holds,
    topic_ends,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(postgres: LocalPostgres) -> str:
    return postgres.create_database(f"contract_{uuid.uuid4().hex[:8]}")


async def opened_store(url: str, postgres: LocalPostgres) -> AlertStore:
    from pydantic import SecretStr

    opened = AlertStore(PostgresBackend(url, SecretStr(postgres.password)))
    await opened.open()
    return opened


@pytest.fixture
async def store(database: str, postgres: LocalPostgres) -> AsyncIterator[AlertStore]:
    opened = await opened_store(database, postgres)
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


async def test_cases_filter_page_and_count(store: AlertStore) -> None:
    await cases.check_queries_filter_page_and_count(store)


async def test_case_counts_stop_at_the_cap(store: AlertStore) -> None:
    await cases.check_counts_stop_at_the_cap(store)


async def test_a_case_change_needs_its_version(store: AlertStore, database: str,
                                               postgres: LocalPostgres) -> None:
    other = await opened_store(database, postgres)
    try:
        await cases.check_a_change_needs_the_version_it_was_planned_on(store, other)
    finally:
        await other.close()


async def test_case_labels_are_claimed_once_and_settled(store: AlertStore) -> None:
    await cases.check_labels_are_claimed_once_and_settled(store)


async def test_retention_takes_the_cases_with_their_alerts(store: AlertStore) -> None:
    await cases.check_retention_takes_the_cases_with_their_alerts(store)


async def test_a_failing_database_is_a_store_error(postgres: LocalPostgres) -> None:
    from pydantic import SecretStr

    broken = AlertStore(PostgresBackend(postgres.url("postgres"), SecretStr("wrong")))
    with pytest.raises(StoreUnavailable, match="password authentication failed"):
        await broken.open()
    await broken.close()


def test_a_wrong_store_password_is_one_line_and_a_fast_exit(
        tmp_path: Path, bootstrap: str, postgres: LocalPostgres) -> None:
    config, _ = make_config(tmp_path, bootstrap, sections={
        "store": {"url": postgres.url("postgres"), "password_env": "IT_PG_PASSWORD"}})
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker", "--config", str(config)],
        env={**os.environ, "IT_PG_PASSWORD": "not-the-password"},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and time.monotonic() - started < 30
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert lines[-1].startswith("fraudmon: error: postgresql fraudmon@127.0.0.1"), lines[-1]
    assert "password authentication failed" in lines[-1]
    assert "not-the-password" not in done.stderr


async def test_two_workers_share_one_postgresql_store(
        tmp_path: Path, bootstrap: str, postgres: LocalPostgres) -> None:
    """Alerts from both workers in one GET /alerts from either, after both restart, once
    each when the alerts topic is read again from the start; a case worked from both."""
    url = postgres.create_database(f"deploy_{uuid.uuid4().hex[:8]}")
    a, b = deployment(tmp_path, bootstrap,
                      sections={"store": {"url": url, "password_env": "IT_PG_PASSWORD"}},
                      env={"IT_PG_PASSWORD": postgres.password})
    group = f"{a.settings.kafka.app_id}{a.settings.store.group_suffix}"
    try:
        await asyncio.to_thread(started, a, b)
        emitted = await spread_alerts(a.settings, tmp_path / "events.jsonl",
                                      a.settings.kafka.partitions)
        ids = set(emitted)
        for worker in (a, b):
            await store_holds(worker, ids)
        assert {x["alert_id"]: x for x in all_alerts(b)} == emitted
        raised = [sum(v for k, v in w.metrics().items() if k.startswith("fraudmon_alerts_total"))
                  for w in (a, b)]
        assert all(raised), raised
        # One shared group: each worker's feeder wrote a share, together each alert once.
        written = [w.metrics()["fraudmon_alert_store_written_total"] for w in (a, b)]
        assert sum(written) == len(ids), written

        # One database, one set of cases: taken on A, decided on B, the decision sent
        # again to A (a retry) changes nothing, and its label is on the topic once.
        case = min(ids)
        assert post(a, f"/cases/{case}", {"status": "investigating", "version": 0})[0] == 200
        status, decided = post(b, f"/cases/{case}", {"status": "confirmed", "version": 1})
        assert status == 200 and decided["changed"] and decided["label_written"], decided
        status, again = post(a, f"/cases/{case}", {"status": "confirmed", "version": 1})
        assert status == 200 and again["changed"] is False and again["decisions"] == 1
        status, seen = get(a, f"/cases/{case}")
        assert seen["status"] == "confirmed" and len(seen["history"]) == 2
        assert len(await labels_with(a.settings, f"case-{case}-1")) == 1

        assert a.stop() == 0 and b.stop() == 0
        # Read the alerts topic again from the start, as after a lost offsets table.
        with psycopg.connect(url, password=postgres.password) as conn:
            conn.execute("UPDATE fraudmon_alert_offsets SET next_offset = 0 "
                         "WHERE consumer = %s", (group,))
        await asyncio.to_thread(started, a, b)
        ends = sum((await topic_ends(a)).values())

        def read_again() -> bool:
            with psycopg.connect(url, password=postgres.password) as conn:
                row = conn.execute("SELECT COALESCE(SUM(next_offset), 0) FROM "
                                   "fraudmon_alert_offsets WHERE consumer = %s",
                                   (group,)).fetchone()
            return row is not None and int(row[0]) == ends
        await asyncio.to_thread(wait_for, read_again, 60, "the alerts topic read again")
        for worker in (a, b):
            await store_holds(worker, ids)
            assert worker.metrics()["fraudmon_alert_store_written_total"] == 0
        assert a.stop() == 0 and b.stop() == 0
    finally:
        a.stop()
        b.stop()
