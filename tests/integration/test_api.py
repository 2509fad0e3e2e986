"""The risk team's HTTP API on a running worker: bearer auth, the OpenAPI document,
recent alerts with filters and pages, entity state, and labels that reach the model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from tests.integration.harness import Worker, make_config, sample_alerts, wait_for
from tests.integration.peers import ROOT, http_json

pytestmark = pytest.mark.integration

TOKEN = "it-token-0123456789"


async def test_api_serves_alerts_entities_and_labels_behind_a_token(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap)
    base = f"http://127.0.0.1:{settings.web.port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def get(path: str, headers: dict[str, str] | None = None, **params: Any) -> tuple[int, Any]:
        query = f"?{urlencode(params)}" if params else ""
        return http_json(base + path + query, headers=auth if headers is None else headers)

    def post_label(label: dict[str, Any], headers: dict[str, str] | None = None,
                   ) -> tuple[int, Any]:
        return http_json(base + "/labels", orjson.dumps(label),
                         {**(auth if headers is None else headers),
                          "Content-Type": "application/json"})

    worker = Worker(config, settings, tmp_path / "worker.log",
                    env={"FRAUDMON_API_TOKEN": TOKEN}).start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        # Health and metrics are open; everything else wants the token, and says nothing.
        assert get("/healthz", headers={})[0] == 200
        for path in ("/alerts", "/entities/x", "/openapi.json"):
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": f"Basic {TOKEN}"}):
                assert get(path, headers=headers) == (401, {"error": "unauthorized"})
        assert post_label({}, headers={}) == (401, {"error": "unauthorized"})

        status, served = get("/openapi.json")
        assert status == 200
        assert served == json.loads((ROOT / "docs" / "openapi.json").read_text())

        emitted = await sample_alerts(settings, tmp_path / "events.jsonl")
        # The alert store has them once its feeder has read the alerts topic.
        await asyncio.to_thread(
            wait_for, lambda: len(get("/alerts", limit=500)[1]["alerts"]) == len(emitted), 30,
            "every alert in the store")

        # Paging newest first (event time) through every alert, two at a time.
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            status, page = get("/alerts", **params)
            assert status == 200 and len(page["alerts"]) <= 2
            seen.extend(page["alerts"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(emitted)
        assert {a["alert_id"]: a for a in seen} == emitted
        order = [(a["ts"], a["alert_id"]) for a in seen]
        assert order == sorted(order, reverse=True)

        status, page = get("/alerts", pattern="rollover_loan", entity="borrower-0042")
        assert status == 200 and page["alerts"]
        assert all(a["pattern"] == "rollover_loan" and a["entity"] == "borrower-0042"
                   for a in page["alerts"])
        first_ts = min(a["ts"] for a in emitted.values())
        assert get("/alerts", until=first_ts)[1]["alerts"] == []
        assert len(get("/alerts", since=first_ts, limit=500)[1]["alerts"]) == len(emitted)
        assert get("/alerts", severity="extreme")[0] == 400
        assert get("/alerts", limit=0)[0] == 400
        assert get("/alerts", since="yesterday")[0] == 400

        status, borrower = get("/entities/borrower-0042")
        assert status == 200 and borrower["entity_type"] == "borrower"
        assert borrower["scores"]["rollover_loan"] > 0.7 and borrower["features"]
        assert get("/entities/borrower-0042", entity_type="lender")[0] == 404
        assert get("/entities/borrower-0042", entity_type="planet")[0] == 400
        status, missing = get("/entities/nobody-at-all")
        assert status == 404 and missing["owned"] is True

        # A label through the API reaches the model: the quality figures move.
        outcomes = 'fraudmon_model_label_outcomes{outcome="%s",pattern="rollover_loan"}'
        before = worker.metrics()
        assert post_label({"event_id": "api-1", "ts": "2026-02-01T00:00:00+08:00",
                           "confirmed": True}) == (
            400, {"error": "a label needs 'entity' or 'target_event_id'"})
        status, accepted = post_label({
            "event_id": "api-2", "ts": "2026-02-20T09:00:00+08:00", "entity": "borrower-0042",
            "entity_type": "borrower", "pattern": "rollover_loan", "confirmed": False})
        assert status == 202
        assert accepted == {"event_id": "api-2", "topic": settings.kafka.topic("labels"),
                            "key": "borrower-0042"}
        await asyncio.to_thread(
            wait_for, lambda: worker.metrics().get(outcomes % "false_positive", 0)
            > before.get(outcomes % "false_positive", 0), 30, "the label in the metrics")
        after = worker.metrics()
        precision = 'fraudmon_model_precision{pattern="rollover_loan"}'
        assert after[precision] < before.get(precision, 1.0)
        assert get("/entities/borrower-0042")[1]["labels"] == {"rollover_loan": False}
        assert worker.stop() == 0
    finally:
        worker.stop()
