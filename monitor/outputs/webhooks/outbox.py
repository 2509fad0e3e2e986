"""The webhook outbox: deliveries of a stream of alerts, with retries and dead letters.

The outbox is fed alerts with their position in the alerts topic. Each alert goes to
every receiver that wants it, each delivery in a task of its own, so a slow or dead
receiver holds up only its own deliveries. ``committable()`` tells the consumer how far
each partition is settled (every delivery of every alert before that offset has been
delivered or dead-lettered); committing no further than that means a restart resumes
at the first unsettled alert and loses nothing. Repeats after a restart carry the same
``webhook-id`` (the alert id), so receivers drop them.

A receiver's ``Retry-After`` holds back all its deliveries, not just the one that got
it; 410 Gone disables the receiver (its deliveries are dead-lettered from then on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from monitor.contract.records import now_text
from monitor.errors import ReceiverGone, SinkError
from monitor.outputs.metrics import Metrics
from monitor.outputs.sink import Sink
from monitor.outputs.webhooks.retry import Backoff

logger = logging.getLogger(__name__)

DeadLetter = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class _Route:
    """A receiver and its delivery state in this process."""

    sink: Sink
    slots: asyncio.Semaphore
    not_before: float = 0.0
    disabled: bool = False


@dataclass(slots=True)
class _Partition:
    pending: dict[int, int] = field(default_factory=dict)  # offset -> deliveries left
    next_offset: int = 0  # one past the last offset submitted


class Outbox:
    """Runs deliveries; reports which alert offsets are settled."""

    def __init__(self, sinks: Iterable[Sink], dead_letter: DeadLetter, metrics: Metrics,
                 backoff: Backoff, max_attempts: int, concurrency: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.routes = [_Route(sink, asyncio.Semaphore(concurrency)) for sink in sinks]
        self.dead_letter = dead_letter
        self.metrics = metrics
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.clock = clock
        self.partitions: dict[int, _Partition] = {}
        self.tasks: dict[int, set[asyncio.Task[None]]] = {}
        self.in_flight = 0

    def submit(self, partition: int, offset: int, alert: dict[str, Any]) -> int:
        """Start the deliveries of one alert; returns how many receivers want it."""
        state = self.partitions.setdefault(partition, _Partition())
        state.next_offset = max(state.next_offset, offset + 1)
        routes = [route for route in self.routes if route.sink.wants(alert)]
        if not routes:
            return 0
        state.pending[offset] = len(routes)
        self.in_flight += 1
        self.metrics.webhook_in_flight.set(self.in_flight)
        tasks = self.tasks.setdefault(partition, set())
        for route in routes:
            task = asyncio.create_task(self._deliver(route, alert, partition, offset),
                                       name=f"webhook {route.sink.name} {alert['alert_id']}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return len(routes)

    def skip(self, partition: int, offset: int) -> None:
        """A record that is not an alert: settled as soon as it is read."""
        state = self.partitions.setdefault(partition, _Partition())
        state.next_offset = max(state.next_offset, offset + 1)

    def committable(self) -> dict[int, int]:
        """Partition -> the offset to commit: the first unsettled one, or one past the end."""
        return {partition: min(state.pending) if state.pending else state.next_offset
                for partition, state in self.partitions.items() if state.next_offset}

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Stop the deliveries of partitions this process no longer owns."""
        for partition in partitions:
            tasks = self.tasks.pop(partition, set())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            state = self.partitions.pop(partition, None)
            if state is not None:
                self.in_flight -= len(state.pending)
        self.metrics.webhook_in_flight.set(self.in_flight)

    async def close(self) -> None:
        """Cancel every delivery; unsettled alerts are redelivered after a restart."""
        await self.revoke(list(self.partitions))

    def _settle(self, partition: int, offset: int) -> None:
        state = self.partitions.get(partition)
        if state is None or offset not in state.pending:
            return
        state.pending[offset] -= 1
        if state.pending[offset] == 0:
            del state.pending[offset]
            self.in_flight -= 1
            self.metrics.webhook_in_flight.set(self.in_flight)

    async def _deliver(self, route: _Route, alert: dict[str, Any], partition: int,
                       offset: int) -> None:
        name = route.sink.name
        attempts = 0
        while True:
            if route.disabled:
                await self._dead(route, alert, attempts, "receiver_disabled",
                                 "the receiver answered 410 Gone earlier", None)
                break
            hold = route.not_before - self.clock()
            if hold > 0:
                await asyncio.sleep(hold)  # the receiver's Retry-After
                continue
            async with route.slots:
                attempts += 1
                started = self.clock()
                try:
                    await route.sink.add(alert)
                except ReceiverGone as exc:
                    self._attempted(name, exc.result, started)
                    if not route.disabled:
                        route.disabled = True
                        self.metrics.webhook_receiver_enabled.labels(name).set(0)
                        logger.warning("webhook receiver %s answered 410 Gone: disabled", name)
                    continue
                except SinkError as exc:
                    self._attempted(name, exc.result, started)
                    if not exc.retryable or attempts >= self.max_attempts:
                        reason = ("refused" if exc.result == "refused" else
                                  "exhausted" if exc.retryable else "rejected")
                        await self._dead(route, alert, attempts, reason, str(exc), exc.status)
                        break
                    delay = self.backoff.delay(attempts, exc.retry_after)
                    if exc.retry_after is not None:
                        route.not_before = max(route.not_before, self.clock() + delay)
                else:
                    self._attempted(name, "ok", started)
                    self.metrics.webhook_deliveries.labels(name, "delivered").inc()
                    break
            pending = self.metrics.webhook_retries_pending.labels(name)
            pending.inc()
            try:
                await asyncio.sleep(delay)  # backoff before the next attempt
            finally:
                pending.dec()
        self._settle(partition, offset)

    def _attempted(self, name: str, result: str, started: float) -> None:
        self.metrics.webhook_attempts.labels(name, result).inc()
        self.metrics.webhook_attempt_seconds.labels(name).observe(self.clock() - started)

    async def _dead(self, route: _Route, alert: dict[str, Any], attempts: int, reason: str,
                    error: str, status: int | None) -> None:
        """Write the dead letter, retrying until Kafka takes it (or the task is cancelled)."""
        record = {"receiver": route.sink.name, "alert_id": alert.get("alert_id"),
                  "reason": reason, "error": error, "status": status, "attempts": attempts,
                  "alert": alert, "dead_lettered_at": now_text()}
        failures = 0
        while True:
            try:
                await self.dead_letter(record)
                break
            except Exception:  # Kafka trouble: keep the alert unsettled and try again
                failures += 1
                logger.exception("writing a webhook dead letter failed (%d)", failures)
                await asyncio.sleep(self.backoff.delay(min(failures, 6)))
        self.metrics.webhook_deliveries.labels(route.sink.name, "dead_lettered").inc()
        self.metrics.webhook_dead_letters.labels(route.sink.name, reason).inc()
        logger.warning("webhook %s: alert %s dead-lettered (%s): %s", route.sink.name,
                       alert.get("alert_id"), reason, error)
