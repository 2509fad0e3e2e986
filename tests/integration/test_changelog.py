"""Shard state in Kafka: a worker on another host (an empty state directory) takes over
the shards of a stopped one, restores them from the changelog topic and carries on as an
uninterrupted replay would."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from monitor.config import Settings, load_settings
from monitor.processing.engine import Engine
from monitor.state.shard import Shard
from monitor.tools.replay import replay
from monitor.tools.sample import generate
from streams.devtools.produce import produce_file
from streams.state.changelog import KafkaChangelog
from streams.topics import changelog_topic
from tests.integration.harness import (
    TopicReader,
    Worker,
    free_port,
    input_topics,
    make_config,
    strip_wallclock,
    wait_caught_up,
)

pytestmark = pytest.mark.integration


def _other_host(config: Path, directory: Path) -> tuple[Path, Settings]:
    """The same deployment (topics, group) with its own, empty state dir and web port."""
    data = yaml.safe_load(config.read_text())
    data["processing"]["state_dir"] = str(directory / "state")
    data["web"]["port"] = free_port()
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, load_settings(path)


async def _send_in_order(settings: Settings, reader: TopicReader, topic: str,
                         records: list[dict[str, Any]], scratch: Path, before: int) -> None:
    """One event at a time, each after the previous one's decision (file order, as replay)."""
    for number, record in enumerate(records, start=before + 1):
        await asyncio.to_thread(scratch.write_bytes, orjson.dumps(record) + b"\n")
        await produce_file(settings, scratch)
        await reader.until(lambda n=number: len(reader.records[topic]) >= n, 30,
                           f"decision {number}")


async def _changelog_shards(settings: Settings) -> list[Shard]:
    """Every shard as the changelog topic holds it now."""
    changelog = KafkaChangelog(settings)
    await changelog.start()
    shards = []
    try:
        for shard_id in range(settings.kafka.partitions):
            shard = Shard(shard_id, settings)
            restored = await changelog.load(shard_id)
            if restored is not None:
                shard.restore(restored.data)
            shards.append(shard)
    finally:
        await changelog.stop()
    return shards


async def test_a_worker_on_another_host_restores_shards_from_the_changelog(
        tmp_path: Path, bootstrap: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config_a, settings_a = make_config(tmp_path / "a", bootstrap)
    config_b, settings_b = _other_host(config_a, tmp_path / "b")
    assert settings_a.processing.checkpoint_store == "kafka"
    records = generate(seed=11, people=6, days=40)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    engine = Engine(settings_a)
    replay(events, tmp_path / "replay", engine)
    expected_decisions = [orjson.loads(line) for line in
                          (tmp_path / "replay" / "decisions.jsonl").read_bytes().splitlines()]
    expected_alerts = [orjson.loads(line) for line in
                       (tmp_path / "replay" / "alerts.jsonl").read_bytes().splitlines()]
    half = len(records) // 2
    decisions, alerts = settings_a.kafka.topic("decisions"), settings_a.kafka.topic("alerts")
    scratch = tmp_path / "one.jsonl"

    first = Worker(config_a, settings_a, tmp_path / "a" / "worker.log").start()
    second = Worker(config_b, settings_b, tmp_path / "b" / "worker.log")
    try:
        await asyncio.to_thread(first.wait_ready)
        async with TopicReader(bootstrap, [decisions, alerts]) as reader:
            await _send_in_order(settings_a, reader, decisions, records[:half], scratch, 0)
            await wait_caught_up(settings_a, input_topics(settings_a))
            assert first.stop() == 0
            assert list((settings_a.processing.state_dir).glob("shard-*.ckpt"))
            assert not settings_b.processing.state_dir.exists()

            second.start()
            await asyncio.to_thread(second.wait_ready)
            await _send_in_order(settings_b, reader, decisions, records[half:], scratch,
                                 len(reader.records[decisions]))
            await wait_caught_up(settings_b, input_topics(settings_b))
            await reader.drain()
        assert second.stop() == 0
    finally:
        first.stop()
        second.stop()

    live = reader.records[decisions]
    assert Counter(d["event_id"] for d in live) == Counter(d["event_id"]
                                                         for d in expected_decisions)
    assert max(Counter(d["event_id"] for d in live).values()) == 1
    assert ({d["event_id"]: strip_wallclock(d) for d in live}
            == {d["event_id"]: strip_wallclock(d) for d in expected_decisions})
    by_id = lambda items: {a["alert_id"]: strip_wallclock(a) for a in items}  # noqa: E731
    assert by_id(reader.records[alerts]) == by_id(expected_alerts)
    assert len(reader.records[alerts]) == len(expected_alerts)

    # The changelog now holds every shard as an uninterrupted replay leaves it: each view
    # folded once, the models trained exactly as often.
    shards = await _changelog_shards(settings_b)
    assert [s.processed for s in shards] == [s.processed for s in engine.shards]
    assert [s.learned for s in shards] == [s.learned for s in engine.shards]
    log = (tmp_path / "b" / "worker.log").read_text(errors="replace")
    assert "restored from its changelog" in log
    assert (await _topic_config(settings_b, changelog_topic(settings_b)))["cleanup.policy"] \
        == "compact"


async def _topic_config(settings: Settings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}
