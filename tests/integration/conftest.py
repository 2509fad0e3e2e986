"""The real Kafka broker (and PostgreSQL server) for integration tests.

``make test`` starts one and passes its address in ``FRAUDMON_TEST_BOOTSTRAP``; run
alone, pytest starts its own on free ports and stops it at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.devtools.broker import LocalBroker, free_port
from streams.devtools.postgres import LocalPostgres


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("FRAUDMON_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    workdir: Path = tmp_path_factory.mktemp("kafka")
    broker = LocalBroker(workdir, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server (Debian's package, which ``make test`` installs through
    ``make apt-deps``): never skipped; missing, it fails and says how to install it."""
    server = LocalPostgres().start()
    try:
        yield server
    finally:
        server.stop()
