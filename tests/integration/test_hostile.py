"""The hostile-input corpus against a live worker on a real broker: every case is a dead
letter with its reason, a 2 MB binary and a 1 MB control-character message too, and the
worker keeps deciding."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from monitor.contract.events import PAYMENTS
from streams.topics import ensure_topics
from tests.hostile import ANCHORS, cases, payment
from tests.integration.harness import (
    TopicReader,
    Worker,
    input_topics,
    make_config,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

KEY = b"hostile"
"""One key for every message: one partition per topic, so they arrive in order."""


async def test_the_corpus_and_huge_messages_are_dead_lettered_and_the_worker_goes_on(
        tmp_path: Path, bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap)
    await ensure_topics(settings)
    corpus = cases()
    huge = [(PAYMENTS, bytes(range(256)) * 7813, "bytes"),          # 2,000,128 bytes, binary
            (PAYMENTS, b"\x01" * 1_000_000, "bytes")]                # 1 MB of controls
    decisions, dead = settings.kafka.topic("decisions"), settings.kafka.topic("dead_letter")
    worker = Worker(config, settings, tmp_path / "worker.log").start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 << 20)
    await producer.start()
    sent: dict[tuple[str, int, int], str] = {}
    try:
        await asyncio.to_thread(worker.wait_ready)

        async def send(kind: str, value: bytes) -> tuple[str, int, int]:
            meta = await producer.send_and_wait(settings.kafka.topic(kind), value, key=KEY)
            return meta.topic, meta.partition, meta.offset

        async with TopicReader(bootstrap, [decisions, dead]) as reader:
            for kind, value in ANCHORS:
                await send(kind, value)
            await reader.until(lambda: len(reader.records[decisions]) >= len(ANCHORS), 120,
                               "the anchors' decisions")
            for case in corpus:
                sent[await send(case.kind, case.payload)] = case.reason
            for kind, value, reason in huge:
                sent[await send(kind, value)] = reason
            await send(PAYMENTS, orjson.dumps(payment(event_id="after-the-corpus",
                                                      payer="trailer-payer")))
            await reader.until(lambda: any(d["event_id"] == "after-the-corpus"
                                           for d in reader.records[decisions])
                               and len(reader.records[dead]) >= len(sent), 120, "outputs")
            await wait_caught_up(settings, input_topics(settings))
            await reader.drain()
        metrics = worker.metrics()
        assert worker.ready()  # still up, still ready
        assert worker.stop() == 0
    finally:
        await producer.stop()
        worker.stop()
    letters: dict[tuple[str, int, int], dict[str, Any]] = {
        (d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d
        for d in reader.records[dead]}
    assert set(letters) == set(sent)
    wrong = [(letters[place]["reason"], reason) for place, reason in sent.items()
             if reason not in letters[place]["reason"]]
    assert not wrong
    assert sorted(d["event_id"] for d in reader.records[decisions]) == [
        "after-the-corpus", "anchor-1", "anchor-2"]
    for place in list(sent)[-2:]:  # the huge ones: a prefix, the full size, the digest
        letter = letters[place]
        assert letter["original_truncated"] and letter["original_bytes"] >= 1_000_000
        assert len(orjson.dumps(letter)) < 64 * 1024
    consumed = 'fraudmon_events_consumed_total{outcome="dead_letter",topic="%s"}'
    assert sum(metrics.get(consumed % kind, 0)
               for kind in ("payments", "loan-disbursals", "labels")) == len(sent)
    assert metrics.get("fraudmon_dead_letter_write_failures_total", 0) == 0
