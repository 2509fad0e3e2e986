"""What every entity family provides: event-time state, features and typology rules."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from monitor.runtime.slotstate import as_dict, fields, get_state, set_state

if TYPE_CHECKING:
    from collections.abc import Mapping

    from monitor.config import DetectionSettings
    from monitor.contract.events import Event
    from monitor.routing.views import View

_EMPTY: Final[dict[str, Any]] = {}
"""The one empty mapping every entity starts with (64 bytes saved per attribute): the
per-entity mappings are typed read-only and replaced, never changed in place."""

DAY = 86_400.0
HOUR = 3_600.0


def clip01(value: float) -> float:
    """``value`` limited to [0, 1]."""
    return 0.0 if value < 0 else 1.0 if value > 1 else value


def ramp(value: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    return clip01((value - low) / (high - low))


# Reason and Finding write out ``__init__``: a compiled build runs a generated one (a frozen
# dataclass's) as interpreted Python, several times slower. Neither changes once built.
@dataclass(slots=True, init=False, unsafe_hash=True)
class Reason:
    """One signal behind a finding: its value and what is typical."""

    signal: str
    value: float
    typical: str

    def __init__(self, signal: str, value: float, typical: str) -> None:
        self.signal = signal
        self.value = value
        self.typical = typical

    def as_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "value": round(self.value, 4), "typical": self.typical}


@dataclass(slots=True, init=False, unsafe_hash=True)
class Finding:
    """A typology rule's view of one pattern: strength in [0, 1] and its reasons.

    ``targets`` names the entities the finding is about when they are not the state's
    own entity (a device finds the fake accounts made on it).
    """

    pattern: str
    strength: float
    reasons: tuple[Reason, ...]
    targets: tuple[tuple[str, str], ...]

    def __init__(self, pattern: str, strength: float, reasons: tuple[Reason, ...],
                 targets: tuple[tuple[str, str], ...] = ()) -> None:
        self.pattern = pattern
        self.strength = strength
        self.reasons = reasons
        self.targets = targets


def prune(window: deque[tuple[Any, ...]], oldest: float) -> None:
    """Drop entries of a time-ordered window older than ``oldest`` (entry[0] is the time)."""
    while window and window[0][0] < oldest:
        window.popleft()


class EntityState:
    """Event-time state of one entity. Subclasses keep bounded windows only.

    ``feature_caps`` gives, per feature, the value that maps to 1.0 when features are
    scaled into the unit box for the anomaly model (log scale; larger values saturate).
    """

    __slots__ = ("alerted", "first_ts", "labels", "last_ts", "recent_events", "scores")

    family: ClassVar[str] = "entity"
    patterns: ClassVar[tuple[str, ...]] = ()
    feature_caps: ClassVar[dict[str, float]] = {}
    max_evidence: Final = 8

    def __init__(self) -> None:
        self.first_ts: float | None = None
        self.last_ts = 0.0
        self.labels: Mapping[str, bool] = _EMPTY
        self.alerted: Mapping[str, float] = _EMPTY
        self.scores: Mapping[str, float] = _EMPTY
        # The newest ``max_evidence`` event ids, oldest first (a list: a deque costs ~620
        # bytes even when it holds one id; checkpoints holding a deque still work).
        self.recent_events: list[str] | deque[str] = []

    def __getstate__(self) -> dict[str, Any]:
        return get_state(self)

    def __setstate__(self, state: Any) -> None:
        values = as_dict(state)
        set_state(self, values)
        missing = [name for name in fields(type(self)) if name not in values]
        if missing:  # attributes added since the checkpoint: as a new entity starts them
            fresh = type(self)()
            for name in missing:
                setattr(self, name, getattr(fresh, name))

    def clear_scores(self) -> None:
        """Forget the last scores (a view without findings)."""
        if self.scores:
            self.scores = _EMPTY

    def mark_alerted(self, key: str, ts: float) -> None:
        """Record an alert for the cool-down (rare: a new mapping each time)."""
        self.alerted = {**self.alerted, key: ts}

    def set_label(self, pattern: str, confirmed: bool) -> None:
        """Record an analyst's verdict on ``pattern`` (rare: a new mapping each time)."""
        self.labels = {**self.labels, pattern: confirmed}

    def observe(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        """Fold one event into the state; returns views to route onward (usually none)."""
        ts = event.ts
        if self.first_ts is None:
            self.first_ts = ts
        if ts > self.last_ts:
            self.last_ts = ts
        recent = self.recent_events
        if not isinstance(recent, list):  # a deque from an older checkpoint
            recent = self.recent_events = list(recent)
        event_id = event.event_id
        if recent:
            if recent[-1] != event_id:  # a second view of one event (shared_device)
                recent.append(event_id)
                if len(recent) > self.max_evidence:
                    del recent[0]
        else:
            self.recent_events = [event_id]  # sized to one id, not four
        return self.update(view, event, settings)

    def update(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        raise NotImplementedError

    def candidate(self, now: float, settings: DetectionSettings) -> bool:
        """Cheap pre-check: could any rule of this family find something now?

        When it says no, the shard skips computing features (except for the anomaly
        model's learning sample), which is most of the per-event cost.
        """
        return True

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        raise NotImplementedError

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        raise NotImplementedError

    def age_days(self, now: float) -> float:
        return 0.0 if self.first_ts is None else max(0.0, now - self.first_ts) / DAY
