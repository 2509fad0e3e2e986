"""Metrics in, alerts out, with the real peers: Prometheus scrapes a running worker with
the repository's scrape config and rules, every dashboard query and recording rule
returns data, and an alerting rule fires and reaches a webhook receiver through
Alertmanager."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from monitor.outputs.webhooks.signing import generate_secret
from monitor.tools.samplefile import write_sample
from streams.devtools.produce import produce_file
from tests.integration.harness import Worker, make_config, wait_for
from tests.integration.peers import (
    DEPLOY,
    Alertmanager,
    Prometheus,
    WebhookReceiver,
    binary,
    http_json,
)

pytestmark = pytest.mark.integration

TOKEN = "it-api-token"
METRIC = re.compile(r"\b(fraudmon[a-z0-9_:]*|up)\b(?!\s*\()")


def dashboard_queries() -> list[str]:
    """Every query of every panel of the provisioned dashboard, rate interval filled in."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "fraudmon.json").read_text())
    return [target["expr"].replace("$__rate_interval", "1m")
            for panel in dashboard["panels"] for target in panel.get("targets", [])]


def rules(kind: str) -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules" / f"{kind}.yml").read_text())
    return [rule for group in groups["groups"] for rule in group["rules"]]


def recording_rules() -> list[str]:
    return [rule["record"] for rule in rules("recording")]


def scraped_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def promtool_check(url: str) -> tuple[str, subprocess.CompletedProcess[bytes]]:
    """The worker's exposition, and what ``promtool check metrics`` says about it."""
    with urllib.request.urlopen(url, timeout=5) as response:
        exposition = response.read().decode()
    checked = subprocess.run([binary("promtool"), "check", "metrics"],
                             input=exposition.encode(), capture_output=True, check=False)
    return exposition, checked


def has_data(samples: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in samples)


STALE_REJECTED = 'fraudmon_webhook_dead_letters_total{receiver="stale-key",reason="rejected"}'

LABELS = [
    {"event_id": "it-lbl-1", "ts": "2026-02-20T08:00:00+08:00", "entity": "acct-smurf-01",
     "entity_type": "account", "pattern": "mule_account", "confirmed": False},
    {"event_id": "it-lbl-2", "ts": "2026-02-20T08:00:00+08:00", "entity": "mule-7731",
     "entity_type": "account", "pattern": "mule_account", "confirmed": True},
]


async def test_prometheus_scrapes_the_worker_and_alertmanager_delivers_a_rule(
        tmp_path: Path, bootstrap: str) -> None:
    secret, wrong = generate_secret(), generate_secret()
    receiver = WebhookReceiver(tmp_path, secret, token="am-token").ready()
    config, settings = make_config(tmp_path, bootstrap, sections={"webhooks": {
        "allow_loopback_targets": True, "backoff_initial_seconds": 0.2,
        "backoff_max_seconds": 1.0,
        "receivers": [
            {"name": "ops", "url": receiver.url + "/", "secret_env": "IT_SECRET_OPS"},
            # Signs with a secret the receiver does not know: every alert is refused
            # (401), dead-lettered at once, and FraudmonWebhookDeadLetters must fire.
            {"name": "stale-key", "url": receiver.url + "/", "secret_env": "IT_SECRET_STALE",
             "patterns": ["rollover_loan"]}]}})
    worker = Worker(config, settings, tmp_path / "worker.log",
                    env={"IT_SECRET_OPS": secret, "IT_SECRET_STALE": wrong,
                         "FRAUDMON_API_TOKEN": TOKEN})
    alertmanager = Alertmanager(tmp_path, receiver.url + "/alertmanager", "am-token")
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{settings.web.port}",
                            f"127.0.0.1:{alertmanager.port}")
    try:
        worker.start()
        alertmanager.ready()
        await asyncio.to_thread(worker.wait_ready)
        prometheus.ready()
        # The dead-letter counters must be seen at 0 before they move, or increase() has
        # nothing to compare with.
        wait_for(lambda: has_data(prometheus.query(
            'fraudmon_webhook_dead_letters_total{receiver="stale-key"}')), 30,
            "a first scrape of the worker")

        sample = tmp_path / "sample.jsonl"
        write_sample(sample, invalid=True)
        await produce_file(settings, sample)
        valid = sum(1 for line in sample.read_bytes().splitlines() if b'"value"' in line)

        def sample_scored() -> bool:
            samples = worker.metrics()
            mule_alerts = sum(value for name, value in samples.items()
                              if name.startswith("fraudmon_alerts_total{")
                              and 'pattern="mule_account"' in name)
            return samples.get("fraudmon_decisions_total", 0) >= valid and mule_alerts >= 1

        # Labels judge behaviour already scored (as in production, where they come days
        # later); posted earlier they could reach the shard before the mule's alert.
        await asyncio.to_thread(wait_for, sample_scored, 90, "the sample to be scored")
        # Labels through the API: one negative, one positive, so precision, recall and
        # ROC AUC all have something to say.
        for label in LABELS:
            status, _ = http_json(f"http://127.0.0.1:{settings.web.port}/labels",
                                  orjson.dumps(label),
                                  {"Authorization": f"Bearer {TOKEN}",
                                   "Content-Type": "application/json"})
            assert status == 202

        queries = dashboard_queries()
        records = recording_rules()
        pending = set(queries) | set(records)

        def all_answer() -> bool:
            for expr in sorted(pending):
                if has_data(prometheus.query(expr)):
                    pending.discard(expr)
            return not pending

        try:
            await asyncio.to_thread(wait_for, all_answer, 90, "every query to return data")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still empty: {sorted(pending)}") from None

        # Everything has been scored by now: the exposition is complete.
        exposition, checked = await asyncio.to_thread(
            promtool_check, f"http://127.0.0.1:{settings.web.port}/metrics")
        assert checked.returncode == 0, checked.stdout + checked.stderr

        names = scraped_names(exposition) | {"up"} | set(records)
        rule_exprs = [rule["expr"] for rule in rules("recording") + rules("alerts")]
        for query in queries + rule_exprs:
            used = set(METRIC.findall(re.sub(r'"[^"]*"', '""', query)))
            assert used, query
            assert used <= names, f"a query uses unexported {used - names}: {query}"

        def delivered_by_alertmanager() -> bool:
            return any(
                alert["labels"].get("alertname") == "FraudmonWebhookDeadLetters"
                and alert["status"] == "firing"
                for record in receiver.records("alertmanager")
                for alert in record["payload"]["alerts"])

        try:
            await asyncio.to_thread(wait_for, delivered_by_alertmanager, 90,
                                    "Alertmanager to deliver FraudmonWebhookDeadLetters")
        except AssertionError as exc:
            # Say which hop lost it: the worker's counter, Prometheus's rule or Alertmanager.
            seen = prometheus.query('fraudmon_webhook_dead_letters_total{receiver="stale-key"}')
            status, am_alerts = http_json(f"{alertmanager.url}/api/v2/alerts")
            raise AssertionError(
                f"{exc}; worker: {worker.metrics().get(STALE_REJECTED)}; prometheus: "
                f"{[(s['metric'].get('reason'), s['value'][1]) for s in seen]}; rules: "
                f"{[(a['labels']['alertname'], a['state']) for a in prometheus.alerts()]}; "
                f"alertmanager ({status}): "
                f"{[(a['labels']['alertname'], a['status']['state']) for a in am_alerts]}; "
                f"notified: {len(receiver.records('alertmanager'))}") from None
        notification = next(r["payload"] for r in receiver.records("alertmanager"))
        assert notification["version"] == "4" and notification["groupKey"]
        fired = [a for r in receiver.records("alertmanager") for a in r["payload"]["alerts"]
                 if a["labels"].get("alertname") == "FraudmonWebhookDeadLetters"]
        assert {a["labels"]["receiver"] for a in fired} == {"stale-key"}
        assert {a["labels"]["reason"] for a in fired} == {"rejected"}
        assert receiver.counts()["accepted"] >= 1  # the "ops" receiver's alerts arrived
    finally:
        prometheus.stop()
        alertmanager.stop()
        worker.stop()
        receiver.stop()
