"""monitor.routing.partitioner must shard exactly as Kafka's default partitioner (via aiokafka)."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.routing.partitioner import murmur2, partition_for

FUZZ = settings(max_examples=200, deadline=None, database=None)

# Signed results of org.apache.kafka.common.utils.Utils.murmur2, from Kafka's UtilsTest.
KAFKA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


def aiokafka_partition(key: str, partitions: int) -> int:
    everything = list(range(partitions))
    return int(DefaultPartitioner()(key.encode("utf-8"), everything, everything))


@pytest.mark.parametrize(("key", "signed"), sorted(KAFKA_MURMUR2.items()))
def test_murmur2_matches_kafka_reference_values(key: str, signed: int) -> None:
    expected = signed & 0xFFFFFFFF
    assert aiokafka_murmur2(key.encode()) == expected  # the oracle agrees with Kafka
    assert murmur2(key.encode()) == expected


@pytest.mark.parametrize(("key", "partitions"), [
    ("acct-person-001", 4), ("borrower:borrower-0042", 4), ("account:mule-7731", 4),
    ("account:acct-smurf-01", 12), ("", 3), ("\u6768\u4f1f", 7),
])
def test_partition_matches_aiokafka_for_known_keys(key: str, partitions: int) -> None:
    assert partition_for(key, partitions) == aiokafka_partition(key, partitions)


def test_partition_of_a_kafka_reference_key() -> None:
    # toPositive(-973932308) % 10 == 1173551340 % 10
    assert partition_for("21", 10) == 0
    assert partition_for("abc", 10) == 479470107 % 10


@FUZZ
@given(data=st.binary(max_size=64))
def test_murmur2_agrees_with_aiokafka_on_bytes(data: bytes) -> None:
    value = murmur2(data)
    assert value == aiokafka_murmur2(data)
    assert 0 <= value <= 0xFFFFFFFF


@FUZZ
@given(key=st.text(max_size=64), partitions=st.integers(min_value=1, max_value=1024))
def test_partition_agrees_with_default_partitioner(key: str, partitions: int) -> None:
    partition = partition_for(key, partitions)
    assert partition == aiokafka_partition(key, partitions)
    assert 0 <= partition < partitions


def test_keys_spread_over_every_partition() -> None:
    hit = {partition_for(f"account:acct-{i:05d}", 8) for i in range(400)}
    assert hit == set(range(8))


def test_worker_outputs_pick_the_partition_aiokafka_would() -> None:
    # streams.pipeline.outputs partitions keyed records itself (compiled murmur2); consumers keyed
    # on Kafka's choice must see the same partition as with aiokafka's own partitioner.
    from aiokafka.partitioner import DefaultPartitioner

    from streams.pipeline.outputs import Outputs

    outputs = Outputs(producer=None)  # type: ignore[arg-type]
    outputs.partitions["t"] = [0, 1, 2, 3, 4, 5]
    chosen: list[int] = []
    outputs.batches = _Recorder(chosen)  # type: ignore[assignment]
    keys = [f"sim7-{n:08d}".encode() for n in range(500)] + [b"", b"a", "账户".encode()]
    for key in keys:
        outputs.add("t", key, b"v")
    every = outputs.partitions["t"]
    assert chosen == [DefaultPartitioner()(key, every, every) for key in keys]


class _Recorder(dict):  # type: ignore[type-arg]
    """Stands in for the builders: records the partition of each record added."""

    def __init__(self, chosen: list[int]) -> None:
        super().__init__()
        self.chosen = chosen

    def get(self, topic_partition: tuple[str, int], default: object = None) -> object:
        self.chosen.append(topic_partition[1])
        return [_Builder()]


class _Builder:
    def append(self, **_: object) -> object:
        return object()
