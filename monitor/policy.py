"""Alert policy: turns typology findings and anomaly scores into scores and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.entities.base import HOUR
from monitor.records import alert_id, now_text

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.entities import EntityState, Finding
    from monitor.events import Event
    from monitor.routing import View

RULE_WEIGHT = 0.85
"""Share of a pattern's score that comes from its typology rule; the rest is the anomaly."""


@dataclass(frozen=True, slots=True)
class Verdict:
    scores: dict[str, float]
    alerts: list[dict[str, Any]]


def severity(score: float) -> str:
    return "high" if score >= 0.9 else "medium" if score >= 0.8 else "low"


class AlertPolicy:
    """Combines rule strength and anomaly, applies the threshold and a per-entity cool-down."""

    def __init__(self, settings: DetectionSettings, model_version: str) -> None:
        self.threshold = settings.alert_threshold
        self.cooldown = settings.cooldown_hours * HOUR
        self.model_version = model_version

    def judge(self, view: View, event: Event, state: EntityState, findings: list[Finding],
              anomaly: float) -> Verdict:
        scores = {"anomaly": anomaly}
        alerts = []
        for finding in findings:
            score = RULE_WEIGHT * finding.strength + (1 - RULE_WEIGHT) * anomaly
            scores[finding.pattern] = score
            if score < self.threshold:
                continue
            last = state.alerted.get(finding.pattern)
            if last is not None and event.ts - last < self.cooldown:
                continue
            state.alerted[finding.pattern] = event.ts
            reasons = [reason.as_dict() for reason in finding.reasons]
            reasons.append({"signal": "anomaly_score", "value": round(anomaly, 4),
                            "typical": f"< {self.threshold}"})
            alerts.append({
                "alert_id": alert_id(finding.pattern, view.entity_type, view.entity,
                                     event.event_id),
                "pattern": finding.pattern,
                "entity": view.entity,
                "entity_type": view.entity_type,
                "ts": event.ts_text,
                "score": round(score, 6),
                "severity": severity(score),
                "reasons": reasons,
                "evidence": list(state.recent_events),
                "model_version": self.model_version,
                "created_at": now_text(),
            })
        return Verdict(scores, alerts)
