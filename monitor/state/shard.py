"""A shard: the state, models and policy of the entities that hash to one partition.

A shard folds routed views in the order of its log. Processing is deterministic for a
given order (event time only, seeded models), so a shard restored from a checkpoint
and fed the rest of its log reproduces exactly the decisions and alerts it would have
made. Records at or below ``applied_offset`` are already in the state and are skipped;
a redelivered view (same event id and role) is dropped by the dedup window.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from river import drift

from monitor.contract.events import Label
from monitor.contract.records import decision
from monitor.detection.entities import FAMILIES, EntityState
from monitor.detection.entities.base import DAY
from monitor.detection.models.anomaly import AnomalyModel
from monitor.detection.models.quality import QualityTracker
from monitor.detection.models.supervised import DecisionMemory, LabelModels, Remembered
from monitor.detection.policy import AlertPolicy, Verdict
from monitor.errors import CheckpointError
from monitor.routing.views import View, entities
from monitor.state.dedup import DedupWindow, unpacked
from monitor.state.snapshot import SnapshotJob, read_snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from monitor.config import Settings
    from monitor.contract.events import Event

logger = logging.getLogger(__name__)


def model_version(settings: Settings) -> str:
    """Names the scoring logic and its configuration: same version, same behaviour."""
    config = settings.detection.model_dump_json().encode()
    return f"fm1-{hashlib.sha256(config).hexdigest()[:10]}"


_NOTHING = Verdict({}, [])
_ZEROS: dict[tuple[str, ...], Verdict] = {}


def _zero(patterns: tuple[str, ...]) -> Verdict:
    """The verdict without findings: every pattern scores 0, no alerts (shared, read-only)."""
    verdict = _ZEROS.get(patterns)
    if verdict is None:
        verdict = _ZEROS[patterns] = Verdict(dict.fromkeys(patterns, 0.0), [])
    return verdict


@dataclass(slots=True, init=False)
class Outcome:
    """What one view produced: the event's decision (primary view only), alerts, and
    views of the same event to route onward to other shards.

    ``__init__`` is written out: a compiled build runs a generated one as interpreted
    Python, and one outcome is built per view (about 2 % of replay's time).
    """

    decision: dict[str, Any] | None
    alerts: list[dict[str, Any]]
    forwards: list[View]

    def __init__(self, decision: dict[str, Any] | None,
                 alerts: list[dict[str, Any]] | None = None,
                 forwards: list[View] | None = None) -> None:
        self.decision = decision
        self.alerts = alerts if alerts is not None else []
        self.forwards = forwards if forwards is not None else []


class Shard:
    """State, models and policy for one partition of the routed log."""

    def __init__(self, shard_id: int, settings: Settings) -> None:
        self.shard_id = shard_id
        self.settings = settings.detection
        self.dedup_window = settings.processing.dedup_window
        self.idle_seconds = settings.processing.entity_idle_days * DAY
        self.eviction_every = settings.processing.eviction_every_events
        self.max_entities = settings.processing.max_entities_per_shard
        self.entity_warning_at = int(self.max_entities
                                     * settings.processing.entity_warning_ratio)
        self.cooldown = settings.detection.cooldown_hours * 3600.0
        self.max_watermark_step = settings.processing.max_watermark_step_seconds
        self.clock: Callable[[], float] = time.time
        """What the watermark may not run more than a step ahead of: the wall clock live,
        the file's clock in replay (see :mod:`monitor.contract.clock`)."""
        self.model_version = model_version(settings)
        self.policy = AlertPolicy(self.settings, self.model_version)
        self.entities: dict[str, EntityState] = {}
        self.models = {name: AnomalyModel(self.settings.anomaly, family.feature_caps)
                       for name, family in FAMILIES.items() if family.feature_caps}
        self.seen = DedupWindow(self.dedup_window)
        self.applied_offset = -1
        self.watermark = 0.0
        self.started = 0.0
        self.processed = 0
        self.evicted = 0
        self.evicted_by: dict[str, int] = {}
        """Entities evicted per ``family:reason`` (reason ``idle`` or ``bound``)."""
        self.quality = QualityTracker()
        self.memory = DecisionMemory(self.settings.label_horizon_days * DAY,
                                     self.settings.label_memory)
        self.label_models = {name: LabelModels(family.feature_caps, self.settings.min_labels)
                             for name, family in FAMILIES.items() if family.feature_caps}
        self.drift: dict[str, drift.ADWIN] = {}
        self.drift_detections: dict[str, int] = {}
        self.last_drift_ts: float | None = None
        self.job: SnapshotJob | None = None  # a snapshot in progress (see begin_snapshot)

    def prepare(self) -> None:
        """Build now what the first events would build (the anomaly models' trees), so a
        new or restored shard takes its first views at full speed."""
        for model in self.models.values():
            model.build()

    def process(self, view: View, event: Event, offset: int | None = None) -> Outcome | None:
        """Fold one view into the shard; ``None`` when it was already applied."""
        if offset is not None:
            if offset <= self.applied_offset:
                return None
            self.applied_offset = offset
        if self.dedup_window and not self.seen.add(f"{event.event_id}\x1f{view.role}"):
            return None
        self.processed += 1
        ts = event.ts
        if ts > self.watermark:
            self._advance(ts)
        if not self.started:
            self.started = ts
        if self.processed % self.eviction_every == 0:
            self.evict_idle()
        forwards: list[View] = []
        verdict = self._score(view, event, forwards)
        alerts = verdict.alerts
        record = None
        if view.primary:
            record = decision(event, entities(event), verdict.scores,
                              [alert["alert_id"] for alert in alerts] if alerts else [],
                              self.model_version)
        # The zero verdicts are shared: every outcome gets a list of its own.
        return Outcome(record, alerts if alerts else [], forwards)

    def _score(self, view: View, event: Event, forwards: list[View]) -> Verdict:
        if isinstance(event, Label):
            self._learn_label(view, event)
            return _NOTHING
        family = FAMILIES.get(view.entity_type)
        if family is None:
            return _NOTHING
        key = f"{view.entity_type}:{view.entity}"
        state = self.entities.get(key)
        if state is None:
            if len(self.entities) >= self.max_entities:
                self.evict_to_bound()
            state = self.entities[key] = family()
        else:
            job = self.job
            if job is not None:
                job.preserve(key, state)
        settings = self.settings
        onward = state.observe(view, event, settings)
        if onward:
            forwards.extend(onward)
        candidate = state.candidate(event.ts, settings)
        model = self.models.get(family.family)
        learning = model is not None and model.turn()
        if not (candidate or learning):
            state.clear_scores()
            return _zero(family.patterns)
        features = state.features(event.ts, settings)
        if candidate:
            features["observed_days"] = (event.ts - self.started) / DAY
        findings = state.findings(features, settings) if candidate else []
        anomaly = None
        if model is not None:
            if findings and model.ready:
                anomaly = model.score_one(features)
            if learning:
                model.learn_one(features)
                self._watch_drift(family.family,
                                  max((f.strength for f in findings), default=0.0), event.ts)
        if not findings:
            state.clear_scores()
            return _zero(family.patterns)
        labels = self.label_models.get(family.family)
        supervised = None
        if labels is not None:
            supervised = {f.pattern: p for f in findings
                          if (p := labels.predict(f.pattern, features)) is not None}
        verdict = self.policy.judge(view, event, state, findings, anomaly, family.patterns,
                                    supervised)
        state.scores = verdict.scores
        remembered = Remembered(event.ts, family.family, features, verdict.scores)
        self.memory.put(key, remembered)
        if view.primary:
            self.memory.put(f"event:{event.event_id}", remembered)
        return verdict

    def _learn_label(self, view: View, label: Label) -> None:
        """An analyst's verdict: score what we decided then, and learn from it.

        The features are those at decision time when the decision is still remembered;
        for an entity without a remembered finding, its current state.
        """
        if label.target_event_id is not None:
            self._learn_transaction_label(label)
            return
        pattern = label.pattern or ""
        family = FAMILIES.get(view.entity_type)
        if family is None:
            return
        state = self.entities.get(view.key)
        if state is not None:
            job = self.job
            if job is not None:
                job.preserve(view.key, state)
            state.last_ts = max(state.last_ts, label.ts)
            state.set_label(pattern, label.confirmed)
        remembered = self.memory.get(view.key, label.ts)
        if remembered is not None:
            features, score = remembered.features, remembered.scores.get(pattern, 0.0)
        elif state is not None and state.first_ts is not None:
            features, score = state.features(state.last_ts, self.settings), 0.0
        else:
            self.quality.update(pattern, 0.0, label.confirmed, alerted=False)
            return
        alerted = state is not None and pattern in state.alerted
        self.quality.update(pattern, score, label.confirmed, alerted)
        models = self.label_models.get(family.family)
        if models is not None and pattern in family.patterns:
            models.learn(pattern, features, label.confirmed)

    def _learn_transaction_label(self, label: Label) -> None:
        """A chargeback or disposition of one transaction this shard decided on."""
        remembered = self.memory.get(f"event:{label.target_event_id}", label.ts)
        if remembered is None:
            return
        scores = {k: v for k, v in remembered.scores.items() if k != "anomaly"}
        best = max(scores.values(), default=0.0)
        self.quality.update("transaction", best, label.confirmed,
                            best >= self.settings.alert_threshold)
        models = self.label_models.get(remembered.family)
        flagged = [pattern for pattern, score in scores.items() if score > 0]
        if models is not None and len(flagged) == 1:
            models.learn(flagged[0], remembered.features, label.confirmed)

    def _watch_drift(self, family: str, strength: float, ts: float) -> None:
        """ADWIN over each family's strongest rule finding on the learning sample (0 when
        none): a shift in how strongly typologies fire is a shift in the traffic."""
        detector = self.drift.get(family)
        if detector is None:
            detector = self.drift[family] = drift.ADWIN()  # type: ignore[no-untyped-call]
        detector.update(strength)  # type: ignore[no-untyped-call]
        if detector.drift_detected:
            self.drift_detections[family] = self.drift_detections.get(family, 0) + 1
            self.last_drift_ts = ts

    def describe(self, entity_type: str, entity: str) -> dict[str, Any] | None:
        """An entity's current features, last scores, alerts and labels (for the HTTP API)."""
        key = f"{entity_type}:{entity}"
        state = self.entities.get(key)
        if state is None:
            return None
        job = self.job
        if job is not None:  # features() may prune the entity's windows
            job.preserve(key, state)
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

    def _advance(self, ts: float) -> None:
        """Move the watermark to ``ts``, but never more than a step past the clock: an
        event time far ahead would otherwise age every entity out at once."""
        ceiling = self.clock() + self.max_watermark_step
        if ts <= ceiling:
            self.watermark = ts
        elif ceiling > self.watermark:
            self.watermark = ceiling

    def evict_idle(self) -> int:
        """Drop entities idle (in event time) for longer than the configured horizon."""
        oldest = self.watermark - self.idle_seconds
        idle = [key for key, state in self.entities.items() if state.last_ts < oldest]
        self._drop(idle, "idle")
        self.memory.expire(self.watermark)
        return len(idle)

    def evict_to_bound(self) -> int:
        """Make room under ``processing.max_entities_per_shard``: the idle first, then the
        least recently active (by last event time) down to 90 % of the bound, never an
        entity alerted within its cool-down (its alert is still open)."""
        evicted = self.evict_idle()
        target = self.max_entities * 9 // 10
        excess = len(self.entities) - target
        if excess <= 0:
            return evicted
        open_since = self.watermark - self.cooldown
        candidates = ((state.last_ts, key) for key, state in self.entities.items()
                      if not any(ts >= open_since for ts in state.alerted.values()))
        oldest = [key for _, key in heapq.nsmallest(excess, candidates)]
        self._drop(oldest, "bound")
        if len(self.entities) >= self.max_entities:
            logger.warning("shard %d: %d entities, all recently alerted, over the bound of %d",
                           self.shard_id, len(self.entities), self.max_entities)
        return evicted + len(oldest)

    def _drop(self, keys: list[str], reason: str) -> None:
        job = self.job
        entities, counts = self.entities, self.evicted_by
        for key in keys:
            if job is not None:
                job.preserve(key, entities[key])
            del entities[key]
            family = key[:key.index(":")] if ":" in key else key
            name = f"{family}:{reason}"
            counts[name] = counts.get(name, 0) + 1
        self.evicted += len(keys)

    @property
    def learned(self) -> int:
        """Events the shard's models have folded in over their lifetime (each one is learned
        from or passed over by the sample, exactly once)."""
        return sum(model.seen for model in self.models.values())

    def snapshot(self) -> bytes:
        """The whole shard as bytes, for a checkpoint, in one call."""
        job = self.begin_snapshot()
        while not job.step(None):
            pass
        return job.result()

    def begin_snapshot(self) -> SnapshotJob:
        """Start a point-in-time snapshot: the models and the small parts are pickled
        now; the entities, the dedup window and the decision memory by
        :meth:`SnapshotJob.step` (see :class:`SnapshotJob`)."""
        if self.job is not None:
            raise CheckpointError(f"shard {self.shard_id}: a snapshot is already in progress")
        order = list(self.entities)
        header = {
            "shard_id": self.shard_id,
            "model_version": self.model_version, "entities": order,
            "models": self.models, "seen": None,  # in the job's own part
            "applied_offset": self.applied_offset,
            "watermark": self.watermark, "started": self.started, "processed": self.processed,
            "evicted": self.evicted, "evicted_by": self.evicted_by,
            "quality": self.quality, "drift": self.drift, "memory": None,  # likewise
            "label_models": self.label_models,
            "drift_detections": self.drift_detections, "last_drift_ts": self.last_drift_ts,
        }
        # Copies of containers of immutable things (tokens; frozen decisions whose dicts
        # are replaced, never changed in place): the state at this point, taken in well
        # under a millisecond, and pickled later.
        job = SnapshotJob(self, header, order, self.seen.ordered(),
                          list(self.memory.items.items()))
        self.job = job
        return job

    def restore(self, data: bytes) -> None:
        """Load a snapshot taken by :meth:`snapshot` or a :class:`SnapshotJob`, or one of
        the single-pickle form before them (checkpoints are local, trusted files)."""
        state = read_snapshot(self.shard_id, data, self.memory.horizon, self.memory.capacity)
        entities = state["entities"]
        if self.job is not None:  # its entities are about to be replaced
            self.job.cancel()
        if state["model_version"] != self.model_version:
            logger.warning("shard %d: checkpoint of model %s restored under %s", self.shard_id,
                           state["model_version"], self.model_version)
        self.entities = entities
        self.models = state["models"]
        try:
            self.seen = DedupWindow(self.dedup_window, unpacked(state["seen"]))
        except TypeError as exc:
            raise CheckpointError(f"shard {self.shard_id}: {exc}") from exc
        self.applied_offset = state["applied_offset"]
        self.watermark = state["watermark"]
        self.started = state.get("started", self.started)
        self.processed = state["processed"]
        self.evicted = state.get("evicted", self.evicted)
        self.evicted_by = state.get("evicted_by", self.evicted_by)
        self.quality = state.get("quality", self.quality)
        self.memory = state.get("memory", self.memory)
        self.label_models = state.get("label_models", self.label_models)
        self.drift = state.get("drift", self.drift)
        self.drift_detections = state.get("drift_detections", self.drift_detections)
        self.last_drift_ts = state.get("last_drift_ts", self.last_drift_ts)
