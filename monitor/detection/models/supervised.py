"""Online classifiers per pattern, trained from delayed analyst labels.

Labels arrive days after the behaviour they judge. The shard keeps what it decided (the
features and scores at decision time) in a :class:`DecisionMemory` for a configurable
horizon, and when a label arrives the classifier learns from those features, not from
whatever the entity looks like by then (the delayed-label join).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from river import linear_model, optim

from monitor.detection.features.scaling import LogScaler


@dataclass(frozen=True, slots=True)
class Remembered:
    """A decision as it was made: time, family, features and pattern scores."""

    ts: float
    family: str
    features: dict[str, float]
    scores: dict[str, float]


class DecisionMemory:
    """Recent decisions by key (an entity key, or ``event:<event_id>``), bounded in
    number and in event time."""

    def __init__(self, horizon_seconds: float, capacity: int) -> None:
        self.horizon = horizon_seconds
        self.capacity = capacity
        self.items: OrderedDict[str, Remembered] = OrderedDict()

    def put(self, key: str, item: Remembered) -> None:
        items = self.items
        if key in items:
            del items[key]
        items[key] = item
        while len(items) > self.capacity:
            items.popitem(last=False)

    def get(self, key: str, now: float) -> Remembered | None:
        item = self.items.get(key)
        if item is None or now - item.ts > self.horizon:
            return None
        return item

    def expire(self, now: float) -> None:
        items = self.items
        oldest = now - self.horizon
        while items:
            key, item = next(iter(items.items()))
            if item.ts >= oldest:
                break
            del items[key]


class LabelModels:
    """One logistic regression per pattern; a model speaks once it has seen
    ``min_labels`` labels of each class."""

    def __init__(self, caps: dict[str, float], min_labels: int = 5) -> None:
        self.scale = LogScaler(caps)
        self.min_labels = min_labels
        self.models: dict[str, linear_model.LogisticRegression] = {}
        self.counts: dict[str, list[int]] = {}

    def learn(self, pattern: str, features: dict[str, float], confirmed: bool) -> None:
        model = self.models.get(pattern)
        if model is None:
            model = self.models[pattern] = linear_model.LogisticRegression(
                optimizer=optim.SGD(0.1), l2=0.001)
            self.counts[pattern] = [0, 0]
        model.learn_one(self.scale(features), confirmed)
        self.counts[pattern][int(confirmed)] += 1

    def ready(self, pattern: str) -> bool:
        counts = self.counts.get(pattern)
        return counts is not None and min(counts) >= self.min_labels

    def predict(self, pattern: str, features: dict[str, float]) -> float | None:
        """P(confirmed) for ``pattern``, or ``None`` until the model is ready."""
        if not self.ready(pattern):
            return None
        proba = self.models[pattern].predict_proba_one(  # type: ignore[no-untyped-call]
            self.scale(features))
        return float(proba.get(True, 0.0))
