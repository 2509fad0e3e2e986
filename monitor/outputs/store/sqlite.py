"""The alert store in SQLite: a file in ``processing.state_dir`` (nothing to install).

Each worker keeps its own file with every alert of the deployment (its feeder reads all
partitions of the alerts topic). WAL journal: readers never wait for the feeder, and the
feeder's transaction (alerts and offsets together) is atomic. ``synchronous=NORMAL``: a
power cut may lose the last transactions, never half of one; their alerts and offsets go
together, so they are read again from Kafka.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import cast

from monitor.outputs.store.backend import Backend, Connection
from monitor.outputs.store.query import AlertQuery, Page

FILE_NAME = "alerts.sqlite3"
_PROGRESS_STEPS = 10_000


class _Connection(sqlite3.Connection):
    """A connection whose queries stop at ``deadline`` (monotonic; 0: none)."""

    deadline = 0.0

    def past_deadline(self) -> int:
        return 1 if self.deadline and time.monotonic() > self.deadline else 0


class SqliteBackend(Backend):
    name = "sqlite"
    placeholder = "?"

    def __init__(self, path: Path, busy_timeout_seconds: float = 5.0,
                 query_timeout_seconds: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout_seconds
        self.query_timeout = query_timeout_seconds

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def connect(self, *, writer: bool) -> Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, factory=_Connection)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if not writer:
            conn.execute("PRAGMA query_only = 1")
        # A query past its deadline is interrupted (OperationalError: interrupted).
        conn.set_progress_handler(conn.past_deadline, _PROGRESS_STEPS)
        return cast(Connection, conn)

    def query(self, conn: Connection, query: AlertQuery) -> Page:
        timed = cast(_Connection, conn)
        timed.deadline = time.monotonic() + self.query_timeout
        try:
            return super().query(conn, query)
        finally:
            timed.deadline = 0.0

    def maintain(self, conn: Connection) -> None:
        cur = conn.cursor()
        try:
            cur.execute("PRAGMA optimize")
            conn.commit()
        finally:
            cur.close()

    def create_schema(self, conn: Connection) -> None:
        cur = conn.cursor()
        try:
            for statement in self.schema_statements():
                cur.execute(statement)
            conn.commit()
        finally:
            cur.close()
