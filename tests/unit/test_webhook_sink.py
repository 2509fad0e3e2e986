"""One webhook attempt against a real local server: headers, signature, filters and how
each kind of answer is classified."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiohttp import web

from monitor.config import ReceiverSettings, WebhookSettings
from monitor.errors import DeliveryFailed, ReceiverGone, SinkError
from monitor.outputs.webhooks.signing import generate_secret, parse_secret, verify
from monitor.outputs.webhooks.sink import WebhookSink, http_client, payload
from tests.unit.webhook_server import free_port, serving

SECRET = generate_secret()
ALERT = {"alert_id": "al_1", "pattern": "mule_account", "severity": "medium",
         "entity": "a-1", "entity_type": "account", "ts": "2026-01-05T09:30:00+08:00",
         "created_at": "2026-11-28T00:00:00.000Z"}


def sink(url: str, client: object, **receiver: object) -> WebhookSink:
    settings = ReceiverSettings(name="r", url=url, secret_env="X", **receiver)  # type: ignore[arg-type]
    return WebhookSink(settings, [parse_secret(SECRET)], client)  # type: ignore[arg-type]


def client(read_timeout: float = 2.0) -> object:
    return http_client(WebhookSettings(allow_loopback_targets=True,
                                       read_timeout_seconds=read_timeout))


def test_filters_by_pattern_and_minimum_severity() -> None:
    every = sink("http://h/", None)
    picky = sink("http://h/", None, patterns=("rollover_loan",), min_severity="high")
    assert every.wants(ALERT)
    assert not picky.wants(ALERT)
    assert not picky.wants({**ALERT, "pattern": "rollover_loan"})
    assert picky.wants({**ALERT, "pattern": "rollover_loan", "severity": "high"})
    assert not sink("http://h/", None, min_severity="low").wants({**ALERT, "severity": "odd"})


async def test_a_delivery_is_signed_over_the_exact_body() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async with serving(handler) as url, client() as http:
        await sink(url + "/", http).add(ALERT)
        await sink(url + "/", http).add(ALERT)
    (first, body), (second, _) = seen
    assert body == payload(ALERT)
    assert orjson.loads(body) == {"type": "alert.created", "timestamp": ALERT["created_at"],
                                  "data": ALERT}
    assert first["webhook-id"] == second["webhook-id"] == "al_1"
    assert first["Content-Type"] == "application/json"
    lowered = {k.lower(): v for k, v in first.items()}
    verify([parse_secret(SECRET)], lowered, body, now=time.time())


@pytest.mark.parametrize(("status", "headers", "result", "retryable", "retry_after"), [
    (500, {}, "server_error", True, None),
    (503, {"Retry-After": "7"}, "server_error", True, 7.0),
    (502, {"Retry-After": "7"}, "server_error", True, None),
    (429, {"Retry-After": "3"}, "rate_limited", True, 3.0),
    (429, {}, "rate_limited", True, None),
    (408, {}, "client_error", True, None),
    (400, {}, "client_error", False, None),
    (401, {}, "client_error", False, None),
    (302, {"Location": "http://127.0.0.1:1/"}, "redirect", False, None),
])
async def test_failed_answers_are_classified(status: int, headers: dict[str, str], result: str,
                                            retryable: bool, retry_after: float | None) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers, text="no")

    async with serving(handler) as url, client() as http:
        with pytest.raises(DeliveryFailed) as caught:
            await sink(url + "/", http).add(ALERT)
    assert (caught.value.result, caught.value.retryable) == (result, retryable)
    assert caught.value.retry_after == retry_after
    assert caught.value.status == status


async def test_410_means_gone() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=410)

    async with serving(handler) as url, client() as http:
        with pytest.raises(ReceiverGone):
            await sink(url + "/", http).add(ALERT)


async def test_refused_connections_and_slow_answers_are_retryable() -> None:
    async with client() as http:
        with pytest.raises(SinkError) as refused:
            await sink(f"http://127.0.0.1:{free_port()}/", http).add(ALERT)
    assert (refused.value.result, refused.value.retryable) == ("network_error", True)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.6)
        return web.Response()

    async with serving(slow) as url, client(read_timeout=0.2) as http:
        started = time.monotonic()
        with pytest.raises(SinkError) as timed_out:
            await sink(url + "/", http).add(ALERT)
        waited = time.monotonic() - started
    assert (timed_out.value.result, timed_out.value.retryable) == ("timeout", True)
    assert waited < 1.5
