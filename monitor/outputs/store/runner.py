"""The alert store on the event loop: each blocking database call runs in a thread.

One writer thread (the feeder's writes and retention's deletes, in order: SQLite has one
writer anyway) and a few reader threads (``GET /alerts``), each with a connection of its
own, opened on first use and dropped after a database error so the next call connects
afresh. The driver's errors become :class:`~monitor.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from monitor.errors import StoreUnavailable
from monitor.outputs.store import cases
from monitor.outputs.store.backend import PRUNE_CHUNK, Backend, Connection
from monitor.outputs.store.query import AlertQuery, Page
from monitor.outputs.store.record import StoredAlert

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AlertStore:
    """The deployment's alert store: :meth:`open` before use, :meth:`close` after."""

    def __init__(self, backend: Backend, readers: int = 2) -> None:
        self.backend = backend
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="fraudmon-store-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="fraudmon-store-reader")
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()

    def _connection(self, writer: bool) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.backend.connect(writer=writer)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            with contextlib.suppress(*self.backend.errors):
                conn.close()

    async def _run(self, writer: bool, call: Callable[[Connection], T]) -> T:
        def work() -> T:
            try:
                return call(self._connection(writer))
            except self.backend.errors as exc:
                self._drop()
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise StoreUnavailable(f"{self.backend.describe()}: {first}") from exc

        pool = self._writer if writer else self._readers
        return await asyncio.get_running_loop().run_in_executor(pool, work)

    async def open(self) -> None:
        """Connect and create the schema if missing."""
        await self._run(True, self.backend.create_schema)

    async def close(self) -> None:
        def close_all() -> None:
            with self._lock:
                connections, self._connections = self._connections, []
            for conn in connections:
                with contextlib.suppress(*self.backend.errors):
                    conn.close()
        # Connections belong to their threads; the pools finish what they run first.
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)
        close_all()

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)

    async def write(self, alerts: Sequence[StoredAlert], offsets: dict[int, int],
                    consumer: str, topic: str) -> int:
        return await self._run(True, lambda conn: self.backend.write(
            conn, alerts, offsets, consumer, topic))

    async def offsets(self, consumer: str, topic: str) -> dict[int, int]:
        return await self._run(True, lambda conn: self.backend.offsets(conn, consumer, topic))

    async def query(self, query: AlertQuery) -> Page:
        return await self._run(False, lambda conn: self.backend.query(conn, query))

    async def maintain(self) -> None:
        """Refresh the planner's statistics (the writer thread)."""
        await self._run(True, self.backend.maintain)

    async def count(self) -> int:
        return await self._run(False, self.backend.count)

    async def prune(self, older_than_us: int | None, keep: int | None) -> int:
        """Retention: delete alerts older than ``older_than_us`` (event time) and all but
        the newest ``keep``, a chunk per writer call so the feeder's writes go between;
        then the cases of the alerts gone (:func:`~monitor.outputs.store.cases.prune_orphans`).
        The number of alerts deleted."""
        boundary = None
        if keep is not None:
            boundary = await self._run(False, lambda conn: self.backend.keep_boundary(
                conn, keep))
        if older_than_us is None and boundary is None:
            return 0
        deleted = 0
        while True:
            gone = await self._run(True, lambda conn: self.backend.delete_step(
                conn, older_than_us, boundary))
            deleted += gone
            if gone < PRUNE_CHUNK:
                break
        cases_gone = await self._run(True, lambda conn: cases.prune_orphans(self.backend,
                                                                            conn))
        if cases_gone:
            logger.info("alert store retention: %d cases deleted with their alerts",
                        cases_gone)
        return deleted

    # cases (monitor/outputs/store/cases.py) ------------------------------------------

    async def query_cases(self, query: cases.CaseQuery) -> cases.CasePage:
        return await self._run(False, lambda conn: cases.query_cases(self.backend, conn, query))

    async def read_case(self, alert_id: str,
                        ) -> tuple[cases.CaseRow, list[dict[str, Any]]] | None:
        return await self._run(False, lambda conn: cases.read_case(self.backend, conn,
                                                                   alert_id))

    async def apply_change(self, alert_id: str, before_version: int,
                           after: tuple[str, str | None, int, int], entry: dict[str, Any],
                           label: cases.PendingLabel | None, now_us: int,
                           claim_us: int) -> bool:
        return await self._run(True, lambda conn: cases.apply_change(
            self.backend, conn, alert_id, before_version, after, entry, label, now_us,
            claim_us))

    async def claim_pending_labels(self, now_us: int, claim_us: int,
                                   ) -> list[cases.PendingLabel]:
        return await self._run(True, lambda conn: cases.claim_pending(
            self.backend, conn, now_us, claim_us))

    async def mark_label_produced(self, event_id: str, offset: int) -> None:
        await self._run(True, lambda conn: cases.mark_produced(self.backend, conn, event_id,
                                                               offset))

    async def pending_labels(self) -> int:
        return await self._run(False, lambda conn: cases.pending_count(self.backend, conn))
