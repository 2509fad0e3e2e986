"""The alert store on a real PostgreSQL server: the backend contract the SQLite unit
tests hold (pages against a reference, idempotent writes with their offsets, retention),
and a wrong password as one line and a fast exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.errors import StoreUnavailable
from monitor.outputs.store import AlertStore
from monitor.outputs.store.postgres import PostgresBackend
from streams.devtools.postgres import LocalPostgres
from tests import store_contract as contract
from tests.integration.harness import make_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(postgres: LocalPostgres) -> AsyncIterator[AlertStore]:
    url = postgres.create_database(f"contract_{uuid.uuid4().hex[:8]}")
    from pydantic import SecretStr

    opened = AlertStore(PostgresBackend(url, SecretStr(postgres.password)))
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
