"""One webhook receiver as a sink: filter, sign and POST one alert per ``add()``.

Each call is one HTTP attempt with the shared client (explicit timeouts, redirects not
followed, connections vetted by the SSRF guard). Retrying is the outbox's job; the sink
only says how an attempt ended, as a :class:`~monitor.errors.SinkError`:

====================  ==============  ==========================================
answer                result          what happens next
====================  ==============  ==========================================
2xx                   ``ok``          delivered
410                   ``gone``        the receiver is disabled
429, 503              rate_limited /  retried after ``Retry-After`` (or backoff)
                      server_error
408, 425, other 5xx   ...             retried with backoff
network, timeout      ...             retried with backoff
3xx, other 4xx        redirect /      dead-lettered at once: trying again would
                      client_error    get the same answer
====================  ==============  ==========================================
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from monitor.config import ReceiverSettings, WebhookSettings
from monitor.contract.vocabulary import severity_rank
from monitor.errors import DeliveryFailed, ReceiverGone
from monitor.outputs.webhooks.guard import AddressPolicy, guarded_transport
from monitor.outputs.webhooks.retry import parse_retry_after
from monitor.outputs.webhooks.signing import signature_header

EVENT_TYPE = "alert.created"
USER_AGENT = "fraud-monitor-webhooks/1"
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_RESPONSE_BYTES = 65536
"""Response bodies are read (so the connection can be reused) up to this much, then dropped."""


def http_client(settings: WebhookSettings) -> httpx.AsyncClient:
    """The one HTTP client webhooks share: explicit timeouts, no redirects, no proxies
    from the environment, every connection through the SSRF guard."""
    policy = AddressPolicy(allow_private=settings.allow_private_targets,
                           allow_loopback=settings.allow_loopback_targets)
    timeout = httpx.Timeout(connect=settings.connect_timeout_seconds,
                            read=settings.read_timeout_seconds,
                            write=settings.read_timeout_seconds,
                            pool=settings.connect_timeout_seconds)
    return httpx.AsyncClient(transport=guarded_transport(policy), timeout=timeout,
                             follow_redirects=False, trust_env=False,
                             headers={"user-agent": USER_AGENT})


def payload(alert: dict[str, Any]) -> bytes:
    """The webhook body: a Standard Webhooks envelope around the alert, the same on every try."""
    return orjson.dumps({"type": EVENT_TYPE, "timestamp": alert.get("created_at"),
                         "data": alert})


class WebhookSink:
    """A configured receiver: which alerts it wants and how to send it one."""

    def __init__(self, receiver: ReceiverSettings, keys: list[bytes], client: httpx.AsyncClient,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = receiver.name
        self.url = receiver.url
        self.patterns = frozenset(receiver.patterns)
        self.min_rank = severity_rank(receiver.min_severity)
        self.keys = keys
        self.client = client
        self.clock = clock

    def wants(self, alert: dict[str, Any]) -> bool:
        """Whether the alert passes this receiver's pattern and severity filters."""
        if self.patterns and alert.get("pattern") not in self.patterns:
            return False
        return severity_rank(str(alert.get("severity"))) >= self.min_rank

    async def add(self, record: dict[str, Any]) -> None:
        """One signed POST of ``record``; raises ``SinkError`` unless the receiver took it."""
        body = payload(record)
        msg_id = str(record["alert_id"])
        timestamp = int(self.clock())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(self.keys, msg_id, timestamp, body),
        }
        try:
            async with self.client.stream("POST", self.url, content=body, headers=headers,
                                          follow_redirects=False) as response:
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("retry-after"),
                                                self.clock())
                await _drain(response)
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"{self.name}: timed out ({type(exc).__name__})",
                                 result="timeout", retryable=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryFailed(f"{self.name}: {type(exc).__name__}: {exc}",
                                 result="network_error", retryable=True) from exc
        _judge(self.name, status, retry_after)

    async def flush(self) -> None:
        """Nothing is buffered: each ``add()`` is a complete attempt."""


async def _drain(response: httpx.Response) -> None:
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > MAX_RESPONSE_BYTES:
            return


def _judge(name: str, status: int, retry_after: float | None) -> None:
    if 200 <= status < 300:
        return
    if status == 410:
        raise ReceiverGone(f"{name}: 410 Gone")
    message = f"{name}: HTTP {status}"
    if status == 429:
        raise DeliveryFailed(message, result="rate_limited", retryable=True,
                             retry_after=retry_after, status=status)
    if status >= 500:
        raise DeliveryFailed(message, result="server_error", retryable=True,
                             retry_after=retry_after if status == 503 else None, status=status)
    if 300 <= status < 400:
        raise DeliveryFailed(f"{message} (redirects are not followed)", result="redirect",
                             status=status)
    raise DeliveryFailed(message, result="client_error", retryable=status in RETRYABLE_STATUS,
                         status=status)
