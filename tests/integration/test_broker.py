"""The local Kafka broker from Maven jars starts, serves aiokafka and stops."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.devtools.broker import LocalBroker, free_port

TOPIC = "broker-smoke"


async def _roundtrip(bootstrap: str, payload: bytes) -> bytes:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
        assert TOPIC in await admin.list_topics()
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(TOPIC, payload, key=b"k")
        assert meta.offset == 0
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id="broker-smoke", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=60)
    finally:
        await consumer.stop()
    value: bytes = record.value
    return value


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
def test_local_broker_roundtrip_and_stop(tmp_path: Path) -> None:
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = LocalBroker(tmp_path / "kafka", port=port, controller_port=controller_port)

    broker.start(timeout=240)  # the first run may also download the jars
    pid = broker.pid
    try:
        assert pid is not None
        assert broker.is_running()
        assert broker.bootstrap == f"127.0.0.1:{port}"
        broker.start()  # already up: harmless
        assert broker.pid == pid

        assert asyncio.run(_roundtrip(broker.bootstrap, b"hello kafka")) == b"hello kafka"
    finally:
        stopped = broker.stop()

    assert stopped
    assert not broker.is_running()
    assert not _pid_exists(pid)
    assert not broker.pid_path.exists()
    assert not broker.answers(timeout=1)
