"""Cases in the alert store: where each alert's case stands, its history, and the labels
its decisions must write, beside the alerts (same database, same backends).

Tables (created with the alerts' schema):

* ``fraudmon_cases``: one row per alert that has been worked (an alert without a row is
  an ``open`` case at version 0): status, assignee, version, decisions, last change.
* ``fraudmon_case_history``: one row per entry, ``(alert_id, seq)``, the entry as JSON.
* ``fraudmon_case_labels``: the label each decision must write to the ``labels`` topic,
  written in the same transaction as the decision (an outbox). ``checked_from`` is the
  end offset of the label's partition read *before* the transaction: any copy of the
  label on the topic lies at or after it. ``produced_offset`` is set once the label is
  known to be on the topic; until then a worker that claims the row (``claimed_until``)
  reads the partition from ``checked_from`` for it and writes it only if it is not there.
  So a crash between writing the label and recording it never writes it twice.

Retention deletes a case's rows with its alert (:func:`prune_orphans`, after each
retention pass of :meth:`~monitor.outputs.store.AlertStore.prune`).

A change is applied with the case's version as a condition (``UPDATE ... WHERE version
= ?``), after taking the row (an ``UPDATE`` locks it in PostgreSQL; SQLite has one
writer): two workers deciding one case at once cannot both succeed; the loser re-reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from monitor.outputs.store.query import Position

if TYPE_CHECKING:
    from monitor.outputs.store.backend import Backend, Connection

COUNT_CAP: Final = 10_000
"""Counts per status stop here (a count of 10,000 means at least that many)."""

SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS fraudmon_cases (alert_id TEXT PRIMARY KEY, "
    "status TEXT NOT NULL, assignee TEXT, version INTEGER NOT NULL, "
    "decisions INTEGER NOT NULL, updated_us BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fraudmon_cases_status ON fraudmon_cases (status, alert_id)",
    "CREATE INDEX IF NOT EXISTS fraudmon_cases_assignee ON fraudmon_cases (assignee)",
    "CREATE TABLE IF NOT EXISTS fraudmon_case_history (alert_id TEXT NOT NULL, "
    "seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (alert_id, seq))",
    "CREATE TABLE IF NOT EXISTS fraudmon_case_labels (event_id TEXT PRIMARY KEY, "
    "alert_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "
    "label_key TEXT NOT NULL, body TEXT NOT NULL, checked_from BIGINT NOT NULL, "
    "produced_offset BIGINT, claimed_until_us BIGINT NOT NULL, created_us BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fraudmon_case_labels_pending "
    "ON fraudmon_case_labels (produced_offset, claimed_until_us)",
)


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """Filters and page of one ``GET /cases``; ``None`` means no filter."""

    status: str | None = None
    pattern: str | None = None
    severity: int | None = None
    assignee: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    limit: int = 50
    cursor: Position | None = None


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case as stored, with its alert (``status`` ``open`` and version 0 if never worked)."""

    alert_id: str
    alert: dict[str, Any]
    status: str
    assignee: str | None
    version: int
    decisions: int
    updated_us: int | None


@dataclass(frozen=True, slots=True)
class CasePage:
    rows: list[CaseRow]
    next_cursor: str | None
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class PendingLabel:
    """A decision's label in the outbox, not yet known to be on the topic."""

    event_id: str
    topic: str
    partition: int
    key: str
    body: bytes
    checked_from: int


_SELECT = ("SELECT a.ts_us, a.alert_id, a.body, c.status, c.assignee, c.version, "
           "c.decisions, c.updated_us FROM fraudmon_alerts a LEFT JOIN fraudmon_cases c "
           "ON c.alert_id = a.alert_id")


def _row(values: Sequence[Any]) -> CaseRow:
    _, alert_id, body, status, assignee, version, decisions, updated = values
    return CaseRow(str(alert_id), orjson.loads(body), status or "open", assignee,
                   int(version or 0), int(decisions or 0),
                   int(updated) if updated is not None else None)


def _filters(query: CaseQuery, with_status: bool) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.pattern is not None:
        clauses.append("a.pattern = ?")
        params.append(query.pattern)
    if query.severity is not None:
        clauses.append("a.severity = ?")
        params.append(query.severity)
    if query.since_us is not None:
        clauses.append("a.ts_us >= ?")
        params.append(query.since_us)
    if query.until_us is not None:
        clauses.append("a.ts_us < ?")
        params.append(query.until_us)
    if query.assignee is not None:
        clauses.append("c.assignee = ?")
        params.append(query.assignee)
    if with_status and query.status is not None:
        if query.status == "open":
            clauses.append("(c.status IS NULL OR c.status = 'open')")
        else:
            clauses.append("c.status = ?")
            params.append(query.status)
    return clauses, params


def _where(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def query_cases(backend: Backend, conn: Connection, query: CaseQuery) -> CasePage:
    """One page of cases, newest alert first, and the counts per status under the other
    filters (each at most :data:`COUNT_CAP`)."""
    clauses, params = _filters(query, with_status=True)
    if query.cursor is not None:
        clauses.append("a.ts_us <= ? AND (a.ts_us < ? OR a.alert_id < ?)")
        params.extend((query.cursor.ts_us, query.cursor.ts_us, query.cursor.alert_id))
    rows = backend._fetch(conn, f"{_SELECT}{_where(clauses)} ORDER BY a.ts_us DESC, "
                          "a.alert_id DESC LIMIT ?", (*params, query.limit + 1))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    last = Position(int(rows[-1][0]), str(rows[-1][1])).encode() if more else None
    return CasePage([_row(r) for r in rows], last, count_cases(backend, conn, query))


def count_cases(backend: Backend, conn: Connection, query: CaseQuery) -> dict[str, int]:
    """Cases per status under ``query``'s filters but its status."""
    clauses, params = _filters(query, with_status=False)
    counts = {"open": 0, "investigating": 0, "confirmed": 0, "dismissed": 0}
    worked = [*clauses, "c.status <> 'open'"]
    # Only fixed clauses are joined into the SQL; every value is a bound parameter.
    sql = ("SELECT c.status, COUNT(*) FROM fraudmon_cases c JOIN fraudmon_alerts a "  # noqa: S608
           f"ON a.alert_id = c.alert_id{_where(worked)} GROUP BY c.status")
    for status, count in backend._fetch(conn, sql, params):
        if status in counts:
            counts[status] = min(int(count), COUNT_CAP)
    if query.assignee is None:  # an open case has no assignee
        opened = [*clauses, "(c.status IS NULL OR c.status = 'open')"]
        sql = ("SELECT COUNT(*) FROM (SELECT 1 FROM fraudmon_alerts a LEFT JOIN "  # noqa: S608
               f"fraudmon_cases c ON c.alert_id = a.alert_id{_where(opened)} LIMIT ?) AS n")
        counts["open"] = int(backend._fetch(conn, sql, (*params, COUNT_CAP))[0][0])
    return counts


def read_case(backend: Backend, conn: Connection, alert_id: str,
              ) -> tuple[CaseRow, list[dict[str, Any]]] | None:
    """A case and its history (oldest first), or ``None`` for an unknown alert."""
    rows = backend._fetch(conn, f"{_SELECT} WHERE a.alert_id = ?", (alert_id,))
    if not rows:
        return None
    history = backend._fetch(conn, "SELECT body FROM fraudmon_case_history WHERE "
                             "alert_id = ? ORDER BY seq", (alert_id,))
    return _row(rows[0]), [orjson.loads(body) for (body,) in history]


def apply_change(backend: Backend, conn: Connection, alert_id: str, before_version: int,
                 after: tuple[str, str | None, int, int], entry: dict[str, Any],
                 label: PendingLabel | None, now_us: int, claim_us: int) -> bool:
    """Record one change in one transaction: the case's new ``after`` (status, assignee,
    version, decisions), its history entry and its label. False (nothing written) when
    the case is no longer at ``before_version``: someone else changed it first."""
    cur = conn.cursor()
    sql = backend._sql
    try:
        cur.execute(sql("INSERT INTO fraudmon_cases (alert_id, status, assignee, version, "
                        "decisions, updated_us) VALUES (?, 'open', NULL, 0, 0, ?) "
                        "ON CONFLICT (alert_id) DO NOTHING"), (alert_id, now_us))
        status, assignee, version, decisions = after
        cur.execute(sql("UPDATE fraudmon_cases SET status = ?, assignee = ?, version = ?, "
                        "decisions = ?, updated_us = ? WHERE alert_id = ? AND version = ?"),
                    (status, assignee, version, decisions, now_us, alert_id, before_version))
        if cur.rowcount != 1:
            conn.rollback()
            return False
        _append(backend, cur, alert_id, entry, label, now_us, claim_us)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    else:
        return True
    finally:
        cur.close()


def _append(backend: Backend, cur: Any, alert_id: str, entry: dict[str, Any],
            label: PendingLabel | None, now_us: int, claim_us: int) -> None:
    """The history entry and the label of a change, inside its transaction."""
    sql = backend._sql
    cur.execute(sql("SELECT COALESCE(MAX(seq), 0) FROM fraudmon_case_history "
                    "WHERE alert_id = ?"), (alert_id,))
    seq = int(cur.fetchone()[0]) + 1
    cur.execute(sql("INSERT INTO fraudmon_case_history (alert_id, seq, body) "
                    "VALUES (?, ?, ?)"), (alert_id, seq, orjson.dumps(entry).decode()))
    if label is not None:
        cur.execute(sql(
            "INSERT INTO fraudmon_case_labels (event_id, alert_id, topic, partition, "
            "label_key, body, checked_from, produced_offset, claimed_until_us, "
            "created_us) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)"),
            (label.event_id, alert_id, label.topic, label.partition, label.key,
             label.body.decode(), label.checked_from, claim_us, now_us))


def claim_pending(backend: Backend, conn: Connection, now_us: int, claim_us: int,
                  limit: int = 50) -> list[PendingLabel]:
    """Labels not yet known to be on the topic whose claim has run out, claimed now (until
    ``claim_us``) for this caller."""
    rows = backend._fetch(conn, "SELECT event_id FROM fraudmon_case_labels WHERE "
                          "produced_offset IS NULL AND claimed_until_us < ? ORDER BY "
                          "created_us LIMIT ?", (now_us, limit))
    claimed = []
    cur = conn.cursor()
    sql = backend._sql
    try:
        for (event_id,) in rows:
            cur.execute(sql("UPDATE fraudmon_case_labels SET claimed_until_us = ? WHERE "
                            "event_id = ? AND produced_offset IS NULL AND "
                            "claimed_until_us < ?"), (claim_us, event_id, now_us))
            if cur.rowcount == 1:
                claimed.append(str(event_id))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()
    if not claimed:
        return []
    marks = ", ".join("?" for _ in claimed)
    select = ("SELECT event_id, topic, partition, label_key, body, checked_from "  # noqa: S608
              f"FROM fraudmon_case_labels WHERE event_id IN ({marks})")
    found = backend._fetch(conn, select, claimed)
    return [PendingLabel(str(e), str(t), int(p), str(k), str(b).encode(), int(c))
            for e, t, p, k, b, c in found]


def mark_produced(backend: Backend, conn: Connection, event_id: str, offset: int) -> None:
    """Record that the label is on the topic at ``offset``."""
    cur = conn.cursor()
    try:
        cur.execute(backend._sql("UPDATE fraudmon_case_labels SET produced_offset = ? "
                                 "WHERE event_id = ? AND produced_offset IS NULL"),
                    (offset, event_id))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()


ORPHANS: Final = (
    "DELETE FROM fraudmon_case_history WHERE NOT EXISTS (SELECT 1 FROM fraudmon_alerts a "
    "WHERE a.alert_id = fraudmon_case_history.alert_id)",
    "DELETE FROM fraudmon_cases WHERE NOT EXISTS (SELECT 1 FROM fraudmon_alerts a "
    "WHERE a.alert_id = fraudmon_cases.alert_id)",
    "DELETE FROM fraudmon_case_labels WHERE produced_offset IS NOT NULL AND NOT EXISTS "
    "(SELECT 1 FROM fraudmon_alerts a WHERE a.alert_id = fraudmon_case_labels.alert_id)",
)
"""Retention's sweep: the cases, history and settled labels of alerts no longer stored. A
label not yet known to be on the topic stays until a settle pass records it."""


def prune_orphans(backend: Backend, conn: Connection) -> int:
    """Delete what :data:`ORPHANS` names, in one transaction; the case rows deleted."""
    cur = conn.cursor()
    try:
        deleted = []
        for statement in ORPHANS:
            cur.execute(statement)
            deleted.append(max(int(cur.rowcount), 0))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()
    return deleted[1]


def pending_count(backend: Backend, conn: Connection) -> int:
    return int(backend._fetch(conn, "SELECT COUNT(*) FROM fraudmon_case_labels WHERE "
                              "produced_offset IS NULL", ())[0][0])
