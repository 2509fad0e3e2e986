"""What every decision adds to the metrics, kept as plain counts on the hot path.

A decision counts once, observes its latency since arrival and its event-time lag, and
observes each of its scores: five observations or so. ``prometheus_client`` takes a lock
and walks the buckets in Python for each (about a microsecond). Here they are a bisect
and two additions, compiled with the hot path (:mod:`monitor.runtime.native`);
:mod:`monitor.outputs.metrics` exports the counts at scrape time. All of it runs on the worker's
event loop thread.
"""

from __future__ import annotations

from bisect import bisect_left


class Series:
    """One histogram series as plain per-bucket counts."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: the first bound >= value
        self.sum += value


class DecisionTally:
    """The decisions made, and the series each one is observed in: ``latency`` (since
    the input message's arrival), ``lags`` (event-time lag, by input kind) and
    ``scores`` (by score name; scores of other names are not observed)."""

    def __init__(self, latency: Series, lags: dict[str, Series],
                 scores: dict[str, Series]) -> None:
        self.decisions = 0
        self.latency = latency
        self.lags = lags
        self.scores = scores

    def decided(self, kind: str, scores: dict[str, float], arrived: float | None,
                event_ts: float, now: float) -> None:
        """One decision: its latency since arrival, event-time lag and scores."""
        self.decisions += 1
        if arrived is not None:
            self.latency.observe(max(0.0, now - arrived))
        lag = self.lags.get(kind)
        if lag is not None:
            lag.observe(max(0.0, now - event_ts))
        series = self.scores
        for name, score in scores.items():
            child = series.get(name)
            if child is not None:
                child.observe(score)
