"""Snapshots in slices (monitor.state.shard.SnapshotJob, streams.state.shards): a point in time,
whatever the shard folds while the entities are pickled."""

from __future__ import annotations

import math
import pickle
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings
from monitor.contract.events import LABELS, from_dict
from monitor.errors import CheckpointError
from monitor.routing.views import views
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import Shard
from monitor.state.snapshot import (
    ENTITIES_PER_PICKLE,
    MEMORY_PER_PART,
    SEEN_PER_PART,
    SNAPSHOT_FORMAT,
    SnapshotJob,
)
from streams.state.shards import ShardManager
from tests.unit.test_shard import (
    CUTS,
    T0,
    Log,
    days_later,
    feed,
    fold,
    log,
    make_settings,
    pay,
    settings,
    stamp,
    stripped,
)

__all__ = ["log", "settings"]  # module fixtures shared with test_shard


def pickled_entities(shard: Shard) -> list[tuple[str, bytes]]:
    """Each entity pickled on its own, in the shard's order."""
    return [(key, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
            for key, state in shard.entities.items()]


def restored(settings: Settings, data: bytes) -> Shard:
    shard = Shard(0, settings)
    shard.restore(data)
    return shard


def finish(job: SnapshotJob) -> bytes:
    while not job.step(None):
        pass
    return job.result()


@pytest.mark.parametrize("fraction", CUTS)
def test_a_sliced_snapshot_is_the_state_it_began_at(settings: Settings, log: Log,
                                                   fraction: float) -> None:
    cut = int(len(log) * fraction)
    live = Shard(0, settings)
    feed(live, log[:cut])
    reference = restored(settings, live.snapshot())  # one call, at the cut
    job = live.begin_snapshot()
    # One group of entities per step, views of the log folded between the steps.
    offset, steps = cut, 0
    while not job.step(0.0):
        steps += 1
        for view, event in log[offset:offset + 3]:
            live.process(view, event, offset)
            offset += 1
    assert steps > 1 and offset > cut
    assert live.job is None
    copy = restored(settings, job.result())
    assert pickled_entities(copy) == pickled_entities(reference)
    # The dedup window and the decision memory as they were at the cut, too.
    assert list(copy.seen) == list(reference.seen) != list(live.seen)
    assert list(copy.memory.items.items()) == list(reference.memory.items.items())
    assert (copy.applied_offset, copy.processed, copy.learned) == (
        reference.applied_offset, reference.processed, reference.learned)
    # Both fold the rest of the log alike (the views folded during the job included).
    assert ([stripped(o) for o in feed(copy, log, cut)]
            == [stripped(o) for o in feed(reference, log, cut)])
    assert pickled_entities(copy) == pickled_entities(reference)


def test_an_entity_evicted_during_a_job_is_in_the_snapshot() -> None:
    idle = make_settings(processing={"entity_idle_days": 1})
    shard = Shard(0, idle)
    fold(shard, [pay("old", "p", "q", at=T0), pay("new", "r", "s", at=days_later(2))])
    reference = restored(idle, shard.snapshot())
    job = shard.begin_snapshot()
    assert shard.evict_idle() == 2
    assert sorted(shard.entities) == ["account:r", "account:s"]
    copy = restored(idle, finish(job))
    assert sorted(copy.entities) == ["account:p", "account:q", "account:r", "account:s"]
    assert pickled_entities(copy) == pickled_entities(reference)
    assert copy.evicted == 0


def test_a_label_during_a_job_is_not_in_the_snapshot(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    job = shard.begin_snapshot()
    label = from_dict(LABELS, {"event_id": "l1", "ts": stamp(days_later(1)), "entity": "a",
                               "entity_type": "account", "pattern": "mule_account",
                               "confirmed": True})
    shard.process(views(label)[0], label)
    assert shard.entities["account:a"].labels == {"mule_account": True}
    copy = restored(settings, finish(job))
    assert copy.entities["account:a"].labels == {}
    assert copy.entities["account:a"].last_ts == T0.timestamp()


def test_entities_created_during_a_job_are_not_in_the_snapshot(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    job = shard.begin_snapshot()
    fold(shard, [pay("e2", "a", "new-payee", at=days_later(1))])
    copy = restored(settings, finish(job))
    assert sorted(copy.entities) == ["account:a", "account:b"]
    assert copy.entities["account:a"].recent_events == ["e1"]
    assert sorted(shard.entities) == ["account:a", "account:b", "account:new-payee"]


def test_describe_during_a_job_preserves_the_entity(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    job = shard.begin_snapshot()
    assert shard.describe("account", "a") is not None
    assert "account:a" not in job.remaining
    assert sorted(restored(settings, finish(job)).entities) == ["account:a", "account:b"]


def test_the_old_single_pickle_form_still_restores(settings: Settings, log: Log) -> None:
    shard = Shard(0, settings)
    feed(shard, log[: len(log) // 2])
    # As ``Shard.snapshot`` wrote checkpoints before snapshots came in slices.
    old = pickle.dumps({
        "format": SNAPSHOT_FORMAT, "shard_id": 0, "model_version": shard.model_version,
        "entities": shard.entities, "models": shard.models, "seen": "\x00".join(shard.seen),
        "applied_offset": shard.applied_offset, "watermark": shard.watermark,
        "started": shard.started, "processed": shard.processed, "evicted": shard.evicted,
        "quality": shard.quality, "drift": shard.drift, "memory": shard.memory,
        "label_models": shard.label_models, "drift_detections": shard.drift_detections,
        "last_drift_ts": shard.last_drift_ts}, protocol=pickle.HIGHEST_PROTOCOL)
    from_old, from_new = restored(settings, old), restored(settings, shard.snapshot())
    assert pickled_entities(from_old) == pickled_entities(from_new)
    assert list(from_old.seen) == list(from_new.seen)
    rest = len(log) // 2
    assert ([stripped(o) for o in feed(from_old, log, rest)]
            == [stripped(o) for o in feed(from_new, log, rest)])


def test_slices_are_bounded(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay(f"e{n}", f"acct-{n}", f"acct-{n}") for n in range(3000)])
    assert len(shard.entities) == 3000
    tokens, decisions = len(shard.seen), len(shard.memory.items)
    job = shard.begin_snapshot()
    progress = []
    while not job.step(0.0):  # a budget of nothing: one piece per step
        progress.append(len(job.remaining))
    # A group of entities per step, then a piece of the dedup window or of the decision
    # memory per step, then the step that assembles the parts.
    entity_steps = math.ceil(3000 / ENTITIES_PER_PICKLE)
    assert len(progress) == (entity_steps + math.ceil(tokens / SEEN_PER_PART)
                             + math.ceil(decisions / MEMORY_PER_PART))
    assert all(a - b == ENTITIES_PER_PICKLE for a, b in pairwise(progress[:entity_steps]))
    assert progress[entity_steps - 1:] == [0] * (len(progress) - entity_steps + 1)
    again = restored(settings, job.result())
    assert len(again.entities) == 3000
    assert list(again.seen) == list(shard.seen)
    assert list(again.memory.items) == list(shard.memory.items)


def test_one_job_at_a_time_and_a_cancelled_job_stops(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    job = shard.begin_snapshot()
    with pytest.raises(CheckpointError, match="in progress"):
        shard.begin_snapshot()
    job.cancel()
    assert shard.job is None and not job.active
    with pytest.raises(CheckpointError, match="cancelled"):
        job.step()
    fold(shard, [pay("e2", "a", "c", at=days_later(1))])  # nothing preserved any more
    assert job.parts == []
    assert restored(settings, finish(shard.begin_snapshot())).entities.keys() == {
        "account:a", "account:b", "account:c"}


def test_restore_cancels_a_job(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    data = shard.snapshot()
    job = shard.begin_snapshot()
    shard.restore(data)
    assert shard.job is None
    with pytest.raises(CheckpointError):
        job.step()


def test_a_missing_part_is_a_checkpoint_error(settings: Settings) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    state: dict[str, Any] = pickle.loads(shard.snapshot())  # noqa: S301 - our own bytes
    state["entities"] = state["entities"][1:]
    with pytest.raises(CheckpointError, match="entities"):
        Shard(0, settings).restore(pickle.dumps(state))


@pytest.mark.parametrize("damage", [{"seen": [3]}, {"memory": [b"not a pickle"]},
                                    {"memory": None}])
def test_a_damaged_window_or_memory_piece_is_a_checkpoint_error(
        settings: Settings, damage: dict[str, Any]) -> None:
    shard = Shard(0, settings)
    fold(shard, [pay("e1", "a", "b")])
    state: dict[str, Any] = pickle.loads(shard.snapshot())  # noqa: S301 - our own bytes
    state.update(damage)
    with pytest.raises(CheckpointError, match="checkpoint part"):
        Shard(0, settings).restore(pickle.dumps(state))


# --- the shard manager --------------------------------------------------------------


def manager_with(tmp_path: Path, shard_ids: list[int]) -> ShardManager:
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path))
    for shard_id in shard_ids:
        shard = manager.shard(shard_id)
        fold(shard, [pay(f"e{shard_id}", "a", "b")])
        manager.advance(shard_id, 7)
    return manager


def test_a_begun_snapshot_fixes_its_offsets(tmp_path: Path) -> None:
    manager = manager_with(tmp_path, [1])
    [begun] = manager.begin()
    assert (begun.shard_id, begun.commit_offset) == (1, 7)
    assert manager.dirty == set() and manager.pending == {}
    manager.advance(1, 9)  # folded while the entities are pickled
    while not begun.step():
        pass
    assert begun.snapshot().commit_offset == 7
    assert manager.pending == {1: 9}


def test_an_abandoned_snapshot_leaves_its_shard_dirty(tmp_path: Path) -> None:
    manager = manager_with(tmp_path, [1, 2])
    begun = manager.begin()
    manager.abandon(begun)
    assert manager.dirty == {1, 2} and manager.pending == {1: 7, 2: 7}
    assert all(manager.shards[shard_id].job is None for shard_id in (1, 2))
    assert len(manager.snapshot()) == 2  # the next checkpoint takes them again


def test_a_released_shard_cancels_its_snapshot(tmp_path: Path) -> None:
    manager = manager_with(tmp_path, [1])
    [begun] = manager.begin()
    shard = manager.shards[1]
    manager.release([1])
    assert shard.job is None
    with pytest.raises(CheckpointError):
        begun.step()
    manager.abandon([begun])
    assert manager.dirty == set() and manager.pending == {}
