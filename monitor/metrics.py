"""Every Prometheus metric the monitor exports, on a registry of its own.

Conventions: namespace ``fraudmon``, base units, counters named without ``_total``
(the client adds it), bounded label sets only: never an account, borrower or device id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from monitor.events import INPUT_KINDS

PATTERNS = ("rollover_loan", "predatory_lender", "mule_account", "structuring", "fake_account")
SEVERITIES = ("low", "medium", "high")


class Metrics:
    """The monitor's metrics; label children are bound once, up front, for the hot path."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.events_consumed = Counter(
            "events_consumed", "Input events consumed, by input topic kind and outcome.",
            ["topic", "outcome"], namespace="fraudmon", registry=self.registry)
        self.decisions = Counter(
            "decisions", "Decisions emitted (one per valid input event).",
            namespace="fraudmon", registry=self.registry)
        self.alerts = Counter(
            "alerts", "Alerts emitted, by pattern and severity.", ["pattern", "severity"],
            namespace="fraudmon", registry=self.registry)
        self.checkpoint_seconds = Histogram(
            "checkpoint_duration_seconds", "Time to flush outputs and save dirty shards.",
            namespace="fraudmon", registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.valid = {kind: self.events_consumed.labels(kind, "valid") for kind in INPUT_KINDS}
        self.dead_lettered = {kind: self.events_consumed.labels(kind, "dead_letter")
                              for kind in INPUT_KINDS}
        self.alert_children = {(p, s): self.alerts.labels(p, s)
                               for p in PATTERNS for s in SEVERITIES}

    def alert(self, pattern: str, severity: str) -> None:
        child = self.alert_children.get((pattern, severity))
        if child is not None:
            child.inc()
