"""Ingest flow control in the worker loop (streams.pipeline.loop): a unit test of one policy.

The consumer here is a recorder of pause/resume calls; the loop itself runs against a
real broker in tests/integration.
"""

from __future__ import annotations

from pathlib import Path

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from monitor.config import Settings
from monitor.outputs.metrics import Metrics
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import Shard
from streams.pipeline.flow import FOLDED_AHEAD, INGEST_AHEAD
from streams.pipeline.loop import Pipeline
from streams.state.shards import ShardManager


class RecordingConsumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    # What _catch_up asks: the last known end of each partition, and the read position.
    ends: dict[TopicPartition, int]
    positions: dict[TopicPartition, int]

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


def pipeline(tmp_path: Path) -> tuple[Pipeline, RecordingConsumer, set[TopicPartition]]:
    settings = Settings()
    line = Pipeline(settings, ShardManager(settings, FileCheckpointStore(tmp_path)),
                    Metrics())
    inputs = {TopicPartition(settings.kafka.topic("payments"), p) for p in range(2)}
    routed = {TopicPartition(line.routed, p) for p in range(2)}
    consumer = RecordingConsumer(inputs | routed)
    line.consumer = consumer  # type: ignore[assignment]
    line.caught_up = True  # see the catch-up tests below
    return line, consumer, inputs


def fill(line: Pipeline, count: int) -> None:
    """``count`` views waiting to be scored when read back, in groups of up to three."""
    groups = {str(i).encode(): [None] * 3 for i in range(count // 3)}
    if count % 3:
        groups[b"rest"] = [None] * (count % 3)
    line.readback.decoded = groups  # type: ignore[assignment]


def test_ingest_pauses_when_scoring_falls_behind_and_resumes_when_it_catches_up(
        tmp_path: Path) -> None:
    line, consumer, inputs = pipeline(tmp_path)
    fill(line, INGEST_AHEAD - 1)
    line.flow.throttle()
    assert not consumer.paused
    fill(line, INGEST_AHEAD)
    line.flow.throttle()
    assert consumer.paused == inputs  # routed partitions keep flowing
    fill(line, INGEST_AHEAD // 4 + 1)
    line.flow.throttle()
    assert consumer.paused == inputs
    fill(line, INGEST_AHEAD // 4)
    line.flow.throttle()
    assert not consumer.paused and not line.flow.paused


def test_views_folded_here_pause_ingest_at_a_bound_of_their_own_per_shard(
        tmp_path: Path) -> None:
    # Scored already, they only wait for the round trip through the broker.
    line, consumer, inputs = pipeline(tmp_path)
    assert line.flow.folded_limit == FOLDED_AHEAD > INGEST_AHEAD
    line.readback.folded_views = {0: INGEST_AHEAD, 1: INGEST_AHEAD}
    line.flow.throttle()
    assert not consumer.paused
    line.readback.folded_views = {0: 1, 1: FOLDED_AHEAD}
    line.flow.throttle()
    assert consumer.paused == inputs
    line.readback.folded_views = {0: 1, 1: FOLDED_AHEAD // 4 + 1}
    line.flow.throttle()
    assert consumer.paused == inputs
    line.readback.folded_views = {0: FOLDED_AHEAD // 4, 1: FOLDED_AHEAD // 4}
    line.flow.throttle()
    assert not consumer.paused


def test_views_in_flight_stay_within_a_quarter_of_the_dedup_window(tmp_path: Path) -> None:
    # Read back after the cache forgot them, they are dropped only by the window.
    settings = Settings(processing={"dedup_window": 4_000})
    line = Pipeline(settings, ShardManager(settings, FileCheckpointStore(tmp_path)),
                    Metrics())
    assert line.flow.folded_limit == 1_000


def test_an_idle_poll_while_paused_resumes_ingest_and_forgets_the_cache(
        tmp_path: Path) -> None:
    line, consumer, _ = pipeline(tmp_path)
    fill(line, INGEST_AHEAD)
    line.flow.throttle()
    assert consumer.paused
    line.flow.resume(forget=True)  # what the loop does when a poll returns nothing
    assert not consumer.paused and not line.readback.decoded


def test_a_new_assignment_starts_unpaused_with_an_empty_cache(tmp_path: Path) -> None:
    line, _, _ = pipeline(tmp_path)
    fill(line, INGEST_AHEAD)
    line.flow.throttle()
    line.assign([TopicPartition(line.routed, 0)])
    assert not line.flow.paused and not line.readback.decoded


async def test_after_an_assignment_ingest_waits_until_the_routed_log_is_read_to_its_end(
        tmp_path: Path) -> None:
    # Folding views here must not overtake envelopes already in an owned shard's log.
    line, consumer, inputs = pipeline(tmp_path)
    shard = TopicPartition(line.routed, 0)
    line.assign([shard, *inputs])
    line.manager.shards[0] = Shard(0, line.settings)  # restored
    assert consumer.paused == inputs and not line.caught_up
    consumer.ends, consumer.positions = {}, {shard: 0}
    await line._catch_up()
    assert not line.caught_up  # no fetch yet: the end is unknown
    consumer.ends = {shard: 40}
    consumer.positions = {shard: 25}
    await line._catch_up()
    assert not line.caught_up and consumer.paused == inputs
    consumer.positions = {shard: 40}
    line.readback.decoded = {b"an onward view on its way back": []}
    await line._catch_up()
    assert not line.caught_up  # it must be read back first
    line.readback.decoded = {}
    await line._catch_up()
    assert line.caught_up and not consumer.paused


async def test_without_a_dedup_window_nothing_is_folded_here_and_nothing_waits(
        tmp_path: Path) -> None:
    line, consumer, inputs = pipeline(tmp_path)
    line.fold_here = False
    line.assign([TopicPartition(line.routed, 0), *inputs])
    await line._catch_up()
    assert line.caught_up and not consumer.paused


def test_drift_is_counted_once_per_detection_not_for_what_a_restored_shard_held(
        tmp_path: Path) -> None:
    line, _, _ = pipeline(tmp_path)
    registry = CollectorRegistry()
    line.metrics = Metrics(registry, families=["account"])
    line.owned = {0}
    shard = line.manager.shards[0] = Shard(0, line.settings)
    shard.drift_detections["account"] = 3  # restored with three detections of the past
    line.drift_reported[0] = dict(shard.drift_detections)  # what _restore records
    line._report_drift()
    shard.drift_detections["account"] = 5
    line._report_drift()
    line._report_drift()
    assert registry.get_sample_value("fraudmon_drift_detections_total",
                                     {"family": "account"}) == 2
