"""Only the project's routes on a running worker: faust's own views are gone, ``/metrics``
can want a token, and ``POST /labels`` refuses what the worker would dead-letter."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.integration.harness import Worker, make_config
from tests.integration.peers import http_json

pytestmark = pytest.mark.integration

API_TOKEN = "it-api-token-0123456789"
METRICS_TOKEN = "it-metrics-token-9876543210"


def status_of(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_only_our_routes_are_served_and_metrics_want_their_token(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(
        tmp_path, bootstrap, sections={"api": {"metrics_token_env": "IT_METRICS_TOKEN"}})
    base = f"http://127.0.0.1:{settings.web.port}"
    worker = Worker(config, settings, tmp_path / "worker.log",
                    env={"FRAUDMON_API_TOKEN": API_TOKEN,
                         "IT_METRICS_TOKEN": METRICS_TOKEN}).start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        for path in ("/", "/router/", "/router/topics/", "/table/", "/graph/", "/stats/",
                     "/performance/"):
            assert status_of(base + path)[0] == 404, path
        assert status_of(base + "/healthz")[0] == 200
        assert status_of(base + "/metrics")[0] == 401
        assert status_of(base + "/metrics", {"Authorization": f"Bearer {API_TOKEN}"})[0] == 401
        status, body = status_of(base + "/metrics",
                                 {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200 and b"fraudmon_shard_restore_failures_total" in body
        assert b"fraudmon_shards_near_entity_limit" in body

        def post(label: dict[str, object]) -> tuple[int, object]:
            return http_json(base + "/labels", orjson.dumps(label),
                             {"Authorization": f"Bearer {API_TOKEN}",
                              "Content-Type": "application/json"})

        label = {"event_id": "lbl-1", "ts": "2026-01-05T09:00:00+08:00", "entity": "acct-1",
                 "entity_type": "account", "pattern": "mule_account", "confirmed": True}
        assert post({**label, "ts": "9999-12-31T23:59:59Z"})[0] == 400
        status, answer = post({**label, "entity": "acct\u200b-1"})
        assert status == 400 and "format" in str(answer)
        assert post({**label, "ts": "1970-01-01T00:00:00Z"}) == (
            400, {"error": "field 'ts' is before 2000-01-01T00:00:00+00:00"})
        assert post(label)[0] == 202
        assert worker.stop() == 0
    finally:
        worker.stop()
