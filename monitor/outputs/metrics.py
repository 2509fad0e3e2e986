"""Every Prometheus metric the monitor exports, on a registry of its own.

Conventions: namespace ``fraudmon``, base units (seconds), counters named without
``_total`` (the client adds it), bounded label sets only: topic kinds, patterns,
severities, entity families, configured receiver names, shard and partition numbers;
never an account, borrower, lender or device id.

Figures that belong to shard state (entities held, model quality from labels) are read
at scrape time by :class:`ShardStateCollector`, so they move with the shards on a
rebalance instead of being double counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.contract.events import INPUT_KINDS
from monitor.contract.vocabulary import PATTERNS, SEVERITIES
from monitor.detection.models.quality import merge as merge_quality
from monitor.processing.tally import DecisionTally, Series

if TYPE_CHECKING:
    from monitor.state.shard import Shard

NAMESPACE = "fraudmon"
LATENCY_BUDGET_SECONDS = 0.05
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
"""Arrival-to-decision buckets, dense around the 50 ms budget."""
LAG_BUCKETS = (1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0,
               30 * 86400.0)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
SCORE_NAMES = (*PATTERNS, "anomaly")
ATTEMPT_RESULTS = ("ok", "network_error", "timeout", "rate_limited", "server_error",
                   "client_error", "redirect", "gone", "refused")
"""Outcomes of one webhook HTTP attempt."""
DELIVERY_RESULTS = ("delivered", "dead_lettered")
"""Final outcomes of one alert's delivery to one receiver."""
DEAD_LETTER_REASONS = ("exhausted", "rejected", "receiver_disabled", "refused")
STORE_SKIPS = ("too_large", "not_json", "not_an_alert")
"""Why the alert store skipped an alerts-topic record."""
CASE_ACTIONS = ("investigating", "confirmed", "dismissed", "open", "assign", "note")
"""A case change: the status it moved to, a hand-over or a note."""
CASE_LABEL_OUTCOMES = ("written", "written_late", "found")
FORWARD_OUTCOMES = ("answered", "rebalancing", "unreachable", "timeout")
"""What became of an entity lookup this worker sent on to the shard's owner."""
QUALITY_FIGURES = (("roc_auc", "ROC AUC of pattern scores against later labels."),
                   ("precision", "Share of alerted entities that labels confirmed."),
                   ("recall", "Share of confirmed entities that were alerted."))


class ShardStateCollector(Collector):
    """Scrape-time figures of the shards this worker owns right now."""

    def __init__(self, shards: Callable[[], Iterable[Shard]]) -> None:
        self.shards = shards

    def collect(self) -> Iterator[Metric]:
        shards = list(self.shards())
        entities = GaugeMetricFamily(f"{NAMESPACE}_entities",
                                     "Entities held in state, by shard.", labels=["shard"])
        for shard in shards:
            entities.add_metric([str(shard.shard_id)], len(shard.entities))
        yield entities
        evicted = CounterMetricFamily(
            f"{NAMESPACE}_entities_evicted",
            "Entities evicted from owned shards, by family and reason (idle: past the idle "
            "horizon; bound: least recently active, over processing.max_entities_per_shard).",
            labels=["family", "reason"])
        totals: dict[str, int] = {}
        for shard in shards:
            for name, count in shard.evicted_by.items():
                totals[name] = totals.get(name, 0) + count
        for name, count in sorted(totals.items()):
            family, _, reason = name.partition(":")
            evicted.add_metric([family, reason], count)
        yield evicted
        yield GaugeMetricFamily(
            f"{NAMESPACE}_shards_near_entity_limit",
            "Owned shards holding at least processing.entity_warning_ratio of their entity "
            "bound (eviction by activity is near).",
            value=sum(len(shard.entities) >= shard.entity_warning_at for shard in shards))
        if shards:
            yield GaugeMetricFamily(f"{NAMESPACE}_shard_entity_limit",
                                    "processing.max_entities_per_shard.",
                                    value=shards[0].max_entities)
        yield GaugeMetricFamily(f"{NAMESPACE}_shards_owned",
                                "State shards (routed partitions) this worker owns.",
                                value=len(shards))
        merged = merge_quality(shard.quality for shard in shards)
        outcomes = GaugeMetricFamily(
            f"{NAMESPACE}_model_label_outcomes",
            "Labels by pattern and outcome at the alert decision (owned shards); "
            "sum across workers for deployment-wide precision and recall.",
            labels=["pattern", "outcome"])
        figures = {name: GaugeMetricFamily(f"{NAMESPACE}_model_{name}",
                                           f"{text} Online, from owned shards.",
                                           labels=["pattern"])
                   for name, text in QUALITY_FIGURES}
        for pattern in PATTERNS:  # bounded label values: the contract's patterns only
            found = merged.get(pattern)
            if found is None:
                continue
            for outcome, count in (("true_positive", found.true_pos),
                                   ("false_positive", found.false_pos),
                                   ("false_negative", found.false_neg),
                                   ("true_negative", found.true_neg)):
                outcomes.add_metric([pattern, outcome], count)
            for name, value in found.summary().items():
                if name in figures and value is not None:
                    figures[name].add_metric([pattern], value)
        yield outcomes
        yield from figures.values()


class DecisionCounter(Collector):
    """The decisions a :class:`~monitor.processing.tally.DecisionTally` counted, as a counter:
    a plain integer, where a ``prometheus_client`` counter takes a lock (about a microsecond)."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry,
                 tally: DecisionTally) -> None:
        self.name, self.documentation, self.tally = name, documentation, tally
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.tally.decisions)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation)


class DecisionHistogram(Collector):
    """A histogram observed on every decision, exported at scrape time.

    Observed and scraped on the worker's event loop thread; a scrape from another thread
    may read a count one observation behind another, never a torn one.
    """

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...],
                 registry: CollectorRegistry, label: str | None = None) -> None:
        self.name, self.documentation, self.bounds, self.label = name, documentation, bounds, label
        self.series: dict[str, Series] = {}
        registry.register(self)

    def child(self, value: str = "") -> Series:
        """The series of one label value (the only one when unlabelled), made once."""
        series = self.series.get(value)
        if series is None:
            series = self.series[value] = Series(self.bounds)
        return series

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation,
                                     labels=[self.label] if self.label else None)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        edges = [floatToGoString(bound) for bound in self.bounds]  # type: ignore[no-untyped-call]
        edges.append("+Inf")
        for value, series in self.series.items():
            cumulative = list(accumulate(series.counts))
            family.add_metric([value] if self.label else [], list(zip(edges, cumulative,
                                                                       strict=True)),
                              series.sum)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield self._family()


class Metrics:
    """The monitor's metrics; label children are bound once, up front, for the hot path."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 receivers: Iterable[str] = (), families: Iterable[str] = ()) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r, ns = self.registry, NAMESPACE
        self.events_consumed = Counter(
            "events_consumed", "Input events consumed, by input topic kind and outcome.",
            ["topic", "outcome"], namespace=ns, registry=r)
        self.alerts = Counter(
            "alerts", "Alerts emitted, by pattern and severity.", ["pattern", "severity"],
            namespace=ns, registry=r)
        self.checkpoint_seconds = Histogram(
            "checkpoint_duration_seconds", "Time to flush outputs and save dirty shards.",
            namespace=ns, registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.checkpoint_pause_seconds = Histogram(
            "checkpoint_pause_seconds",
            "Longest a checkpoint held processing up (one snapshot's header or slice).",
            namespace=ns, registry=r,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25))
        self.decision_latency = DecisionHistogram(
            f"{ns}_decision_latency_seconds",
            "Time from an input message's arrival in Kafka to its decision.",
            LATENCY_BUCKETS, r).child()
        self.event_time_lag = DecisionHistogram(
            f"{ns}_event_time_lag_seconds",
            "Wall clock minus event time when the decision is made, by input topic kind.",
            LAG_BUCKETS, r, label="topic")
        self.scores = DecisionHistogram(
            f"{ns}_decision_score", "Scores in decisions, by pattern (and the anomaly score).",
            SCORE_BUCKETS, r, label="pattern")
        self.references_resolved = Counter(
            "routed_references_resolved",
            "Views logged in the routed topic by reference that were read back from the "
            "input topics to be folded (after a crash).",
            namespace=ns, registry=r)
        self.drift_detections = Counter(
            "drift_detections", "Drift in anomaly scores detected (ADWIN), by entity family.",
            ["family"], namespace=ns, registry=r)
        self.model = Info("model", "The scoring logic and configuration in use.",
                          namespace=ns, registry=r)
        self.shard_restore_failures = Counter(
            "shard_restore_failures", "Restores of an owned shard that failed (retried).",
            namespace=ns, registry=r)
        self.dead_letter_write_failures = Counter(
            "dead_letter_write_failures",
            "Dead letters that could not be written after retries (logged, then skipped).",
            namespace=ns, registry=r)
        self.consumer_lag = Gauge(
            "consumer_lag", "Messages not yet committed, by consumer, topic and partition.",
            ["consumer", "topic", "partition"], namespace=ns, registry=r)
        self._webhook_metrics(receivers)
        self._store_and_api_metrics()

        self.valid = {kind: self.events_consumed.labels(kind, "valid") for kind in INPUT_KINDS}
        self.dead_lettered = {kind: self.events_consumed.labels(kind, "dead_letter")
                              for kind in INPUT_KINDS}
        self.alert_children = {(p, s): self.alerts.labels(p, s)
                               for p in PATTERNS for s in SEVERITIES}
        self.lag_children = {kind: self.event_time_lag.child(kind) for kind in INPUT_KINDS}
        self.score_children = {name: self.scores.child(name) for name in SCORE_NAMES}
        # Every decision is observed here, compiled (monitor.processing.tally), and scraped above.
        self.tally = DecisionTally(self.decision_latency, self.lag_children,
                                   self.score_children)
        self.decisions = DecisionCounter(
            f"{ns}_decisions", "Decisions emitted (one per valid input event).", r, self.tally)
        self.drift_children = {family: self.drift_detections.labels(family)
                               for family in families}

    def _webhook_metrics(self, receivers: Iterable[str]) -> None:
        r, ns = self.registry, NAMESPACE
        self.webhook_attempts = Counter(
            "webhook_attempts", "Webhook HTTP attempts, by receiver and result.",
            ["receiver", "result"], namespace=ns, registry=r)
        self.webhook_deliveries = Counter(
            "webhook_deliveries", "Alerts settled per receiver: delivered or dead-lettered.",
            ["receiver", "result"], namespace=ns, registry=r)
        self.webhook_dead_letters = Counter(
            "webhook_dead_letters", "Alerts sent to the webhook dead-letter topic, by reason.",
            ["receiver", "reason"], namespace=ns, registry=r)
        self.webhook_retries_pending = Gauge(
            "webhook_retries_pending", "Deliveries waiting for their next attempt.",
            ["receiver"], namespace=ns, registry=r)
        self.webhook_in_flight = Gauge(
            "webhook_alerts_in_flight", "Alerts read from Kafka and not yet settled, by receiver.",
            ["receiver"], namespace=ns, registry=r)
        self.webhook_attempt_seconds = Histogram(
            "webhook_attempt_duration_seconds", "Duration of one webhook HTTP attempt.",
            ["receiver"], namespace=ns, registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
        self.webhook_receiver_enabled = Gauge(
            "webhook_receiver_enabled", "1 while a receiver is sent to, 0 after it answered 410.",
            ["receiver"], namespace=ns, registry=r)
        for name in receivers:
            for result in ATTEMPT_RESULTS:
                self.webhook_attempts.labels(name, result)
            for result in DELIVERY_RESULTS:
                self.webhook_deliveries.labels(name, result)
            for reason in DEAD_LETTER_REASONS:
                self.webhook_dead_letters.labels(name, reason)
            self.webhook_retries_pending.labels(name)
            self.webhook_in_flight.labels(name)
            self.webhook_attempt_seconds.labels(name)
            self.webhook_receiver_enabled.labels(name).set(1)

    def _store_and_api_metrics(self) -> None:
        r, ns = self.registry, NAMESPACE
        self.store_written = Counter(
            "alert_store_written", "Alerts written to the alert store (repeats not counted).",
            namespace=ns, registry=r)
        self.store_skipped = Counter(
            "alert_store_skipped", "Alerts-topic records the alert store skipped, by reason.",
            ["reason"], namespace=ns, registry=r)
        self.store_pruned = Counter(
            "alert_store_pruned", "Alerts deleted by retention (store.retention_days, "
            "store.max_alerts).", namespace=ns, registry=r)
        self.store_alerts = Gauge(
            "alert_store_alerts", "Alerts held by the alert store (at the last retention "
            "pass).", namespace=ns, registry=r)
        self.store_alerts_limit = Gauge(
            "alert_store_alerts_limit", "store.max_alerts (0: no count limit).",
            namespace=ns, registry=r)
        self.store_lag = Gauge(
            "alert_store_lag", "Alerts-topic records not yet in the alert store, by partition.",
            ["partition"], namespace=ns, registry=r)
        self.store_failures = Counter(
            "alert_store_failures", "Alert store operations that failed, by operation.",
            ["operation"], namespace=ns, registry=r)
        self.store_query_seconds = Histogram(
            "alert_store_query_duration_seconds", "Time to answer one GET /alerts page.",
            namespace=ns, registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
        self.api_denied = Counter(
            "api_denied", "API requests refused: 401 (no or unknown token), 403 (wrong role).",
            ["status"], namespace=ns, registry=r)
        self.entity_forwards = Counter(
            "entity_lookups_forwarded", "Entity lookups sent on to the shard's owner, by "
            "outcome.", ["outcome"], namespace=ns, registry=r)
        for reason in STORE_SKIPS:
            self.store_skipped.labels(reason)
        for operation in ("write", "query", "retention"):
            self.store_failures.labels(operation)
        for status in ("401", "403"):
            self.api_denied.labels(status)
        for outcome in FORWARD_OUTCOMES:
            self.entity_forwards.labels(outcome)
        self._case_metrics()

    def _case_metrics(self) -> None:
        r, ns = self.registry, NAMESPACE
        self.case_changes = Counter(
            "case_changes", "Case changes recorded, by action (a retried request that "
            "changed nothing is not counted).", ["action"], namespace=ns, registry=r)
        self.case_labels = Counter(
            "case_labels", "Decisions' labels on the labels topic, by how: written (with "
            "the decision), written_late (by a settle pass), found (a settle pass found it "
            "already written).", ["outcome"], namespace=ns, registry=r)
        self.case_labels_pending = Gauge(
            "case_labels_pending", "Decisions whose label is not yet known to be on the "
            "labels topic (at the last settle pass).", namespace=ns, registry=r)
        for action in CASE_ACTIONS:
            self.case_changes.labels(action)
        for outcome in CASE_LABEL_OUTCOMES:
            self.case_labels.labels(outcome)

    def alert(self, pattern: str, severity: str) -> None:
        child = self.alert_children.get((pattern, severity))
        if child is not None:
            child.inc()

    def drifted(self, family: str, detections: int) -> None:
        child = self.drift_children.get(family)
        if child is None:
            child = self.drift_children[family] = self.drift_detections.labels(family)
        child.inc(detections)

    def watch_shards(self, shards: Callable[[], Iterable[Shard]]) -> None:
        """Export the owned shards' state figures at every scrape."""
        self.registry.register(ShardStateCollector(shards))
