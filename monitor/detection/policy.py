"""Alert policy: turns typology findings and anomaly scores into scores and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.contract.records import alert_id, now_text
from monitor.detection.entities.base import HOUR

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.contract.events import Event
    from monitor.detection.entities import EntityState, Finding
    from monitor.routing.views import View

RULE_WEIGHT = 0.85
"""Share of a pattern's score that comes from its typology rule; the rest is the anomaly."""
LABELLED_RULE_WEIGHT = 0.6
LABEL_WEIGHT = 0.25
"""Once a pattern's label model is ready: rule, label model and anomaly shares."""
NEUTRAL_ANOMALY = 0.5
"""The anomaly term for families without an anomaly model (it neither helps nor hurts)."""


@dataclass(slots=True, init=False)
class Verdict:
    """Pattern scores and alerts of one scored view (never changed once built).

    ``__init__`` is written out: a compiled build runs a generated one as interpreted
    Python.
    """

    scores: dict[str, float]
    alerts: list[dict[str, Any]]

    def __init__(self, scores: dict[str, float], alerts: list[dict[str, Any]]) -> None:
        self.scores = scores
        self.alerts = alerts


def severity(score: float) -> str:
    return "high" if score >= 0.9 else "medium" if score >= 0.8 else "low"


class AlertPolicy:
    """Combines rule strength and anomaly, applies the threshold and a per-entity cool-down.

    A finding may name other entities as its targets (a device names its fake accounts);
    each target gets its own alert, cool-down and id.
    """

    def __init__(self, settings: DetectionSettings, model_version: str) -> None:
        self.threshold = settings.alert_threshold
        self.cooldown = settings.cooldown_hours * HOUR
        self.model_version = model_version

    def judge(self, view: View, event: Event, state: EntityState, findings: list[Finding],
              anomaly: float | None, patterns: tuple[str, ...] = (),
              supervised: dict[str, float] | None = None) -> Verdict:
        """Scores for every pattern of the family (0 without a finding), and alerts.

        ``supervised`` holds, per pattern, the label model's probability once it has
        learned enough analyst labels; it then takes a share of the score.
        """
        scores = dict.fromkeys(patterns, 0.0)
        if anomaly is not None:
            scores["anomaly"] = anomaly
        alerts: list[dict[str, Any]] = []
        weight = NEUTRAL_ANOMALY if anomaly is None else anomaly
        for finding in findings:
            learned = supervised.get(finding.pattern) if supervised else None
            if learned is None:
                score = RULE_WEIGHT * finding.strength + (1 - RULE_WEIGHT) * weight
            else:
                score = (LABELLED_RULE_WEIGHT * finding.strength + LABEL_WEIGHT * learned
                         + (1 - LABELLED_RULE_WEIGHT - LABEL_WEIGHT) * weight)
            scores[finding.pattern] = score
            if score < self.threshold:
                continue
            targets = finding.targets or ((view.entity_type, view.entity),)
            for entity_type, entity in targets:
                cooldown_key = (finding.pattern if not finding.targets
                                else f"{finding.pattern}:{entity}")
                last = state.alerted.get(cooldown_key)
                if last is not None and abs(event.ts - last) < self.cooldown:
                    continue
                state.mark_alerted(cooldown_key, event.ts)
                alerts.append(self._alert(finding, entity_type, entity, event, state, score,
                                          anomaly, learned))
        return Verdict(scores, alerts)

    def _alert(self, finding: Finding, entity_type: str, entity: str, event: Event,
               state: EntityState, score: float, anomaly: float | None,
               learned: float | None) -> dict[str, Any]:
        reasons = [reason.as_dict() for reason in finding.reasons]
        if anomaly is not None:
            reasons.append({"signal": "anomaly_score", "value": round(anomaly, 4),
                            "typical": "< 0.5"})
        if learned is not None:
            reasons.append({"signal": "label_model_probability", "value": round(learned, 4),
                            "typical": "< 0.5"})
        return {
            "alert_id": alert_id(finding.pattern, entity_type, entity, event.event_id),
            "pattern": finding.pattern,
            "entity": entity,
            "entity_type": entity_type,
            "ts": event.ts_text,
            "score": round(score, 6),
            "severity": severity(score),
            "reasons": reasons,
            "evidence": list(state.recent_events),
            "model_version": self.model_version,
            "created_at": now_text(),
        }
