"""The SSRF guard: which addresses webhooks may reach, enforced where connections are made."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp import web

from monitor.config import WebhookSettings
from monitor.errors import TargetRefused
from monitor.outputs.webhooks.guard import (
    AddressPolicy,
    GuardedBackend,
    classify,
    guarded_transport,
)
from monitor.outputs.webhooks.sink import http_client
from tests.unit.webhook_server import serving


@pytest.mark.parametrize(("address", "kind"), [
    ("8.8.8.8", "public"), ("2001:4860:4860::8888", "public"),
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "private"), ("100.64.0.1", "private"), ("fd00::1", "private"),
    ("fe80::1", "private"), ("240.0.0.1", "private"), ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("224.0.0.1", "never"),
    ("0.0.0.0", "never"),  # noqa: S104 - an address under test, nothing binds
    ("::", "never"),
])
def test_classify(address: str, kind: str) -> None:
    assert classify(ipaddress.ip_address(address)) == kind


def test_policy_allows_what_the_configuration_says() -> None:
    strict, loopback = AddressPolicy(), AddressPolicy(allow_loopback=True)
    private = AddressPolicy(allow_private=True)
    assert strict.check("h", ["8.8.8.8"]) == ["8.8.8.8"]
    with pytest.raises(TargetRefused, match="loopback"):
        strict.check("localhost", ["127.0.0.1"])
    assert loopback.check("localhost", ["127.0.0.1", "::1"]) == ["127.0.0.1", "::1"]
    with pytest.raises(TargetRefused, match="private"):
        loopback.check("h", ["10.0.0.1"])
    assert private.check("h", ["10.0.0.1"]) == ["10.0.0.1"]
    with pytest.raises(TargetRefused, match="private"):
        # One bad address among good ones refuses the whole name (rebinding tricks).
        strict.check("h", ["8.8.8.8", "192.168.0.1"])
    with pytest.raises(TargetRefused):
        AddressPolicy(allow_private=True, allow_loopback=True).check(
            "h", ["0.0.0.0"])  # noqa: S104 - an address under test, nothing binds
    with pytest.raises(TargetRefused, match="no address"):
        strict.check("h", [])


def test_the_guard_is_the_transports_network_backend() -> None:
    transport = guarded_transport(AddressPolicy())
    backend = transport._pool._network_backend
    assert isinstance(backend, GuardedBackend)


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_loopback_targets_are_refused_at_connect_time_unless_allowed() -> None:
    async with serving(ok) as url:
        for host in ("127.0.0.1", "localhost"):
            target = url.replace("127.0.0.1", host)
            async with http_client(WebhookSettings()) as client:
                with pytest.raises(TargetRefused):
                    await client.post(target, content=b"{}")
            async with http_client(WebhookSettings(allow_loopback_targets=True)) as client:
                response = await client.post(target, content=b"{}")
                assert response.status_code == 200
