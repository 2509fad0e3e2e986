"""The live shard manager (streams.state.shards): what a checkpoint saves and may commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.contract.events import from_dict
from monitor.errors import CheckpointError
from monitor.routing.views import placements
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import Shard
from monitor.tools.sample import generate
from streams.state.shards import ShardManager
from tests.unit.test_shard import make_settings


def _fold(manager: ShardManager, shard_id: int, count: int) -> int:
    """Fold the first ``count`` views of the sample that belong to ``shard_id``."""
    offset = 0
    for record in generate():
        if "value" not in record:
            continue
        event = from_dict(record["topic"], record["value"])
        for view, shard in placements(event, 4):
            if shard == shard_id and offset < count:
                manager.shard(shard_id).process(view, event, offset)
                offset += 1
    manager.advance(shard_id, offset)
    return offset


def test_a_snapshot_takes_the_commit_offset_and_leaves_nothing_dirty(tmp_path: Path) -> None:
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path))
    folded = _fold(manager, 1, 40)
    assert folded == 40
    [snap] = manager.snapshot()
    assert (snap.shard_id, snap.commit_offset) == (1, 40)
    assert manager.dirty == set() and manager.pending == {}
    assert manager.snapshot() == []


async def test_save_writes_the_snapshot_a_new_owner_restores(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    manager = ShardManager(make_settings(), store)
    _fold(manager, 2, 25)
    saved = await manager.save(manager.snapshot())
    assert [snap.commit_offset for snap in saved] == [25]
    manager.release([2])
    assert manager.shards == {}
    restored = ShardManager(make_settings(), store).shard(2)
    assert restored.applied_offset == 24
    assert restored.snapshot() == saved[0].data


async def test_a_failed_write_is_not_committed_and_stays_dirty(tmp_path: Path) -> None:
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path))
    _fold(manager, 0, 10)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    manager.store = FileCheckpointStore(blocker)
    assert await manager.save(manager.snapshot()) == []
    assert manager.dirty == {0} and manager.pending == {0: 10}


def test_only_limits_the_snapshot_to_the_given_shards(tmp_path: Path) -> None:
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path))
    _fold(manager, 0, 5)
    _fold(manager, 3, 5)
    assert [snap.shard_id for snap in manager.snapshot(only={3})] == [3]
    assert manager.dirty == {0}


def test_an_unreadable_checkpoint_is_an_error_not_an_empty_shard(tmp_path: Path) -> None:
    (tmp_path / "shard-0001.ckpt").mkdir()
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path))
    with pytest.raises(CheckpointError):
        manager.shard(1)
    assert isinstance(ShardManager(make_settings(), FileCheckpointStore(tmp_path)).shard(0),
                      Shard)


def test_the_stalest_dirty_shards_come_first(tmp_path: Path) -> None:
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path))
    for shard_id in (0, 1, 2):
        _fold(manager, shard_id, 3)
    assert manager.stalest({0, 1, 2, 3}, None) == [0, 1, 2]
    manager.snapshot([0])
    manager.checkpoints += 1
    _fold(manager, 0, 6)
    assert manager.stalest({0, 1, 2}, 2) == [1, 2]
    manager.snapshot([1, 2])
    assert manager.stalest({0, 1, 2}, 1) == [0]
    assert manager.stalest({1, 2}, 1) == []


async def test_shards_are_prepared_before_their_first_view_new_or_restored(
        tmp_path: Path) -> None:
    """A worker's first batch does not build the anomaly models' trees (``Shard.prepare``)."""
    store = FileCheckpointStore(tmp_path)
    manager = ShardManager(make_settings(), store)
    new = await manager.ensure(1)
    assert all(model._flat is not None for model in new.models.values())
    _fold(manager, 1, 10)
    await manager.save(manager.snapshot())
    restored = await ShardManager(make_settings(), store).ensure(1)
    assert restored.applied_offset == 9
    assert all(model._flat is not None for model in restored.models.values())
