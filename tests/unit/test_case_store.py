"""Cases in the alert store on SQLite: filters, pages and counts against a reference, a
change applied only on the version it was planned on (two writers on one file), the label
outbox's claims, and retention taking cases with their alerts. The same checks run on a
real PostgreSQL in tests/integration/test_alert_store_postgres.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.outputs.store import AlertStore
from monitor.outputs.store.sqlite import SqliteBackend
from tests import case_contract as contract


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    opened = AlertStore(SqliteBackend(tmp_path / "alerts.sqlite3"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_queries_filter_page_and_count(store: AlertStore) -> None:
    await contract.check_queries_filter_page_and_count(store)


async def test_counts_stop_at_the_cap(store: AlertStore) -> None:
    await contract.check_counts_stop_at_the_cap(store)


async def test_a_change_needs_the_version_it_was_planned_on(store: AlertStore,
                                                            tmp_path: Path) -> None:
    other = AlertStore(SqliteBackend(tmp_path / "alerts.sqlite3"))
    await other.open()
    try:
        await contract.check_a_change_needs_the_version_it_was_planned_on(store, other)
    finally:
        await other.close()


async def test_labels_are_claimed_once_and_settled(store: AlertStore) -> None:
    await contract.check_labels_are_claimed_once_and_settled(store)


async def test_retention_takes_the_cases_with_their_alerts(store: AlertStore) -> None:
    await contract.check_retention_takes_the_cases_with_their_alerts(store)
