"""Shards (monitor.state.shard, monitor.processing.engine): idempotence, checkpoints and
eviction in event time."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings
from monitor.contract.events import LABELS, PAYMENTS, Event, from_dict
from monitor.detection.entities.base import DAY
from monitor.errors import CheckpointError
from monitor.processing.engine import Engine
from monitor.routing.views import View, views
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import Outcome, Shard
from monitor.tools.sample import generate

WALL_CLOCK = ("processed_at", "created_at")
CUTS = (0.2, 0.5, 0.75)
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)

Log = list[tuple[View, Event]]


def make_settings(**sections: Any) -> Settings:
    """Settings from explicit values only, whatever FRAUDMON_* variables are set."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper().startswith("FRAUDMON_"):
                patch.delenv(name)
        return Settings(**sections)


def stamp(at: datetime) -> str:
    return at.isoformat()


def pay(event_id: str, payer: str, payee: str, at: datetime = T0, amount: float = 100.0,
        **extra: Any) -> Event:
    return from_dict(PAYMENTS, {"event_id": event_id, "ts": stamp(at), "payer": payer,
                                "payee": payee, "amount": amount, "channel": "transfer",
                                **extra})


def stripped(outcome: Outcome | None) -> Any:
    """An outcome without its wall-clock fields, for comparing runs."""
    if outcome is None:
        return None
    decision = ({k: v for k, v in outcome.decision.items() if k not in WALL_CLOCK}
                if outcome.decision is not None else None)
    alerts = [{k: v for k, v in alert.items() if k not in WALL_CLOCK}
              for alert in outcome.alerts]
    return decision, alerts


def feed(shard: Shard, log: Log, start: int = 0) -> list[Outcome | None]:
    """Fold ``log[start:]`` into ``shard``, each view at its log offset."""
    return [shard.process(view, event, offset)
            for offset, (view, event) in enumerate(log[start:], start=start)]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="module")
def log() -> Log:
    """The demo traffic as one shard's log: every view of every event, in event order."""
    events = [from_dict(record["topic"], record["value"]) for record in generate(seed=7)]
    return [(view, event) for event in events for view in views(event)]


@pytest.fixture(scope="module")
def uninterrupted(settings: Settings, log: Log) -> dict[str, Any]:
    """One shard fed the whole log, with snapshots taken on the way at each cut."""
    shard = Shard(0, settings)
    cuts = {int(len(log) * fraction) for fraction in CUTS}
    snapshots: dict[int, bytes] = {}
    outcomes: list[Outcome | None] = []
    for offset, (view, event) in enumerate(log):
        if offset in cuts:
            snapshots[offset] = shard.snapshot()
        outcomes.append(shard.process(view, event, offset))
    return {"outcomes": [stripped(o) for o in outcomes], "snapshots": snapshots,
            "learned": shard.learned, "processed": shard.processed,
            "entities": sorted(shard.entities), "shard": shard}


# --- idempotence --------------------------------------------------------------------


def test_offsets_at_or_below_the_applied_offset_are_skipped(settings: Settings) -> None:
    shard = Shard(0, settings)
    first, second = pay("e1", "a", "b"), pay("e2", "a", "c")
    assert shard.process(views(first)[0], first, offset=5) is not None
    before = (shard.processed, shard.learned, shard.applied_offset)
    assert shard.process(views(second)[0], second, offset=5) is None
    assert shard.process(views(second)[0], second, offset=2) is None
    assert (shard.processed, shard.learned, shard.applied_offset) == before == (1, 1, 5)
    assert shard.process(views(second)[0], second, offset=6) is not None
    assert (shard.processed, shard.learned, shard.applied_offset) == (2, 2, 6)


def test_redelivered_view_is_dropped(settings: Settings) -> None:
    shard = Shard(0, settings)
    event = pay("e1", "a", "b")
    payer, payee = views(event)
    assert shard.process(payer, event, offset=0) is not None
    # The same view again, e.g. a producer retry that landed at a later offset.
    assert shard.process(payer, event, offset=1) is None
    assert shard.process(payer, event) is None
    assert (shard.processed, shard.learned) == (1, 1)
    assert shard.applied_offset == 1
    # Another role of the same event is a different view.
    assert shard.process(payee, event, offset=2) is not None
    assert (shard.processed, shard.learned) == (2, 2)


def test_dedup_window_forgets_the_oldest_views() -> None:
    shard = Shard(0, make_settings(processing={"dedup_window": 2}))
    first, second, third = (pay(f"e{i}", "a", "b") for i in range(3))
    for event in (first, second, third):
        assert shard.process(views(event)[0], event) is not None
    assert shard.process(views(third)[0], third) is None
    assert shard.process(views(first)[0], first) is not None


def test_dedup_window_zero_turns_dedup_off() -> None:
    shard = Shard(0, make_settings(processing={"dedup_window": 0}))
    event = pay("e1", "a", "b")
    assert shard.process(views(event)[0], event) is not None
    assert shard.process(views(event)[0], event) is not None
    assert shard.learned == 2


def test_only_the_primary_view_emits_a_decision(settings: Settings) -> None:
    shard = Shard(0, settings)
    event = pay("e1", "a", "b", device_id="dev-1")
    payer, payee, _device = views(event)
    decided = shard.process(payer, event)
    assert decided is not None
    assert decided.decision is not None
    assert decided.decision["event_id"] == "e1"
    assert decided.decision["topic"] == PAYMENTS
    assert {"type": "device", "id": "dev-1"} in decided.decision["entities"]
    assert set(decided.decision["scores"]) >= {"mule_account", "structuring"}
    assert all(0.0 <= score <= 1.0 for score in decided.decision["scores"].values())
    only_state = shard.process(payee, event)
    assert only_state is not None
    assert only_state.decision is None


def test_label_updates_state_without_learning(settings: Settings) -> None:
    shard = Shard(0, settings)
    event = pay("e1", "a", "b")
    shard.process(views(event)[0], event)
    label = from_dict(LABELS, {"event_id": "l1", "ts": stamp(T0), "entity": "a",
                               "entity_type": "account", "pattern": "mule_account",
                               "confirmed": True})
    outcome = shard.process(views(label)[0], label)
    assert outcome is not None
    assert outcome.decision is not None
    assert outcome.decision["scores"] == {}
    assert outcome.alerts == []
    assert shard.learned == 1
    assert shard.entities["account:a"].labels == {"mule_account": True}


# --- checkpoints --------------------------------------------------------------------


@pytest.mark.parametrize("fraction", CUTS)
def test_restored_shard_reproduces_the_uninterrupted_run(
        settings: Settings, log: Log, uninterrupted: dict[str, Any], fraction: float) -> None:
    cut = int(len(log) * fraction)
    expected = uninterrupted["outcomes"][cut:]
    assert any(alerts for _, alerts in expected), "the rest of the log must raise alerts"

    restored = Shard(0, settings)
    restored.restore(uninterrupted["snapshots"][cut])
    assert restored.applied_offset == cut - 1
    assert restored.processed == cut
    outcomes = [stripped(o) for o in feed(restored, log, start=cut)]

    assert outcomes == expected
    assert restored.learned == uninterrupted["learned"]
    assert restored.processed == uninterrupted["processed"]
    assert sorted(restored.entities) == uninterrupted["entities"]
    # Control: without the snapshot the same rest of the log comes out differently.
    assert [stripped(o) for o in feed(Shard(0, settings), log, start=cut)] != expected


def test_redelivery_after_restore_learns_nothing_twice(
        settings: Settings, log: Log, uninterrupted: dict[str, Any]) -> None:
    cut = int(len(log) * CUTS[1])
    restored = Shard(0, settings)
    restored.restore(uninterrupted["snapshots"][cut])
    # The broker redelivers the whole log from the start, as after a lost commit.
    outcomes = [stripped(o) for o in feed(restored, log)]
    assert outcomes[:cut] == [None] * cut
    assert outcomes[cut:] == uninterrupted["outcomes"][cut:]
    assert restored.learned == uninterrupted["learned"]


def test_dedup_memory_survives_a_checkpoint(settings: Settings) -> None:
    shard = Shard(0, settings)
    event = pay("e1", "a", "b")
    payer, payee = views(event)
    shard.process(payer, event, offset=0)
    restored = Shard(0, settings)
    restored.restore(shard.snapshot())
    # A duplicate of the view that landed at a later offset is still recognised.
    assert restored.process(payer, event, offset=1) is None
    assert restored.process(payee, event, offset=2) is not None
    assert restored.learned == 2


@pytest.mark.parametrize("event_id", ["e1", "ünïcode-id"])
def test_the_dedup_window_keeps_its_order_through_a_checkpoint(settings: Settings,
                                                               event_id: str) -> None:
    # It is stored as one NUL-joined string (the contract refuses NUL in an id; windows
    # holding one, from older checkpoints, are in test_dedup).
    shard = Shard(0, settings)
    for n, current in enumerate(["e0", event_id, "e2"]):
        event = pay(current, "a", "b")
        shard.process(views(event)[0], event, offset=n)
    restored = Shard(0, settings)
    restored.restore(shard.snapshot())
    assert list(restored.seen) == list(shard.seen) == [
        f"{current}\x1fpayer" for current in ["e0", event_id, "e2"]]
    event = pay(event_id, "a", "b")
    assert restored.process(views(event)[0], event, offset=3) is None


def test_snapshot_does_not_share_state_with_the_live_shard(
        uninterrupted: dict[str, Any], settings: Settings, log: Log) -> None:
    shard: Shard = uninterrupted["shard"]
    before = shard.snapshot()
    event = pay("late-1", "brand-new-payer", "brand-new-payee",
                at=T0 + timedelta(days=60))
    copy = Shard(0, settings)
    copy.restore(before)
    copy.process(views(event)[0], event, offset=len(log))
    assert "account:brand-new-payer" in copy.entities
    assert "account:brand-new-payer" not in shard.entities
    assert shard.snapshot() == before


def test_engine_restored_mid_stream_matches_an_uninterrupted_engine() -> None:
    settings = make_settings()
    events = [from_dict(record["topic"], record["value"]) for record in generate(seed=11)]
    cut = len(events) // 2

    whole = Engine(settings)
    expected = [[stripped(o) for o in whole.process(event)] for event in events]

    first = Engine(settings)
    for event in events[:cut]:
        first.process(event)
    second = Engine(settings)
    for shard, source in zip(second.shards, first.shards, strict=True):
        shard.restore(source.snapshot())
    rest = [[stripped(o) for o in second.process(event)] for event in events[cut:]]

    assert rest == expected[cut:]
    assert any(alerts for outcomes in rest for _, alerts in outcomes)
    assert [s.learned for s in second.shards] == [s.learned for s in whole.shards]


def test_checkpoint_file_round_trip(tmp_path: Path, settings: Settings,
                                    uninterrupted: dict[str, Any]) -> None:
    store = FileCheckpointStore(tmp_path / "state")
    assert store.load(3) is None
    snapshot = next(iter(uninterrupted["snapshots"].values()))
    store.save(0, snapshot)
    store.save(0, snapshot)  # overwriting is fine
    assert store.load(0) == snapshot
    Shard(0, settings).restore(store.load(0) or b"")
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["shard-0000.ckpt"]


GARBAGE = {
    "empty": b"",
    "text": b"garbage",
    "bad-opcode": b"\x80\x05\x95junk",
    "not-a-dict": pickle.dumps([1, 2, 3]),
    "none": pickle.dumps(None),
    "dict-without-state": pickle.dumps({"format": 1, "shard_id": 0}),
}


@pytest.mark.parametrize("data", list(GARBAGE.values()), ids=list(GARBAGE))
def test_restore_of_garbage_raises_checkpoint_error(settings: Settings, data: bytes) -> None:
    shard = Shard(0, settings)
    event = pay("e1", "a", "b")
    shard.process(views(event)[0], event, offset=0)
    with pytest.raises(CheckpointError) as caught:
        shard.restore(data)
    assert caught.value.retryable is True
    assert "shard 0" in str(caught.value)
    # A failed restore leaves the shard as it was.
    assert (shard.applied_offset, shard.processed, sorted(shard.entities)) == (
        0, 1, ["account:a"])


def test_restore_of_a_truncated_snapshot_raises_checkpoint_error(
        settings: Settings, uninterrupted: dict[str, Any]) -> None:
    snapshot = next(iter(uninterrupted["snapshots"].values()))
    with pytest.raises(CheckpointError):
        Shard(0, settings).restore(snapshot[: len(snapshot) // 2])


def test_restore_refuses_another_shards_snapshot(settings: Settings) -> None:
    with pytest.raises(CheckpointError, match="another"):
        Shard(1, settings).restore(Shard(0, settings).snapshot())


def test_restore_refuses_another_format(settings: Settings) -> None:
    state = pickle.loads(Shard(0, settings).snapshot())  # noqa: S301 - our own bytes
    state["format"] = 99
    with pytest.raises(CheckpointError):
        Shard(0, settings).restore(pickle.dumps(state))


# --- eviction -----------------------------------------------------------------------


def days_later(days: float) -> datetime:
    return T0 + timedelta(days=days)


def fold(shard: Shard, events: Iterator[Event] | list[Event]) -> None:
    for event in events:
        for view in views(event):
            shard.process(view, event)


def test_idle_entities_are_evicted_by_event_time() -> None:
    shard = Shard(0, make_settings(processing={"entity_idle_days": 10}))
    fold(shard, [pay("old", "old-payer", "old-payee", at=T0),
                 pay("mid", "mid-payer", "mid-payee", at=days_later(5)),
                 pay("new", "new-payer", "new-payee", at=days_later(12))])
    assert shard.watermark == days_later(12).timestamp()
    assert shard.evict_idle() == 2
    assert sorted(shard.entities) == ["account:mid-payee", "account:mid-payer",
                                      "account:new-payee", "account:new-payer"]
    assert shard.evicted == 2
    assert shard.evict_idle() == 0


def test_entity_idle_exactly_the_horizon_is_kept() -> None:
    shard = Shard(0, make_settings(processing={"entity_idle_days": 10}))
    fold(shard, [pay("old", "edge", "edge-payee", at=T0),
                 pay("new", "n", "m", at=days_later(10))])
    assert shard.evict_idle() == 0
    assert "account:edge" in shard.entities


def test_eviction_ignores_the_wall_clock() -> None:
    # Traffic from 2016: years before "now", but within the horizon of its own stream.
    shard = Shard(0, make_settings(processing={"entity_idle_days": 120}))
    start = datetime(2016, 3, 1, tzinfo=UTC)
    fold(shard, [pay(f"e{i}", f"payer-{i}", "shop", at=start + timedelta(days=i))
                 for i in range(30)])
    assert shard.evict_idle() == 0
    assert len(shard.entities) == 31


def test_activity_keeps_an_entity() -> None:
    shard = Shard(0, make_settings(processing={"entity_idle_days": 10}))
    fold(shard, [pay("e1", "busy", "x", at=T0), pay("e2", "y", "busy", at=days_later(9)),
                 pay("e3", "z", "w", at=days_later(15))])
    shard.evict_idle()
    assert "account:busy" in shard.entities
    assert "account:x" not in shard.entities


def test_shard_sweeps_idle_entities_as_it_goes() -> None:
    every = 100
    shard = Shard(0, make_settings(processing={"entity_idle_days": 1,
                                               "eviction_every_events": every}))
    fold(shard, [pay("old", "old-payer", "old-payee", at=T0)])
    # Self-payments have one view each, so the sweep runs while folding the last one.
    fold(shard, [pay(f"e{i}", f"acct-{i}", f"acct-{i}", at=days_later(3))
                 for i in range(every - 2)])
    assert shard.processed == every
    assert "account:old-payer" not in shard.entities
    assert "account:old-payee" not in shard.entities
    assert shard.evicted == 2
    assert len(shard.entities) == every - 2


def test_evicted_state_survives_a_checkpoint() -> None:
    shard = Shard(0, make_settings(processing={"entity_idle_days": 1}))
    fold(shard, [pay("old", "p", "q", at=T0), pay("new", "r", "s", at=days_later(2))])
    shard.evict_idle()
    copy = Shard(0, make_settings(processing={"entity_idle_days": 1}))
    copy.restore(shard.snapshot())
    assert sorted(copy.entities) == ["account:r", "account:s"]
    assert copy.evicted == 2
    assert copy.watermark == pytest.approx(T0.timestamp() + 2 * DAY)


def test_a_prepared_shard_decides_and_learns_as_one_that_builds_its_trees_on_the_way(
        settings: Settings, log: Log) -> None:
    """``prepare`` builds the anomaly trees River would build on the first event learned."""
    lazy, prepared = Shard(0, settings), Shard(0, settings)
    prepared.prepare()
    assert all(model.model.trees for model in prepared.models.values())
    assert not any(model.model.trees for model in lazy.models.values())
    assert [stripped(o) for o in feed(prepared, log)] == [stripped(o) for o in feed(lazy, log)]
    for name, model in prepared.models.items():
        assert model.learned > 0
        assert pickle.dumps(model) == pickle.dumps(lazy.models[name])
