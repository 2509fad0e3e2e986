"""The outbox: retries, Retry-After, 410, dead letters, and which offsets may be committed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.errors import DeliveryFailed, ReceiverGone, SinkError, TargetRefused
from monitor.outputs.metrics import Metrics
from monitor.outputs.webhooks.outbox import Outbox
from monitor.outputs.webhooks.retry import Backoff


class ScriptedSink:
    """Answers each attempt from a script: an exception to raise, or None for success."""

    def __init__(self, name: str, script: Callable[[dict[str, Any], int], SinkError | None],
                 wants: Callable[[dict[str, Any]], bool] = lambda alert: True) -> None:
        self.name = name
        self.script = script
        self.filter = wants
        self.calls: list[tuple[str, float]] = []
        self.delivered: list[str] = []

    def wants(self, alert: dict[str, Any]) -> bool:
        return self.filter(alert)

    async def add(self, record: dict[str, Any]) -> None:
        attempt = sum(1 for alert_id, _ in self.calls if alert_id == record["alert_id"])
        self.calls.append((record["alert_id"], time.monotonic()))
        error = self.script(record, attempt)
        if error is not None:
            raise error
        self.delivered.append(record["alert_id"])

    async def flush(self) -> None:
        pass


def alert(n: int) -> dict[str, Any]:
    return {"alert_id": f"al_{n}", "pattern": "mule_account", "severity": "high"}


def server_error() -> DeliveryFailed:
    return DeliveryFailed("HTTP 500", result="server_error", retryable=True, status=500)


def make(sinks: list[ScriptedSink], max_attempts: int = 10,
         ) -> tuple[Outbox, Metrics, list[dict[str, Any]]]:
    metrics = Metrics(CollectorRegistry(), receivers=[s.name for s in sinks])
    dead: list[dict[str, Any]] = []

    async def dead_letter(record: dict[str, Any]) -> None:
        dead.append(record)

    backoff = Backoff(initial=0.01, cap=0.04, rng=random.Random(3))
    outbox = Outbox(sinks, dead_letter, metrics, backoff, max_attempts, concurrency=2)
    return outbox, metrics, dead


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def settled(outbox: Outbox, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while outbox.in_flight:
        assert time.monotonic() < deadline, "deliveries did not settle"
        await asyncio.sleep(0.01)  # polling the outbox


async def test_failures_are_retried_until_delivered_with_the_same_alert() -> None:
    flaky = ScriptedSink("r", lambda a, n: server_error() if n < 3 else None)
    outbox, metrics, dead = make([flaky])
    for offset in range(3):
        outbox.submit(0, offset, alert(offset))
    await settled(outbox)
    assert sorted(flaky.delivered) == ["al_0", "al_1", "al_2"]
    assert len(flaky.calls) == 12 and not dead
    assert sample(metrics, "fraudmon_webhook_attempts_total", receiver="r",
                  result="server_error") == 9
    assert sample(metrics, "fraudmon_webhook_deliveries_total", receiver="r",
                  result="delivered") == 3
    assert sample(metrics, "fraudmon_webhook_retries_pending", receiver="r") == 0
    assert outbox.committable() == {0: 3}


async def test_committable_stops_at_the_first_unsettled_offset() -> None:
    release = asyncio.Event()
    blocked = {"al_1"}

    def script(record: dict[str, Any], attempt: int) -> SinkError | None:
        if record["alert_id"] in blocked and not release.is_set():
            return server_error()
        return None

    sink = ScriptedSink("r", script)
    outbox, _, _ = make([sink], max_attempts=1000)
    for offset in range(4):
        outbox.submit(0, offset, alert(offset))
    outbox.skip(1, 10)
    outbox.submit(1, 11, alert(11))
    await asyncio.sleep(0.2)  # let the others deliver while al_1 keeps failing
    assert outbox.committable() == {0: 1, 1: 12}
    assert outbox.in_flight == 1
    release.set()
    await settled(outbox)
    assert outbox.committable() == {0: 4, 1: 12}


async def test_alerts_no_receiver_wants_are_settled_at_once() -> None:
    picky = ScriptedSink("r", lambda a, n: None, wants=lambda a: a["alert_id"] == "al_1")
    outbox, _, _ = make([picky])
    assert outbox.submit(0, 0, alert(0)) == 0
    assert outbox.submit(0, 1, alert(1)) == 1
    await settled(outbox)
    assert picky.delivered == ["al_1"] and outbox.committable() == {0: 2}


async def test_retry_after_holds_back_every_delivery_to_that_receiver() -> None:
    throttled = ScriptedSink("r", lambda a, n: DeliveryFailed(
        "429", result="rate_limited", retryable=True, retry_after=0.3, status=429)
        if a["alert_id"] == "al_0" and n == 0 else None)
    outbox, _, _ = make([throttled])
    outbox.submit(0, 0, alert(0))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    outbox.submit(0, 1, alert(1))  # arrives while the receiver asked for a pause
    await settled(outbox)
    times = dict(throttled.calls[1:])
    assert times["al_0"] - throttled.calls[0][1] >= 0.3 - 0.01
    assert times["al_1"] - started >= 0.2


async def test_exhausted_and_rejected_deliveries_are_dead_lettered() -> None:
    always = ScriptedSink("down", lambda a, n: server_error())
    rejecting = ScriptedSink("strict", lambda a, n: DeliveryFailed(
        "HTTP 400", result="client_error", status=400))
    refused = ScriptedSink("inside", lambda a, n: TargetRefused("10.0.0.1 is private"))
    outbox, metrics, dead = make([always, rejecting, refused], max_attempts=3)
    outbox.submit(2, 7, alert(7))
    await settled(outbox)
    assert len(always.calls) == 3 and len(rejecting.calls) == 1 and len(refused.calls) == 1
    reasons = {d["receiver"]: (d["reason"], d["attempts"], d["status"]) for d in dead}
    assert reasons == {"down": ("exhausted", 3, 500), "strict": ("rejected", 1, 400),
                       "inside": ("refused", 1, None)}
    assert all(d["alert"] == alert(7) and d["alert_id"] == "al_7" for d in dead)
    assert sample(metrics, "fraudmon_webhook_dead_letters_total", receiver="down",
                  reason="exhausted") == 1
    assert sample(metrics, "fraudmon_webhook_deliveries_total", receiver="strict",
                  result="dead_lettered") == 1
    assert outbox.committable() == {2: 8}


async def test_410_disables_the_receiver_and_dead_letters_its_alerts() -> None:
    gone = ScriptedSink("old", lambda a, n: ReceiverGone("410 Gone"))
    fine = ScriptedSink("new", lambda a, n: None)
    outbox, metrics, dead = make([gone, fine])
    outbox.submit(0, 0, alert(0))
    await settled(outbox)
    outbox.submit(0, 1, alert(1))
    await settled(outbox)
    assert len(gone.calls) == 1  # nothing is sent after the 410
    assert [(d["receiver"], d["reason"]) for d in dead] == [("old", "receiver_disabled")] * 2
    assert fine.delivered == ["al_0", "al_1"]
    assert sample(metrics, "fraudmon_webhook_receiver_enabled", receiver="old") == 0
    assert sample(metrics, "fraudmon_webhook_receiver_enabled", receiver="new") == 1


async def test_a_failing_dead_letter_write_is_retried_before_settling() -> None:
    rejecting = ScriptedSink("r", lambda a, n: DeliveryFailed("400", result="client_error"))
    metrics = Metrics(CollectorRegistry(), receivers=["r"])
    writes: list[dict[str, Any]] = []

    async def flaky_dead_letter(record: dict[str, Any]) -> None:
        writes.append(record)
        if len(writes) < 3:
            raise ConnectionError("broker away")

    outbox = Outbox([rejecting], flaky_dead_letter, metrics,
                    Backoff(initial=0.01, cap=0.02), max_attempts=3)
    outbox.submit(0, 0, alert(0))
    await asyncio.sleep(0)
    assert outbox.committable() == {0: 0}
    await settled(outbox)
    assert len(writes) == 3 and outbox.committable() == {0: 1}


async def test_revoke_and_close_cancel_deliveries_without_settling_them() -> None:
    stuck = ScriptedSink("r", lambda a, n: server_error())
    outbox, _, dead = make([stuck], max_attempts=1000)
    outbox.submit(0, 0, alert(0))
    outbox.submit(1, 0, alert(1))
    await asyncio.sleep(0.05)
    await outbox.revoke([0])
    assert outbox.committable() == {1: 0} and outbox.in_flight == 1
    await outbox.close()
    assert outbox.in_flight == 0 and not dead and not outbox.tasks
