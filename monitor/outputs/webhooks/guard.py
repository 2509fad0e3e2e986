"""Server-side request forgery guard: webhooks may not reach private or loopback addresses.

A receiver URL comes from configuration, but its host name resolves at delivery time,
and a name that resolves to ``10.0.0.5`` or ``169.254.169.254`` today may not have
yesterday. So the check runs where the connection is made: :class:`GuardedBackend` is
the HTTP client's network backend, resolves the host itself, refuses disallowed
addresses and connects to the vetted address (TLS still verifies the host name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from monitor.errors import TargetRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, private in practice
RESOLVE_TIMEOUT_SECONDS = 10.0


def classify(address: Address) -> str:
    """``public``, ``loopback``, ``private`` (incl. link-local, CGNAT, reserved) or ``never``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_multicast:
        return "never"
    if address.is_loopback:
        return "loopback"
    if address.is_private or address.is_link_local or address.is_reserved:
        return "private"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "private"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "private"
    return "public"


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which kinds of target address webhooks may connect to."""

    allow_private: bool = False
    allow_loopback: bool = False

    def allows(self, address: Address) -> bool:
        kind = classify(address)
        return (kind == "public" or (kind == "loopback" and self.allow_loopback)
                or (kind == "private" and self.allow_private))

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses, if every one is allowed; ``TargetRefused`` otherwise."""
        vetted = []
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not self.allows(address):
                raise TargetRefused(f"{host} resolves to {classify(address)} address "
                                    f"{address}, which webhooks may not reach")
            vetted.append(text)
        if not vetted:
            raise TargetRefused(f"{host} resolves to no address")
        return vetted

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and vet every address it has."""
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        unique = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return self.check(host, unique)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    # httpcore's interface passes timeouts as arguments, hence the ASYNC109 exemptions.
    async def connect_tcp(self, host: str, port: int,
                          timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.policy.resolve(host, port):
            try:
                return await self.inner.connect_tcp(address, port, timeout=timeout,
                                                    local_address=local_address,
                                                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # noqa: S101 - resolve() returns at least one address
        raise last

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("webhooks do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(policy: AddressPolicy) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through :class:`GuardedBackend`.

    httpx does not take a network backend as an argument, so it is set on the pool the
    transport builds (httpcore's ``AsyncConnectionPool``); a test pins this down.
    """
    transport = httpx.AsyncHTTPTransport(retries=0)
    pool: Any = transport._pool
    pool._network_backend = GuardedBackend(policy, pool._network_backend)
    return transport
