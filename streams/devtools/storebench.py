"""``fraudmon bench --only alertstore``: page times of ``GET /alerts`` queries on a full
alert store.

Fills a fresh store with ``--alerts`` synthetic alerts (1,000,000 by default: five
patterns, severities 60/30/10 %, 50,000 entities with a few busy ones, event times over a
year, a 400-byte record each) through the store's own write path (the feeder's batches
with their offsets), then runs each typical query ``REPEATS`` times through the store's
async face (a thread hop included, as ``GET /alerts`` does) and reports p50 and p99 in
milliseconds. Statistics are refreshed after the fill, as the store's retention pass
does. SQLite always; PostgreSQL on ``--store-url``, or on a server of its own when
Debian's ``postgresql`` is installed (:mod:`streams.devtools.postgres`, run with
``fsync=off``: fill figures there are not a production server's).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from monitor.contract.vocabulary import PATTERNS, SEVERITIES
from monitor.outputs.store import AlertStore
from monitor.outputs.store.backend import Backend
from monitor.outputs.store.postgres import PostgresBackend
from monitor.outputs.store.query import AlertQuery, Position
from monitor.outputs.store.record import StoredAlert
from monitor.outputs.store.sqlite import SqliteBackend

REPEATS = 200
BATCH = 5000
ENTITIES = 50_000
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
YEAR_US = 365 * 86_400 * 1_000_000
ENTITY_TYPE = {"rollover_loan": "borrower", "predatory_lender": "lender",
               "mule_account": "account", "structuring": "account", "fake_account": "account"}


def _alerts(count: int, seed: int = 3) -> list[StoredAlert]:
    draw = random.Random(seed)  # noqa: S311 - synthetic data
    made = []
    for n in range(count):
        pattern = draw.choice(PATTERNS)
        severity = draw.choices((0, 1, 2), (60, 30, 10))[0]
        # A tenth of the alerts fall on 50 busy entities, the rest spread over 50,000.
        entity = (f"e-{draw.randrange(50):05d}" if draw.random() < 0.1
                  else f"e-{draw.randrange(ENTITIES):05d}")
        ts_us = int(START * 1_000_000) + draw.randrange(YEAR_US)
        alert_id = f"al_{n:024x}"
        body = {"alert_id": alert_id, "pattern": pattern, "entity": entity,
                "entity_type": ENTITY_TYPE[pattern],
                "ts": datetime.fromtimestamp(ts_us / 1e6, UTC).isoformat(),
                "score": round(draw.random(), 6), "severity": SEVERITIES[severity],
                "reasons": [{"signal": "repayment_gap_hours", "value": 13.0,
                             "typical": "under 72 hours"}] * 2,
                "evidence": [f"pay-{n:08d}", f"loan-{n:08d}"], "model_version": "bench",
                "created_at": "2026-12-01T00:00:00.000Z"}
        made.append(StoredAlert(alert_id, ts_us, pattern, entity, ENTITY_TYPE[pattern],
                                severity, orjson.dumps(body).decode()))
    return made


def _queries() -> dict[str, AlertQuery]:
    week = START + 200 * 86_400
    return {
        "newest": AlertQuery(),
        "pattern": AlertQuery(pattern="rollover_loan"),
        "min_severity_high": AlertQuery(min_severity="high"),
        "pattern_min_severity": AlertQuery(pattern="mule_account", min_severity="medium"),
        "entity": AlertQuery(entity="e-00007"),
        "entity_quiet": AlertQuery(entity="e-31415"),
        "entity_type": AlertQuery(entity_type="lender"),
        "one_week": AlertQuery(since=week, until=week + 7 * 86_400),
        "week_high_lender": AlertQuery(entity_type="lender", min_severity="high",
                                       since=week, until=week + 7 * 86_400),
        "page_500": AlertQuery(limit=500, pattern="structuring"),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _measure(backend: Backend, alerts: list[StoredAlert]) -> dict[str, float]:
    store = AlertStore(backend)
    await store.open()
    figures: dict[str, float] = {"alerts": float(len(alerts))}
    try:
        started = time.perf_counter()
        for offset in range(0, len(alerts), BATCH):
            await store.write(alerts[offset:offset + BATCH], {0: offset + BATCH}, "bench",
                              "alerts")
        figures["fill_seconds"] = time.perf_counter() - started
        figures["fill_alerts_per_second"] = len(alerts) / figures["fill_seconds"]
        # What retention does after each pass (autovacuum would too, in its own time).
        began = time.perf_counter()
        await store.maintain()
        figures["maintain_seconds"] = time.perf_counter() - began
        for name, query in _queries().items():
            times = []
            for _ in range(REPEATS):
                began = time.perf_counter()
                page = await store.query(query)
                times.append(time.perf_counter() - began)
            figures[f"{name}_p50_ms"] = _pct(times, 0.5)
            figures[f"{name}_p99_ms"] = _pct(times, 0.99)
            figures[f"{name}_rows"] = float(len(page.alerts))
        # Twenty pages deep by cursor: each page's time.
        times, cursor = [], None
        for _ in range(20):
            query = AlertQuery(pattern="predatory_lender", min_severity="medium",
                               cursor=Position.decode(cursor) if cursor else None)
            began = time.perf_counter()
            page = await store.query(query)
            times.append(time.perf_counter() - began)
            cursor = page.next_cursor
        figures["cursor_pages_p50_ms"] = _pct(times, 0.5)
        figures["cursor_pages_max_ms"] = max(times) * 1000
        began = time.perf_counter()
        await store.prune(None, len(alerts) - 10_000)
        figures["prune_10000_seconds"] = time.perf_counter() - began
    finally:
        await store.close()
    return figures


def store_figures(workdir: Path, count: int, store_url: str | None) -> dict[str, Any]:
    """The alertstore section's figures: ``alertstore_sqlite`` and, where a server can be
    had, ``alertstore_postgresql``."""
    workdir.mkdir(parents=True, exist_ok=True)
    alerts = _alerts(count)
    results: dict[str, Any] = {
        "alertstore_sqlite": asyncio.run(_measure(SqliteBackend(workdir / "bench.sqlite3"),
                                                  alerts))}
    if store_url is not None:
        results["alertstore_postgresql"] = asyncio.run(_measure(PostgresBackend(store_url),
                                                                alerts))
        return results
    try:
        from streams.devtools.postgres import LocalPostgres

        server = LocalPostgres().start()
    except RuntimeError as exc:
        print(f"bench: alertstore on PostgreSQL skipped: {exc}")
        return results
    try:
        url = server.create_database("bench")
        results["alertstore_postgresql"] = asyncio.run(_measure(
            PostgresBackend(url, SecretStr(server.password)), alerts))
    finally:
        server.stop()
    return results
