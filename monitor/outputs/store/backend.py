"""The alert store's one small interface and the SQL both backends share.

A backend opens DB-API connections (:meth:`Backend.connect`); every other method takes a
connection and blocks, so callers run them in threads
(:class:`monitor.outputs.store.runner.StoreRunner`), never on the event loop. SQLite and
PostgreSQL speak the same SQL here but for the placeholder.

Tables (their names start with ``fraudmon_``, so the store can share a database):

* ``fraudmon_alerts``: one row per ``alert_id`` (a repeat is ignored), the columns the
  filters use and the alert as JSON. Indexes, each ending in (``ts_us``, ``alert_id``),
  the order of a page, so a filtered page is one ordered index range, read from the
  cursor on for ``limit`` rows: time alone; ``pattern``; ``pattern, severity``;
  ``severity``; ``entity``; ``entity_type``. A severity range (``min_severity``) is one
  such range per severity, merged.
* ``fraudmon_alert_offsets``: the next alerts-topic offset per consumer and partition,
  written in the same transaction as the alerts it covers (exactly once into the store).

The SQL is put together from this module's constants and ``?`` placeholders only (the
``noqa: S608`` lines): every value a request or a record brings is a bound parameter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson

from monitor.outputs.store import cases
from monitor.outputs.store.query import AlertQuery, Page, Position
from monitor.outputs.store.record import StoredAlert

SCHEMA_VERSION = 1
PRUNE_CHUNK = 5000
COLUMNS = "alert_id, ts_us, pattern, entity, entity_type, severity, body"
INSERT_ALERTS = (f"INSERT INTO fraudmon_alerts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
                 "ON CONFLICT (alert_id) DO NOTHING")
INDEXES = (("time", "ts_us, alert_id"),
           ("pattern", "pattern, ts_us, alert_id"),
           ("pattern_severity", "pattern, severity, ts_us, alert_id"),
           ("severity", "severity, ts_us, alert_id"),
           ("entity", "entity, ts_us, alert_id"),
           ("entity_type", "entity_type, ts_us, alert_id"))


class Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...
    def close(self) -> None: ...


class Connection(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class Backend(ABC):
    """SQL for one database; subclasses open connections and create the schema."""

    name: str
    placeholder: str

    @property
    @abstractmethod
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's exceptions (translated to ``StoreUnavailable`` by the runner)."""

    @abstractmethod
    def connect(self, *, writer: bool) -> Connection:
        """A new connection (``writer``: the feeding thread's; else read-only use)."""

    @abstractmethod
    def create_schema(self, conn: Connection) -> None:
        """Create the tables and indexes if missing (safe to run concurrently)."""

    def describe(self) -> str:
        """Where the store is, for logs (never a password)."""
        return self.name

    @abstractmethod
    def maintain(self, conn: Connection) -> None:
        """Refresh the planner's statistics (after retention, after a bulk fill): with
        stale ones PostgreSQL sorted a filter's whole range instead of reading its index
        backwards (22 ms instead of 0.2 ms on 100,000 alerts)."""

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text

    def schema_statements(self, body_type: str = "TEXT") -> list[str]:
        statements = [
            "CREATE TABLE IF NOT EXISTS fraudmon_alerts (alert_id TEXT PRIMARY KEY, "
            "ts_us BIGINT NOT NULL, pattern TEXT NOT NULL, entity TEXT NOT NULL, "
            f"entity_type TEXT NOT NULL, severity SMALLINT NOT NULL, body {body_type} NOT NULL)",
            "CREATE TABLE IF NOT EXISTS fraudmon_alert_offsets (consumer TEXT NOT NULL, "
            "topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
            "PRIMARY KEY (consumer, topic, partition))",
            "CREATE TABLE IF NOT EXISTS fraudmon_store_meta (key TEXT PRIMARY KEY, "
            "value TEXT NOT NULL)",
        ]
        statements += [f"CREATE INDEX IF NOT EXISTS fraudmon_alerts_{name} "
                       f"ON fraudmon_alerts ({columns})" for name, columns in INDEXES]
        statements += cases.SCHEMA
        statements.append("INSERT INTO fraudmon_store_meta (key, value) VALUES "  # noqa: S608
                          f"('schema_version', '{SCHEMA_VERSION}') ON CONFLICT (key) DO NOTHING")
        return statements

    # feeding --------------------------------------------------------------------

    def write(self, conn: Connection, alerts: Sequence[StoredAlert],
              offsets: dict[int, int], consumer: str, topic: str) -> int:
        """Store ``alerts`` (repeats of stored ids ignored) and, in the same transaction,
        the next offset of each partition read; the number of alerts new to the store."""
        cur = conn.cursor()
        try:
            added = 0
            if alerts:
                cur.executemany(self._sql(INSERT_ALERTS),
                    [(a.alert_id, a.ts_us, a.pattern, a.entity, a.entity_type, a.severity,
                      a.body) for a in alerts])
                added = max(cur.rowcount, 0)
            if offsets:
                cur.executemany(self._sql(
                    "INSERT INTO fraudmon_alert_offsets (consumer, topic, partition, "
                    "next_offset) VALUES (?, ?, ?, ?) ON CONFLICT (consumer, topic, partition) "
                    "DO UPDATE SET next_offset = CASE WHEN excluded.next_offset > "
                    "fraudmon_alert_offsets.next_offset THEN excluded.next_offset "
                    "ELSE fraudmon_alert_offsets.next_offset END"),
                    [(consumer, topic, partition, offset)
                     for partition, offset in sorted(offsets.items())])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
        return added

    def offsets(self, conn: Connection, consumer: str, topic: str) -> dict[int, int]:
        """The next offset to read per partition, as last written with alerts."""
        rows = self._fetch(conn, "SELECT partition, next_offset FROM fraudmon_alert_offsets "
                           "WHERE consumer = ? AND topic = ?", (consumer, topic))
        return {int(partition): int(offset) for partition, offset in rows}

    # reading --------------------------------------------------------------------

    def query(self, conn: Connection, query: AlertQuery) -> Page:
        """One page of ``query``: each wanted severity's ordered range, merged."""
        severities = query.severities()
        if severities == ():
            return Page([], None)
        where, params = self._filters(query)
        order = " ORDER BY ts_us DESC, alert_id DESC LIMIT ?"
        take = query.limit + 1
        if severities is None:
            sql = f"SELECT ts_us, alert_id, body FROM fraudmon_alerts{where}{order}"  # noqa: S608
            rows = self._fetch(conn, sql, (*params, take))
        else:
            branches: list[str] = []
            values: list[Any] = []
            for rank in severities:
                clause = f"{where} AND severity = ?" if where else " WHERE severity = ?"
                branches.append(f"SELECT * FROM (SELECT ts_us, alert_id, body FROM "  # noqa: S608
                                f"fraudmon_alerts{clause}{order}) AS s{rank}")
                values.extend((*params, rank, take))
            sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) AS merged{order}"  # noqa: S608
            rows = self._fetch(conn, sql, (*values, take))
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        alerts = [orjson.loads(body) for _, _, body in rows]
        last = Position(int(rows[-1][0]), str(rows[-1][1])).encode() if more else None
        return Page(alerts, last)

    def _filters(self, query: AlertQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("pattern", "entity", "entity_type"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            clauses.append("ts_us >= ?")
            params.append(round(query.since * 1_000_000))
        if query.until is not None:
            clauses.append("ts_us < ?")
            params.append(round(query.until * 1_000_000))
        if query.cursor is not None:
            # A bound on ts_us the index seeks to, and the ties past the cursor's id.
            clauses.append("ts_us <= ? AND (ts_us < ? OR alert_id < ?)")
            params.extend((query.cursor.ts_us, query.cursor.ts_us, query.cursor.alert_id))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _fetch(self, conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
        cur = conn.cursor()
        try:
            cur.execute(self._sql(sql), params)
            rows: list[Any] = cur.fetchall()
        finally:
            cur.close()
            conn.rollback()  # end the read transaction (a snapshot in PostgreSQL)
        return rows

    # retention ------------------------------------------------------------------

    def count(self, conn: Connection) -> int:
        return int(self._fetch(conn, "SELECT COUNT(*) FROM fraudmon_alerts", ())[0][0])

    def keep_boundary(self, conn: Connection, keep: int) -> Position | None:
        """The newest alert past the newest ``keep`` (it and older ones go), if any."""
        rows = self._fetch(conn, "SELECT ts_us, alert_id FROM fraudmon_alerts ORDER BY "
                           "ts_us DESC, alert_id DESC LIMIT 1 OFFSET ?", (keep,))
        return Position(int(rows[0][0]), str(rows[0][1])) if rows else None

    def delete_step(self, conn: Connection, older_than_us: int | None,
                    boundary: Position | None) -> int:
        """Delete up to ``PRUNE_CHUNK`` alerts with an event time before
        ``older_than_us`` or at or before ``boundary``, oldest first, in a transaction of
        their own; how many went (fewer than the chunk: nothing is left to delete)."""
        clauses: list[str] = []
        params: list[Any] = []
        if older_than_us is not None:
            clauses.append("ts_us < ?")
            params.append(older_than_us)
        if boundary is not None:
            clauses.append("(ts_us <= ? AND (ts_us < ? OR alert_id <= ?))")
            params.extend((boundary.ts_us, boundary.ts_us, boundary.alert_id))
        if not clauses:
            return 0
        sql = self._sql("DELETE FROM fraudmon_alerts WHERE alert_id IN (SELECT alert_id FROM "  # noqa: S608
                        f"fraudmon_alerts WHERE {' OR '.join(clauses)} "
                        "ORDER BY ts_us, alert_id LIMIT ?)")
        cur = conn.cursor()
        try:
            cur.execute(sql, (*params, PRUNE_CHUNK))
            gone = int(max(cur.rowcount, 0))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
        return gone
