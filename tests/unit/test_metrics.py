"""The monitor's metrics: names, bounded labels, scrape-time shard figures, promtool lint."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import Settings
from monitor.outputs.metrics import LATENCY_BUCKETS, LATENCY_BUDGET_SECONDS, Metrics
from monitor.state.shard import Shard

ALLOWED_LABELS = {"topic", "outcome", "pattern", "severity", "family", "receiver", "result",
                  "reason", "consumer", "partition", "shard", "model_version", "le",
                  "operation", "status",  # bounded: store operations, 401 or 403
                  "action"}  # a case change: monitor.outputs.metrics.CASE_ACTIONS


def busy_metrics() -> tuple[Metrics, list[Shard]]:
    """Metrics with every family holding samples, over two real shards."""
    settings = Settings()
    shards = [Shard(0, settings), Shard(1, settings)]
    shards[0].quality.update("mule_account", 0.9, confirmed=True, alerted=True)
    shards[1].quality.update("mule_account", 0.2, confirmed=False, alerted=False)
    shards[1].quality.update("mule_account", 0.8, confirmed=False, alerted=True)
    shards[1].quality.update("invented_pattern", 0.5, confirmed=True, alerted=False)
    metrics = Metrics(CollectorRegistry(), receivers=["risk"], families=["account"])
    metrics.watch_shards(lambda: shards)
    metrics.model.info({"model_version": "fm1-test"})
    metrics.valid["payments"].inc()
    metrics.tally.decided("payments", {"mule_account": 0.4, "anomaly": 0.1, "unknown": 0.9},
                    arrived=100.0, event_ts=50.0, now=100.03)
    metrics.alert("mule_account", "high")
    metrics.drifted("account", 2)
    metrics.consumer_lag.labels("worker", "payments", "0").set(5)
    metrics.webhook_attempts.labels("risk", "ok").inc()
    return metrics, shards


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_decision_feeds_latency_lag_and_scores() -> None:
    metrics, _ = busy_metrics()
    assert value(metrics, "fraudmon_decisions_total") == 1
    assert value(metrics, "fraudmon_decision_latency_seconds_bucket", le="0.03") == 0
    assert value(metrics, "fraudmon_decision_latency_seconds_bucket", le="0.04") == 1
    assert value(metrics, "fraudmon_event_time_lag_seconds_sum", topic="payments") == \
        pytest.approx(50.03)
    assert value(metrics, "fraudmon_decision_score_count", pattern="mule_account") == 1
    assert value(metrics, "fraudmon_decision_score_count", pattern="unknown") is None
    assert LATENCY_BUDGET_SECONDS in LATENCY_BUCKETS


def test_latency_without_an_arrival_time_is_not_observed() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.tally.decided("labels", {}, arrived=None, event_ts=0.0, now=10.0)
    assert value(metrics, "fraudmon_decision_latency_seconds_count") == 0
    assert value(metrics, "fraudmon_decisions_total") == 1


def test_shard_figures_are_read_at_scrape_time() -> None:
    metrics, shards = busy_metrics()
    assert value(metrics, "fraudmon_shards_owned") == 2
    assert value(metrics, "fraudmon_entities", shard="0") == 0
    outcomes = {outcome: value(metrics, "fraudmon_model_label_outcomes",
                               pattern="mule_account", outcome=outcome)
                for outcome in ("true_positive", "false_positive", "true_negative")}
    assert outcomes == {"true_positive": 1, "false_positive": 1, "true_negative": 1}
    assert value(metrics, "fraudmon_model_precision", pattern="mule_account") == 0.5
    assert value(metrics, "fraudmon_model_recall", pattern="mule_account") == 1.0
    assert value(metrics, "fraudmon_model_roc_auc", pattern="mule_account") == 1.0
    # Label patterns are free text: only the known ones become label values.
    assert value(metrics, "fraudmon_model_label_outcomes", pattern="invented_pattern",
                 outcome="false_negative") is None
    shards.pop()
    assert value(metrics, "fraudmon_shards_owned") == 1
    assert value(metrics, "fraudmon_model_precision", pattern="mule_account") == 1.0


def test_webhook_series_exist_at_zero_for_each_configured_receiver() -> None:
    metrics = Metrics(CollectorRegistry(), receivers=["risk", "ops"])
    for receiver in ("risk", "ops"):
        assert value(metrics, "fraudmon_webhook_dead_letters_total", receiver=receiver,
                     reason="exhausted") == 0
        assert value(metrics, "fraudmon_webhook_receiver_enabled", receiver=receiver) == 1


def test_every_label_is_from_a_bounded_set() -> None:
    metrics, _ = busy_metrics()
    for family in metrics.registry.collect():
        assert family.name.startswith("fraudmon_")
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, (sample.name, sample.labels)


def test_promtool_finds_nothing_wrong() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: run `make apt-deps`"
    metrics, _ = busy_metrics()
    checked = subprocess.run([promtool, "check", "metrics"], check=False,
                             input=generate_latest(metrics.registry), capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_decision_histogram_counts_a_value_on_a_bound_in_that_bucket() -> None:
    # Prometheus buckets are "less than or equal": as prometheus_client's own histogram.
    metrics = Metrics(CollectorRegistry())
    metrics.tally.decided("payments", {"mule_account": 0.5}, arrived=None, event_ts=0.0, now=0.0)
    assert value(metrics, "fraudmon_decision_score_bucket", pattern="mule_account",
                 le="0.4") == 0
    assert value(metrics, "fraudmon_decision_score_bucket", pattern="mule_account",
                 le="0.5") == 1
    assert value(metrics, "fraudmon_decision_score_bucket", pattern="mule_account",
                 le="+Inf") == 1
    assert value(metrics, "fraudmon_decision_score_sum", pattern="mule_account") == 0.5
    assert value(metrics, "fraudmon_decision_latency_seconds_count") == 0  # no arrival
