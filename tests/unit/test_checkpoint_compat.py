"""Checkpoints written before the modules moved into subpackages still restore.

``tests/data/checkpoint-before-layout`` holds the four shard checkpoints an engine wrote
(by the code of commit 014a194, the last before the move) after the first half of the
seed-11 demo sample; its pickles name classes by their old module paths
(``monitor.entities.account``, ``monitor.supervised``, ...).
"""

from __future__ import annotations

from pathlib import Path

from monitor.contract.events import from_dict
from monitor.processing.engine import Engine
from monitor.state import pickled
from monitor.state.checkpoint import FileCheckpointStore
from monitor.tools.sample import generate
from tests.unit.test_shard import make_settings, stripped

BEFORE = Path(__file__).resolve().parent.parent / "data" / "checkpoint-before-layout"


def test_the_fixture_names_the_old_module_paths() -> None:
    data = (BEFORE / "shard-0000.ckpt").read_bytes()
    assert b"monitor.entities.account" in data and b"monitor.supervised" in data


def test_a_checkpoint_from_before_the_move_restores_and_goes_on_as_an_uninterrupted_run(
        ) -> None:
    settings = make_settings()
    events = [from_dict(record["topic"], record["value"]) for record in generate(seed=11)]
    cut = len(events) // 2
    whole = Engine(settings)
    expected = [[stripped(o) for o in whole.process(event)] for event in events]

    store = FileCheckpointStore(BEFORE)
    restored = Engine(settings)
    for shard in restored.shards:
        shard.restore(store.load(shard.shard_id) or b"")
    assert sum(len(shard.entities) for shard in restored.shards) > 0
    rest = [[stripped(o) for o in restored.process(event)] for event in events[cut:]]

    assert rest == expected[cut:]
    assert any(alerts for outcomes in rest for _, alerts in outcomes)


def test_every_old_path_names_a_module_that_exists() -> None:
    import importlib

    for new in pickled.MOVED.values():
        importlib.import_module(new)
