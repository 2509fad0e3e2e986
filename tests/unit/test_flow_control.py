"""Ingest flow control in the worker loop (streams.pipeline): a unit test of one policy.

The consumer here is a recorder of pause/resume calls; the loop itself runs against a
real broker in tests/integration.
"""

from __future__ import annotations

from pathlib import Path

from aiokafka import TopicPartition

from monitor.alertstore import AlertStore
from monitor.checkpoint import FileCheckpointStore
from monitor.config import Settings
from monitor.metrics import Metrics
from streams.pipeline import INGEST_AHEAD, Pipeline
from streams.shards import ShardManager


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


def pipeline(tmp_path: Path) -> tuple[Pipeline, RecordingConsumer, set[TopicPartition]]:
    settings = Settings()
    line = Pipeline(settings, ShardManager(settings, FileCheckpointStore(tmp_path)),
                    Metrics(), AlertStore())
    inputs = {TopicPartition(settings.kafka.topic("payments"), p) for p in range(2)}
    routed = {TopicPartition(line.routed, p) for p in range(2)}
    consumer = RecordingConsumer(inputs | routed)
    line.consumer = consumer  # type: ignore[assignment]
    return line, consumer, inputs


def fill(line: Pipeline, count: int) -> None:
    line.decoded = dict.fromkeys((str(i).encode() for i in range(count)), None)  # type: ignore[arg-type]


def test_ingest_pauses_when_scoring_falls_behind_and_resumes_when_it_catches_up(
        tmp_path: Path) -> None:
    line, consumer, inputs = pipeline(tmp_path)
    fill(line, INGEST_AHEAD - 1)
    line._throttle()
    assert not consumer.paused
    fill(line, INGEST_AHEAD)
    line._throttle()
    assert consumer.paused == inputs  # routed partitions keep flowing
    fill(line, INGEST_AHEAD // 4 + 1)
    line._throttle()
    assert consumer.paused == inputs
    fill(line, INGEST_AHEAD // 4)
    line._throttle()
    assert not consumer.paused and not line.ingest_paused


def test_an_idle_poll_while_paused_resumes_ingest_and_forgets_the_cache(
        tmp_path: Path) -> None:
    line, consumer, _ = pipeline(tmp_path)
    fill(line, INGEST_AHEAD)
    line._throttle()
    assert consumer.paused
    line._resume_ingest(forget=True)  # what the loop does when a poll returns nothing
    assert not consumer.paused and not line.decoded


def test_a_new_assignment_starts_unpaused_with_an_empty_cache(tmp_path: Path) -> None:
    line, _, _ = pipeline(tmp_path)
    fill(line, INGEST_AHEAD)
    line._throttle()
    line.assign([TopicPartition(line.routed, 0)])
    assert not line.ingest_paused and not line.decoded
