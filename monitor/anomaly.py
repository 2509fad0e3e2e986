"""Online anomaly scoring per entity family with River's HalfSpaceTrees."""

from __future__ import annotations

import math

from river import anomaly, compose, preprocessing

from monitor.config import AnomalySettings


class AnomalyModel:
    """Scores a feature dict, then learns it (progressive validation order).

    Features are non-negative counts, sums and ratios: ``log1p`` tames heavy tails,
    then a running min-max scaler maps them into the unit box HalfSpaceTrees expects.
    Keep trees small: HalfSpaceTrees rebuilds its mass profile every ``window_size``
    events and the cost grows with ``n_trees * 2**height``.
    """

    def __init__(self, settings: AnomalySettings) -> None:
        self.model: compose.Pipeline = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
            n_trees=settings.n_trees, height=settings.height,
            window_size=settings.window_size, seed=settings.seed,
        )
        self.learned = 0

    @staticmethod
    def _prepare(features: dict[str, float]) -> dict[str, float]:
        return {name: math.log1p(value) for name, value in features.items()}

    def score_one(self, features: dict[str, float]) -> float:
        """Anomaly score in [0, 1]; higher is stranger."""
        return float(self.model.score_one(self._prepare(features)))

    def learn_one(self, features: dict[str, float]) -> None:
        self.model.learn_one(self._prepare(features))
        self.learned += 1
