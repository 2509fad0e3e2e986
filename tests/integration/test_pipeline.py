"""The spine end to end on a real broker: contract, decisions, dead letters, replay parity,
and the processing guarantee across a kill -9 of the worker."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.config import Settings
from monitor.contract.events import INPUT_KINDS, from_dict
from monitor.processing.engine import Engine
from monitor.routing.views import views
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import Shard
from monitor.tools.replay import replay
from monitor.tools.sample import generate
from monitor.tools.samplefile import write_sample
from streams.devtools.produce import produce_file
from tests.integration.harness import (
    TopicReader,
    Worker,
    make_config,
    strip_wallclock,
    wait_caught_up,
)

pytestmark = pytest.mark.integration


def _valid_events(path: Path) -> list[dict[str, Any]]:
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [record for record in records if "value" in record]


def _inputs(settings: Settings) -> list[str]:
    return [settings.kafka.topic(name)
            for name in ("payments", "loan_disbursals", "labels", "routed")]


async def test_each_valid_event_one_decision_each_invalid_one_dead_letter(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap)
    events = tmp_path / "events.jsonl"
    write_sample(events, invalid=True)
    valid = _valid_events(events)
    invalid = sum(1 for _ in events.read_bytes().splitlines()) - len(valid)
    assert invalid == 5
    worker = Worker(config, settings, tmp_path / "worker.log").start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        await produce_file(settings, events)
        decisions, dead = settings.kafka.topic("decisions"), settings.kafka.topic("dead_letter")
        async with TopicReader(bootstrap, [decisions, dead]) as reader:
            await reader.until(lambda: len(reader.records[decisions]) >= len(valid)
                               and len(reader.records[dead]) >= invalid, 120, "outputs")
            await wait_caught_up(settings, _inputs(settings))
            await reader.drain()
        metrics = worker.metrics()
        assert worker.stop() == 0
    finally:
        worker.stop()
    # faust's data directory lives under the state directory, not in the working one.
    assert (settings.processing.state_dir / "faust").is_dir()
    assert not (Path.cwd() / f"{settings.kafka.app_id}-data").exists()
    consumed = 'fraudmon_events_consumed_total{outcome="%s",topic="%s"}'
    assert sum(metrics.get(consumed % ("valid", kind), 0) for kind in INPUT_KINDS) == len(valid)
    assert metrics[consumed % ("dead_letter", "payments")] == invalid
    assert metrics["fraudmon_decisions_total"] == len(valid)
    ids = Counter(record["event_id"] for record in reader.records[decisions])
    assert ids == Counter(record["value"]["event_id"] for record in valid)
    letters = reader.records[dead]
    assert len(letters) == invalid
    assert all(letter["reason"] and letter["source"]["topic"] == settings.kafka.topic("payments")
               for letter in letters)
    assert {letter["original"] for letter in letters} == {
        orjson.loads(line)["raw"] for line in events.read_bytes().splitlines()
        if b'"raw"' in line}


async def test_live_run_matches_replay_when_events_arrive_in_file_order(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap)
    records = generate(seed=11, people=6, days=40)
    expected_dir = tmp_path / "replay"
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    replay(events, expected_dir, Engine(settings))
    expected_alerts = [orjson.loads(line) for line in
                       (expected_dir / "alerts.jsonl").read_bytes().splitlines()]
    expected_decisions = [orjson.loads(line) for line in
                          (expected_dir / "decisions.jsonl").read_bytes().splitlines()]
    assert {alert["pattern"] for alert in expected_alerts} >= {"rollover_loan", "mule_account"}

    worker = Worker(config, settings, tmp_path / "worker.log").start()
    decisions, alerts = settings.kafka.topic("decisions"), settings.kafka.topic("alerts")
    try:
        await asyncio.to_thread(worker.wait_ready)
        async with TopicReader(bootstrap, [decisions, alerts]) as reader:
            for number, record in enumerate(records, start=1):
                single = tmp_path / "one.jsonl"
                single.write_bytes(orjson.dumps(record) + b"\n")
                await produce_file(settings, single)
                await reader.until(lambda n=number: len(reader.records[decisions]) >= n, 30,
                                   f"decision {number}")
            await wait_caught_up(settings, _inputs(settings))
            await reader.drain()
    finally:
        worker.stop()
    live_decisions = {d["event_id"]: strip_wallclock(d) for d in reader.records[decisions]}
    assert live_decisions == {d["event_id"]: strip_wallclock(d) for d in expected_decisions}
    by_id = lambda items: {a["alert_id"]: strip_wallclock(a) for a in items}  # noqa: E731
    assert by_id(reader.records[alerts]) == by_id(expected_alerts)


async def test_kill_9_mid_stream_loses_nothing_and_learns_nothing_twice(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap)
    events = tmp_path / "events.jsonl"
    write_sample(events, seed=5, invalid=True)
    valid = _valid_events(events)
    valid_ids = {record["value"]["event_id"] for record in valid}
    decisions, alerts = settings.kafka.topic("decisions"), settings.kafka.topic("alerts")
    log = tmp_path / "worker.log"
    worker = Worker(config, settings, log).start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        async with TopicReader(bootstrap, [decisions, alerts]) as reader:
            producing = asyncio.create_task(produce_file(settings, events, rate=250))
            await reader.until(lambda: len(reader.records[decisions]) >= len(valid) // 3, 60,
                               "a third of the decisions")
            worker.kill9()
            at_kill = len(reader.records[decisions])
            assert at_kill < len(valid), "the kill must land mid-stream"
            worker = Worker(config, settings, log).start()
            await asyncio.to_thread(worker.wait_ready)
            await producing
            await reader.until(
                lambda: {d["event_id"] for d in reader.records[decisions]} >= valid_ids, 120,
                "a decision for every valid event")
            await wait_caught_up(settings, _inputs(settings))
            await reader.drain()
        assert worker.stop() == 0
    finally:
        worker.stop()

    for topic, key in ((decisions, "event_id"), (alerts, "alert_id")):
        seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in reader.records[topic]:
            seen[record[key]].append(strip_wallclock(record))
        for copies in seen.values():
            assert all(copy == copies[0] for copy in copies[1:]), f"{topic} differs on repeat"
    assert {d["event_id"] for d in reader.records[decisions]} == valid_ids

    # No view was folded twice (or lost): the checkpoints hold exactly one fold per view,
    # and the models learned exactly as often as in an uninterrupted replay.
    parsed = [from_dict(r["topic"], r["value"]) for r in valid]
    store = FileCheckpointStore(settings.processing.state_dir)
    shards = []
    for shard_id in range(settings.kafka.partitions):
        shard = Shard(shard_id, settings)
        data = store.load(shard_id)
        assert data is not None
        shard.restore(data)
        shards.append(shard)
    engine = Engine(settings)
    for event in parsed:
        engine.process(event)
    assert sum(s.processed for s in engine.shards) >= sum(len(views(e)) for e in parsed)
    assert sum(s.processed for s in shards) == sum(s.processed for s in engine.shards)
    assert sum(s.learned for s in shards) == sum(s.learned for s in engine.shards)
