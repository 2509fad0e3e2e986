"""Input messages read back by offset (``streams.pipeline.lookup``), on the project's broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.pipeline.lookup import InputLookup
from streams.topics import ensure_topics
from tests.integration.harness import make_config

pytestmark = pytest.mark.integration


async def test_messages_are_read_back_at_their_offsets(tmp_path: Path, bootstrap: str) -> None:
    _, settings = make_config(tmp_path, bootstrap)
    await ensure_topics(settings)
    topic = settings.kafka.topic("payments")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for number in range(30):
            await producer.send_and_wait(topic, f"m-{number}".encode(), partition=number % 2)
    finally:
        await producer.stop()
    lookup = InputLookup(settings)
    try:
        # Partition 0 holds m-0, m-2, ... at offsets 0, 1, ...; offset 15 was never written.
        found = await lookup.values([(topic, 0, 3), (topic, 1, 0), (topic, 1, 14),
                                     (topic, 0, 0), (topic, 0, 15)])
        assert {place: value for place, (value, _) in found.items()} == {
            (topic, 0, 3): b"m-6", (topic, 1, 0): b"m-1", (topic, 1, 14): b"m-29",
            (topic, 0, 0): b"m-0"}
        # Each with the message's Kafka time: m-0 was sent first, m-29 last.
        assert 0 < found[(topic, 0, 0)][1] <= found[(topic, 0, 3)][1] <= found[(topic, 1, 14)][1]
        again = await lookup.values([(topic, 1, 7)])  # the consumer is reused
        assert [value for value, _ in again.values()] == [b"m-15"]
    finally:
        await lookup.stop()
