"""Signed webhooks end to end on the real broker: delivery to ``fraudmon webhook-receiver``
(which verifies and rejects forgeries), and delivery through a receiver outage and a
worker restart with nothing lost and scoring never paused."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.outputs.webhooks.signing import (
    generate_secret,
    parse_secret,
    parse_secrets,
    sign,
)
from monitor.tools.samplefile import write_sample
from streams.devtools.produce import produce_file
from tests.integration.harness import (
    TopicReader,
    Worker,
    free_port,
    input_topics,
    make_config,
    sample_alerts,
    until,
    wait_caught_up,
)
from tests.integration.peers import FlakyReceiver, WebhookReceiver, http_json

pytestmark = pytest.mark.integration


def _webhooks(url: str, secret_env: str, **extra: Any) -> dict[str, Any]:
    return {"webhooks": {"allow_loopback_targets": True, "backoff_initial_seconds": 0.2,
                         "backoff_max_seconds": 1.0, "max_attempts": 100,
                         "max_retry_after_seconds": 5,
                         "receivers": [{"name": "it", "url": url, "secret_env": secret_env}],
                         **extra}}


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


async def test_alerts_reach_the_receiver_signed_and_it_rejects_forgeries(
        tmp_path: Path, bootstrap: str) -> None:
    old, new = generate_secret(), generate_secret()
    # Mid-rotation: the worker signs with both secrets, the receiver knows only the new one.
    receiver = WebhookReceiver(tmp_path, new).ready()
    config, settings = make_config(tmp_path, bootstrap,
                                   sections=_webhooks(receiver.url + "/", "IT_WEBHOOK_SECRET"))
    worker = Worker(config, settings, tmp_path / "worker.log",
                    env={"IT_WEBHOOK_SECRET": f"{old} {new}"})
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        expected = await sample_alerts(settings, tmp_path / "events.jsonl")
        await until(lambda: {r["webhook_id"] for r in receiver.records("webhook")}
                     >= set(expected), 60, "every alert at the receiver")
    finally:
        worker.stop()
    received = receiver.records("webhook")
    assert len(received) == len(expected)  # repeats were dropped by webhook-id
    for record in received:
        payload = record["payload"]
        assert payload["type"] == "alert.created"
        assert payload["data"] == expected[record["webhook_id"]]
    assert receiver.counts()["rejected"] == 0

    # Forgeries against the running receiver: a signature that verifies is accepted once,
    # then the same message with a changed body, or signed with a stale timestamp, is not.
    key = parse_secret(new)
    body = orjson.dumps({"type": "alert.created", "data": {"alert_id": "al_forged"}})
    now = int(time.time())

    def post(msg_id: str, stamp: int, content: bytes, signature: str) -> tuple[int, Any]:
        return http_json(receiver.url + "/", content, {
            "webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": signature, "content-type": "application/json"})

    genuine = sign(key, "msg_genuine", now, body)
    assert post("msg_genuine", now, body, genuine)[0] == 200
    assert post("msg_genuine", now, body, genuine) == (200, {"duplicate": True})
    tampered = body.replace(b"al_forged", b"al_f0rged")
    assert post("msg_tampered", now, tampered, sign(key, "msg_tampered", now, body))[0] == 401
    stale = now - 3600
    assert post("msg_stale", stale, body, sign(key, "msg_stale", stale, body))[0] == 401
    forged_key = base64.b64decode(generate_secret()[len("whsec_"):])
    assert post("msg_other", now, body, sign(forged_key, "msg_other", now, body))[0] == 401
    assert receiver.counts()["rejected"] == 3
    receiver.stop()


async def test_a_receiver_outage_loses_nothing_and_never_pauses_scoring(
        tmp_path: Path, bootstrap: str) -> None:
    secret = generate_secret()
    flaky = FlakyReceiver(free_port(), parse_secrets(secret))
    config, settings = make_config(
        tmp_path, bootstrap,
        sections=_webhooks(f"http://127.0.0.1:{flaky.port}/", "IT_WEBHOOK_SECRET"))
    env = {"IT_WEBHOOK_SECRET": secret}
    log = tmp_path / "worker.log"
    events = tmp_path / "events.jsonl"
    write_sample(events)
    lines = _lines(events)
    chunks = [lines[:260], lines[260:410], lines[410:560], lines[560:]]
    decisions, alerts = settings.kafka.topic("decisions"), settings.kafka.topic("alerts")
    worker = Worker(config, settings, log, env=env).start()
    produced = 0
    emitted_during_outage = 0
    try:
        await asyncio.to_thread(worker.wait_ready)
        async with TopicReader(bootstrap, [decisions, alerts]) as reader:

            async def feed(chunk: list[bytes]) -> None:
                nonlocal produced
                part = tmp_path / "part.jsonl"
                part.write_bytes(b"\n".join(chunk) + b"\n")
                await produce_file(settings, part)
                produced += len(chunk)
                # Scoring keeps up while deliveries fail: every event gets its decision.
                await reader.until(lambda: len(reader.records[decisions]) >= produced, 60,
                                   f"{produced} decisions")

            # 1. Connection refused: nothing listens on the receiver's port.
            await feed(chunks[0])
            await until(lambda: worker.metrics().get(
                'fraudmon_webhook_attempts_total{receiver="it",result="network_error"}', 0) > 0,
                30, "a refused connection")
            # 2. The receiver answers 500; meanwhile the worker restarts (SIGTERM): pending
            #    deliveries are not committed, so the new worker sends them again.
            await flaky.up("failing")
            await feed(chunks[1])
            await until(lambda: flaky.seen("failing") >= 2, 30, "500 answers")
            # Stopped from a thread: the receiver runs on this event loop, and a delivery in
            # flight at SIGTERM needs its answer before the worker can exit.
            assert await asyncio.to_thread(worker.stop) == 0
            worker = Worker(config, settings, log, env=env).start()
            await asyncio.to_thread(worker.wait_ready)
            await until(lambda: flaky.seen("failing") >= 4, 30, "500s after the restart")
            # 3. 429 with Retry-After.
            flaky.mode = "throttling"
            await feed(chunks[2])
            await until(lambda: flaky.seen("throttling") >= 2, 30, "429 answers")
            emitted_during_outage = len(reader.records[alerts])
            # 4. Recovery.
            flaky.mode = "ok"
            await feed(chunks[3])
            await wait_caught_up(settings, input_topics(settings))
            await reader.drain()
            expected = {alert["alert_id"] for alert in reader.records[alerts]}
            await until(lambda: {e["alert_id"] for e in flaky.log if e["mode"] == "ok"}
                         >= expected, 60, "every alert delivered")
            assert await asyncio.to_thread(worker.stop) == 0
    finally:
        await asyncio.to_thread(worker.stop)
        await flaky.close()

    assert emitted_during_outage >= 3, "alerts must keep coming while the receiver is down"
    assert flaky.seen("rejected") == 0
    by_alert: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in flaky.log:
        assert entry["webhook_id"] == entry["alert_id"]  # the same id on every attempt
        by_alert[entry["alert_id"]].append(entry)
    assert set(by_alert) == expected
    assert any(len(attempts) >= 3 for attempts in by_alert.values())
    # Retry-After is honoured: after a 429 the next attempt waits at least that long.
    for attempts in by_alert.values():
        for first, second in itertools.pairwise(attempts):
            if first["mode"] == "throttling":
                assert second["at"] - first["at"] >= flaky.retry_after - 0.05
