"""Which records one batch of the worker loop takes (``Pipeline._poll``), and how a
timer snapshot paces its slices (``Pipeline._slices``).

The consumer here hands out buffered records the way aiokafka's fetcher does: partition
by partition, in the order their fetches came back, up to ``max_records``. The loop
itself runs against a real broker in tests/integration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from monitor.config import Settings
from monitor.outputs.metrics import Metrics
from monitor.state.checkpoint import FileCheckpointStore
from streams.pipeline import checkpoint as checkpoint_module
from streams.pipeline.checkpoint import SLICE_REST
from streams.pipeline.loop import MAX_BATCH, ROUTED_BATCH, Pipeline
from streams.state.shards import ShardManager


class BufferedConsumer:
    """Records fetched and not yet handed out, per partition, in fetch order."""

    def __init__(self, buffered: dict[TopicPartition, list[int]]) -> None:
        self.buffered = buffered
        self.waited: list[float] = []

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        room = MAX_BATCH if max_records is None else max_records
        drained: dict[TopicPartition, list[Any]] = {}
        for tp in list(self.buffered):
            if (partitions and tp not in partitions) or room == 0:
                continue
            taken, self.buffered[tp] = self.buffered[tp][:room], self.buffered[tp][room:]
            if not self.buffered[tp]:
                del self.buffered[tp]
            drained[tp], room = taken, room - len(taken)
        if not drained:
            self.waited.append(timeout_ms)
        return drained


def pipeline(tmp_path: Path, buffered: dict[TopicPartition, list[int]],
             ) -> tuple[Pipeline, BufferedConsumer]:
    settings = Settings()
    line = Pipeline(settings, ShardManager(settings, FileCheckpointStore(tmp_path)),
                    Metrics())
    line.consumer = consumer = BufferedConsumer(buffered)
    line.rebalance.routed_partitions = [TopicPartition(line.routed, p) for p in range(2)]
    return line, consumer


async def test_routed_records_are_not_starved_by_an_input_backlog(tmp_path: Path) -> None:
    payments = [TopicPartition(Settings().kafka.topic("payments"), p) for p in range(2)]
    routed = TopicPartition(Settings().kafka.topic("routed"), 1)
    # Two input fetches of 3 * MAX_BATCH records came back before the routed one.
    line, consumer = pipeline(tmp_path, {payments[0]: list(range(3 * MAX_BATCH)),
                                         payments[1]: list(range(3 * MAX_BATCH)),
                                         routed: list(range(5))})
    assert routed.topic == line.routed
    batch = await line._poll()
    assert batch[routed] == list(range(5))  # all of it, ahead of the input backlog
    assert sum(map(len, batch.values())) == MAX_BATCH
    assert batch[payments[0]] == list(range(MAX_BATCH - 5))  # the rest, in fetch order
    assert consumer.waited == []  # records were there: no poll waited


async def test_routed_records_taken_first_are_bounded_per_batch(tmp_path: Path) -> None:
    payments = TopicPartition(Settings().kafka.topic("payments"), 0)
    routed = TopicPartition(Settings().kafka.topic("routed"), 0)
    line, _ = pipeline(tmp_path, {payments: list(range(10)),
                                  routed: list(range(ROUTED_BATCH + 10))})
    batch = await line._poll()
    # ROUTED_BATCH first, then what is left in fetch order: the input, then more routed.
    assert batch[payments] == list(range(10))
    assert batch[routed] == list(range(ROUTED_BATCH + 10))
    assert list(batch) == [routed, payments]


async def test_an_idle_poll_waits_for_records_once(tmp_path: Path) -> None:
    line, consumer = pipeline(tmp_path, {})
    assert await line._poll() == {}
    assert consumer.waited == [0, 100]  # the routed look is immediate, the poll waits


class SlicedSnapshot:
    """A begun snapshot whose every step takes 2 ms of the test's clock, done at the third."""

    shard_id = 0

    def __init__(self, clock: list[float]) -> None:
        self.clock, self.steps = clock, 0

    def step(self) -> bool:
        self.clock[0] += 0.002
        self.steps += 1
        return self.steps == 3

    def snapshot(self) -> str:
        return "snapshot"


@pytest.mark.parametrize("rest", [SLICE_REST, 0.0])
async def test_snapshot_slices_rest_in_proportion_to_their_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest: float) -> None:
    line, _ = pipeline(tmp_path, {})
    clock = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(checkpoint_module.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(checkpoint_module.asyncio, "sleep", sleep)
    begun = SlicedSnapshot(clock)
    snapshot, spent, longest = await line.checkpointer.slices(begun, rest)  # type: ignore[arg-type]
    assert snapshot == "snapshot" and begun.steps == 3
    assert spent == pytest.approx(0.006) and longest == pytest.approx(0.002)
    assert slept == pytest.approx([0.002 * rest] * 2)  # between slices, none after the last
