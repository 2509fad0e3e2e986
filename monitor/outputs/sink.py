"""The interface every alert sink shares: ``add()`` per record, ``flush()`` at a checkpoint.

A sink that cannot take a record raises :class:`~monitor.errors.SinkError`; its
``retryable`` and ``retry_after`` tell the caller whether and when to try again. Clients
a sink needs (an HTTP client, a file) are opened at start-up and closed at shutdown by
whoever owns the sink, never per record. The webhook outbox
(:class:`monitor.outputs.webhooks.outbox.Outbox`) delivers to any sink of this shape;
:class:`monitor.outputs.webhooks.sink.WebhookSink` is the one it has today.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    """Takes alert records one at a time."""

    name: str

    def wants(self, record: dict[str, Any]) -> bool:
        """Whether this sink takes ``record`` at all (its filters)."""

    async def add(self, record: dict[str, Any]) -> None:
        """Take one record, or raise ``SinkError``."""

    async def flush(self) -> None:
        """Make everything taken so far durable (a no-op for unbuffered sinks)."""
