"""Progressive validation: how well the scores predicted the labels that came later.

Each shard keeps a mergeable tracker per pattern (score histograms by label for ROC AUC,
a confusion count at the alert decision for precision and recall), so figures for a
whole deployment are the merge of its shards' trackers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

BINS = 50


@dataclass(slots=True)
class PatternQuality:
    """Label outcomes of one pattern."""

    positives: list[int] = field(default_factory=lambda: [0] * BINS)
    negatives: list[int] = field(default_factory=lambda: [0] * BINS)
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    true_neg: int = 0

    def update(self, score: float, confirmed: bool, alerted: bool) -> None:
        index = min(BINS - 1, max(0, int(score * BINS)))
        (self.positives if confirmed else self.negatives)[index] += 1
        if confirmed:
            if alerted:
                self.true_pos += 1
            else:
                self.false_neg += 1
        elif alerted:
            self.false_pos += 1
        else:
            self.true_neg += 1

    def merge(self, other: PatternQuality) -> None:
        for mine, theirs in ((self.positives, other.positives),
                             (self.negatives, other.negatives)):
            for i, count in enumerate(theirs):
                mine[i] += count
        self.true_pos += other.true_pos
        self.false_pos += other.false_pos
        self.false_neg += other.false_neg
        self.true_neg += other.true_neg

    @property
    def labels(self) -> int:
        return self.true_pos + self.false_pos + self.false_neg + self.true_neg

    def roc_auc(self) -> float | None:
        """Probability a positive outranks a negative (ties count half); None without both."""
        n_pos, n_neg = sum(self.positives), sum(self.negatives)
        if not n_pos or not n_neg:
            return None
        below = 0
        wins = 0.0
        for pos, neg in zip(self.positives, self.negatives, strict=True):
            wins += pos * (below + neg / 2)
            below += neg
        return wins / (n_pos * n_neg)

    def precision(self) -> float | None:
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else None

    def recall(self) -> float | None:
        actual = self.true_pos + self.false_neg
        return self.true_pos / actual if actual else None

    def summary(self) -> dict[str, float | None]:
        return {"labels": float(self.labels), "roc_auc": self.roc_auc(),
                "precision": self.precision(), "recall": self.recall()}


class QualityTracker:
    """Per-pattern label outcomes of one shard."""

    def __init__(self) -> None:
        self.patterns: dict[str, PatternQuality] = {}

    def update(self, pattern: str, score: float, confirmed: bool, alerted: bool) -> None:
        quality = self.patterns.get(pattern)
        if quality is None:
            quality = self.patterns[pattern] = PatternQuality()
        quality.update(score, confirmed, alerted)


def merge(trackers: Iterable[QualityTracker]) -> dict[str, PatternQuality]:
    """Shards' trackers merged per pattern."""
    merged: dict[str, PatternQuality] = {}
    for tracker in trackers:
        for pattern, quality in tracker.patterns.items():
            merged.setdefault(pattern, PatternQuality()).merge(quality)
    return merged
