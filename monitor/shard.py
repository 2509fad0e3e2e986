"""A shard: the state, models and policy of the entities that hash to one partition.

A shard folds routed views in the order of its log. Processing is deterministic for a
given order (event time only, seeded models), so a shard restored from a checkpoint
and fed the rest of its log reproduces exactly the decisions and alerts it would have
made. Records at or below ``applied_offset`` are already in the state and are skipped;
a redelivered view (same event id and role) is dropped by the dedup window.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from river import drift

from monitor.anomaly import AnomalyModel
from monitor.entities import FAMILIES, EntityState
from monitor.entities.base import DAY
from monitor.errors import CheckpointError
from monitor.events import Label
from monitor.policy import AlertPolicy, Verdict
from monitor.quality import QualityTracker
from monitor.records import decision
from monitor.routing import entities

if TYPE_CHECKING:
    from monitor.config import Settings
    from monitor.events import Event
    from monitor.routing import View

SNAPSHOT_FORMAT = 1
_SNAPSHOT_KEYS = frozenset({"model_version", "entities", "models", "seen", "applied_offset",
                            "watermark", "processed", "evicted", "quality", "drift",
                            "drift_detections", "last_drift_ts"})
logger = logging.getLogger(__name__)


def model_version(settings: Settings) -> str:
    """Names the scoring logic and its configuration: same version, same behaviour."""
    config = settings.detection.model_dump_json().encode()
    return f"fm1-{hashlib.sha256(config).hexdigest()[:10]}"


@dataclass(slots=True)
class Outcome:
    """What one view produced: the event's decision (primary view only) and alerts."""

    decision: dict[str, Any] | None
    alerts: list[dict[str, Any]] = field(default_factory=list)


class Shard:
    """State, models and policy for one partition of the routed log."""

    def __init__(self, shard_id: int, settings: Settings) -> None:
        self.shard_id = shard_id
        self.settings = settings.detection
        self.dedup_window = settings.processing.dedup_window
        self.idle_seconds = settings.processing.entity_idle_days * DAY
        self.eviction_every = settings.processing.eviction_every_events
        self.model_version = model_version(settings)
        self.policy = AlertPolicy(self.settings, self.model_version)
        self.entities: dict[str, EntityState] = {}
        self.models = {family: AnomalyModel(self.settings.anomaly) for family in FAMILIES}
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.applied_offset = -1
        self.watermark = 0.0
        self.processed = 0
        self.evicted = 0
        self.quality = QualityTracker()
        self.drift: dict[str, drift.ADWIN] = {}
        self.drift_detections: dict[str, int] = {}
        self.last_drift_ts: float | None = None

    def process(self, view: View, event: Event, offset: int | None = None) -> Outcome | None:
        """Fold one view into the shard; ``None`` when it was already applied."""
        if offset is not None:
            if offset <= self.applied_offset:
                return None
            self.applied_offset = offset
        if self.dedup_window:
            token = f"{event.event_id}\x1f{view.role}"
            if token in self.seen:
                return None
            self.seen[token] = None
            if len(self.seen) > self.dedup_window:
                self.seen.popitem(last=False)
        self.processed += 1
        self.watermark = max(self.watermark, event.ts)
        if self.processed % self.eviction_every == 0:
            self.evict_idle()
        verdict = self._score(view, event)
        record = None
        if view.primary:
            record = decision(event, entities(event), verdict.scores,
                              [alert["alert_id"] for alert in verdict.alerts],
                              self.model_version)
        return Outcome(record, verdict.alerts)

    def _score(self, view: View, event: Event) -> Verdict:
        family = FAMILIES.get(view.entity_type)
        if family is None:
            return Verdict({}, [])
        state = self.entities.get(view.key)
        if state is None:
            state = self.entities[view.key] = family()
        if isinstance(event, Label):
            self._learn_label(state, event)
            return Verdict({}, [])
        state.observe(view, event, self.settings)
        features = state.features(event.ts, self.settings)
        model = self.models[family.family]
        anomaly = model.score_one(features)
        model.learn_one(features)
        self._watch_drift(family.family, anomaly, event.ts)
        verdict = self.policy.judge(view, event, state, state.findings(features, self.settings),
                                    anomaly)
        state.scores = verdict.scores
        return verdict

    def _learn_label(self, state: EntityState, label: Label) -> None:
        """An analyst's verdict on an entity: score what we said about it, remember it."""
        state.last_ts = max(state.last_ts, label.ts)
        pattern = label.pattern or "event"
        state.labels[pattern] = label.confirmed
        self.quality.update(pattern, state.scores.get(pattern, 0.0), label.confirmed,
                            pattern in state.alerted)

    def _watch_drift(self, family: str, anomaly: float, ts: float) -> None:
        detector = self.drift.get(family)
        if detector is None:
            detector = self.drift[family] = drift.ADWIN()  # type: ignore[no-untyped-call]
        detector.update(anomaly)  # type: ignore[no-untyped-call]
        if detector.drift_detected:
            self.drift_detections[family] = self.drift_detections.get(family, 0) + 1
            self.last_drift_ts = ts

    def describe(self, entity_type: str, entity: str) -> dict[str, Any] | None:
        """An entity's current features, last scores, alerts and labels (for the HTTP API)."""
        state = self.entities.get(f"{entity_type}:{entity}")
        if state is None:
            return None
        return {
            "entity": entity, "entity_type": entity_type, "shard": self.shard_id,
            "first_seen_ts": state.first_ts, "last_seen_ts": state.last_ts,
            "features": state.features(state.last_ts, self.settings),
            "scores": dict(state.scores),
            "findings": [{"pattern": f.pattern, "strength": f.strength,
                          "reasons": [r.as_dict() for r in f.reasons]}
                         for f in state.findings(state.features(state.last_ts, self.settings),
                                                 self.settings)],
            "alerted_at": dict(state.alerted), "labels": dict(state.labels),
            "recent_events": list(state.recent_events), "model_version": self.model_version,
        }

    def evict_idle(self) -> int:
        """Drop entities idle (in event time) for longer than the configured horizon."""
        oldest = self.watermark - self.idle_seconds
        idle = [key for key, state in self.entities.items() if state.last_ts < oldest]
        for key in idle:
            del self.entities[key]
        self.evicted += len(idle)
        return len(idle)

    @property
    def learned(self) -> int:
        """Events the shard's models have learned from, over its lifetime."""
        return sum(model.learned for model in self.models.values())

    def snapshot(self) -> bytes:
        """The whole shard as bytes, for a checkpoint."""
        state = {
            "format": SNAPSHOT_FORMAT, "shard_id": self.shard_id,
            "model_version": self.model_version, "entities": self.entities,
            "models": self.models, "seen": self.seen, "applied_offset": self.applied_offset,
            "watermark": self.watermark, "processed": self.processed, "evicted": self.evicted,
            "quality": self.quality, "drift": self.drift,
            "drift_detections": self.drift_detections, "last_drift_ts": self.last_drift_ts,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, data: bytes) -> None:
        """Load a snapshot taken by :meth:`snapshot` (checkpoints are local, trusted files)."""
        try:
            state = pickle.loads(data)  # noqa: S301 - our own checkpoint files
        except Exception as exc:  # any unpickling failure means a bad file
            raise CheckpointError(f"shard {self.shard_id}: unreadable checkpoint: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_FORMAT:
            raise CheckpointError(f"shard {self.shard_id}: not a checkpoint of this format")
        if state.get("shard_id") != self.shard_id:
            raise CheckpointError(f"shard {self.shard_id}: checkpoint of another shard")
        missing = _SNAPSHOT_KEYS - state.keys()
        if missing:
            raise CheckpointError(f"shard {self.shard_id}: checkpoint lacks {sorted(missing)}")
        if state["model_version"] != self.model_version:
            logger.warning("shard %d: checkpoint of model %s restored under %s", self.shard_id,
                           state["model_version"], self.model_version)
        self.entities = state["entities"]
        self.models = state["models"]
        self.seen = state["seen"]
        self.applied_offset = state["applied_offset"]
        self.watermark = state["watermark"]
        self.processed = state["processed"]
        self.evicted = state["evicted"]
        self.quality = state["quality"]
        self.drift = state["drift"]
        self.drift_detections = state["drift_detections"]
        self.last_drift_ts = state["last_drift_ts"]
