"""Delivery isolation on the real broker: a dead receiver does not delay a live one, its
attempts are counted across a restart, and a receiver that answered 410 Gone stays
disabled after a restart until its configuration changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from monitor.outputs.webhooks.signing import generate_secret, parse_secrets
from monitor.tools.samplefile import write_sample
from streams.devtools.produce import produce_file
from tests.integration.harness import (
    TopicReader,
    Worker,
    free_port,
    input_topics,
    make_config,
    until,
    wait_caught_up,
)
from tests.integration.peers import FlakyReceiver

pytestmark = pytest.mark.integration

SECRET_ENV = "IT_WEBHOOK_SECRET"
MAX_ATTEMPTS = 8


def _webhooks(receivers: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"webhooks": {
        "allow_loopback_targets": True, "max_attempts": MAX_ATTEMPTS, "max_in_flight": 1,
        "backoff_initial_seconds": 2.0, "backoff_max_seconds": 4.0,
        "receivers": [{"name": name, "url": url, "secret_env": SECRET_ENV}
                      for name, url in receivers.items()], **extra}}


async def _produce(settings: Any, tmp_path: Path, lines: list[bytes]) -> None:
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"\n".join(lines) + b"\n")
    await produce_file(settings, part)


def _sample(tmp_path: Path) -> list[bytes]:
    events = tmp_path / "events.jsonl"
    write_sample(events)
    return events.read_bytes().splitlines()


async def test_a_dead_receiver_does_not_delay_a_live_one_and_its_attempts_survive_a_restart(
        tmp_path: Path, bootstrap: str) -> None:
    secret = generate_secret()
    keys = parse_secrets(secret)
    dead, live = FlakyReceiver(free_port(), keys), FlakyReceiver(free_port(), keys)
    await dead.up("failing")
    await live.up("ok")
    config, settings = make_config(tmp_path, bootstrap, sections=_webhooks({
        "dead": f"http://127.0.0.1:{dead.port}/", "live": f"http://127.0.0.1:{live.port}/"}))
    env = {SECRET_ENV: secret}
    log = tmp_path / "worker.log"
    lines = _sample(tmp_path)
    alerts = settings.kafka.topic("alerts")
    dead_letters = settings.kafka.topic("webhook_dead_letter")
    worker = Worker(config, settings, log, env=env).start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        async with TopicReader(bootstrap, [alerts, dead_letters]) as reader:
            # The first alerts fill the dead receiver's one in-flight slot ...
            await _produce(settings, tmp_path, lines[:260])
            await until(lambda: dead.seen("failing") >= 1, 60, "the dead receiver failing")
            # ... and every later alert still reaches the live receiver at once.
            await _produce(settings, tmp_path, lines[260:])
            await wait_caught_up(settings, input_topics(settings))
            await reader.drain()
            expected = {alert["alert_id"] for alert in reader.records[alerts]}
            assert len(expected) >= 5
            await until(lambda: {e["alert_id"] for e in live.log} >= expected, 30,
                        "every alert at the live receiver")
            await reader.poll()
            assert not reader.records[dead_letters], "the dead receiver's first alert " \
                "was exhausted before the live one got everything: the test proves nothing"
            metrics = worker.metrics()
            assert metrics['fraudmon_webhook_alerts_in_flight{receiver="dead"}'] >= 1
            assert metrics['fraudmon_webhook_alerts_in_flight{receiver="live"}'] == 0

            # A restart mid-retry: the attempts made so far still count.
            await until(lambda: max(dead.calls(a) for a in expected) >= 2, 60,
                        "a second attempt at the dead receiver")
            assert await asyncio.to_thread(worker.stop) == 0
            before = {alert_id: dead.calls(alert_id) for alert_id in expected}
            retried = max(before, key=lambda alert_id: before[alert_id])
            worker = Worker(config, settings, log, env=env).start()
            await asyncio.to_thread(worker.wait_ready)
            await reader.until(lambda: any(r["alert_id"] == retried
                                           for r in reader.records[dead_letters]),
                               90, f"alert {retried} exhausted")
    finally:
        await asyncio.to_thread(worker.stop)
        await dead.close()
        await live.close()

    letter = next(r for r in reader.records[dead_letters] if r["alert_id"] == retried)
    assert (letter["receiver"], letter["reason"]) == ("dead", "exhausted")
    assert before[retried] >= 2
    assert letter["attempts"] == MAX_ATTEMPTS == dead.calls(retried)
    assert all(entry["mode"] != "rejected" for entry in live.log)


async def test_a_gone_receiver_stays_disabled_across_restarts_until_its_config_changes(
        tmp_path: Path, bootstrap: str) -> None:
    secret = generate_secret()
    gone = FlakyReceiver(free_port(), parse_secrets(secret))
    await gone.up("gone")
    url = f"http://127.0.0.1:{gone.port}/"
    config, settings = make_config(tmp_path, bootstrap, sections=_webhooks({"gone": url}))
    env = {SECRET_ENV: secret}
    log = tmp_path / "worker.log"
    lines = _sample(tmp_path)
    alerts = settings.kafka.topic("alerts")
    dead_letters = settings.kafka.topic("webhook_dead_letter")
    enabled = 'fraudmon_webhook_receiver_enabled{receiver="gone"}'
    worker = Worker(config, settings, log, env=env).start()
    try:
        async with TopicReader(bootstrap, [alerts, dead_letters]) as reader:
            await asyncio.to_thread(worker.wait_ready)
            await _produce(settings, tmp_path, lines[:260])
            # How many alerts the first part raises live depends on how the broker
            # interleaves the topics (one or two): wait for all of them, however many.
            await wait_caught_up(settings, input_topics(settings))
            await reader.drain()
            assert reader.records[alerts], "the first part of the sample raised no alert"
            await reader.until(lambda: len(reader.records[dead_letters])
                               >= len(reader.records[alerts]), 60, "their dead letters")
            answered = gone.seen("gone")
            assert 1 <= answered <= 2  # a 410 (two if both were in flight), then no more
            assert worker.metrics()[enabled] == 0
            assert await asyncio.to_thread(worker.stop) == 0

            # Restarted with the same configuration: still disabled, nothing is sent.
            worker = Worker(config, settings, log, env=env).start()
            await asyncio.to_thread(worker.wait_ready)
            await _produce(settings, tmp_path, lines[260:560])
            await wait_caught_up(settings, input_topics(settings))
            await reader.drain()
            await reader.until(lambda: len(reader.records[dead_letters])
                               >= len(reader.records[alerts]), 60, "every alert dead-lettered")
            assert gone.seen("gone") == answered
            assert worker.metrics()[enabled] == 0
            assert {r["reason"] for r in reader.records[dead_letters]} == {"receiver_disabled"}
            assert await asyncio.to_thread(worker.stop) == 0

            # A new URL is a new configuration: the receiver is sent to again.
            gone.mode = "ok"
            moved = tmp_path / "moved.yaml"
            moved.write_text(config.read_text().replace(url, url + "v2"))
            worker = Worker(moved, settings, log, env=env).start()
            await asyncio.to_thread(worker.wait_ready)
            assert worker.metrics()[enabled] == 1
            await _produce(settings, tmp_path, lines[560:])
            await wait_caught_up(settings, input_topics(settings))
            await reader.drain()
            newest = reader.records[alerts][-1]["alert_id"]
            await until(lambda: any(e["alert_id"] == newest and e["path"] == "/v2"
                                    for e in gone.log), 30, "the newest alert delivered")
    finally:
        await asyncio.to_thread(worker.stop)
        await gone.close()
