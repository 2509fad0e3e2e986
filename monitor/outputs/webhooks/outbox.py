"""The webhook outbox: deliveries of a stream of alerts, with retries and dead letters.

The outbox is fed alerts with their position in the alerts topic. Each alert goes to
every receiver that wants it, each delivery in a task of its own, so a slow or dead
receiver holds up only its own deliveries. ``committable()`` tells the consumer how far
each partition is settled (every delivery of every alert before that offset has been
delivered or dead-lettered); committing no further than that means a restart resumes
at the first unsettled alert and loses nothing. Repeats after a restart carry the same
``webhook-id`` (the alert id), so receivers drop them, and :meth:`Outbox.restore` lets
them go on from the attempts already made (see :mod:`.progress`).

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
    unsettled: int = 0  # deliveries started and not yet settled


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
        self.attempts: dict[tuple[int, int, str], int] = {}  # unsettled: attempts so far
        self.prior: dict[int, dict[int, int]] = {}  # partition -> offset -> attempts made

    def restore(self, partition: int, attempts: dict[int, int]) -> None:
        """Attempts made before a restart for alerts of ``partition`` not yet submitted."""
        self.prior[partition] = dict(attempts)

    def progress(self, partition: int) -> dict[int, int]:
        """Offset -> attempts made so far, for the unsettled alerts of ``partition``."""
        found: dict[int, int] = {}
        for (part, offset, _), attempts in self.attempts.items():
            if part == partition and attempts:
                found[offset] = max(found.get(offset, 0), attempts)
        for offset, attempts in self.prior.get(partition, {}).items():
            found.setdefault(offset, attempts)  # read back, not yet submitted again
        return found

    def disable(self, name: str, why: str) -> None:
        """Stop sending to receiver ``name``: its deliveries are dead-lettered from now on."""
        for route in self.routes:
            if route.sink.name == name and not route.disabled:
                route.disabled = True
                self.metrics.webhook_receiver_enabled.labels(name).set(0)
                logger.warning("webhook receiver %s disabled: %s", name, why)

    @property
    def disabled(self) -> list[str]:
        """Names of the receivers disabled by a 410 Gone."""
        return [route.sink.name for route in self.routes if route.disabled]

    def submit(self, partition: int, offset: int, alert: dict[str, Any]) -> int:
        """Start the deliveries of one alert; returns how many receivers want it."""
        state = self.partitions.setdefault(partition, _Partition())
        state.next_offset = max(state.next_offset, offset + 1)
        made = self._made(partition, offset)
        routes = [route for route in self.routes if route.sink.wants(alert)]
        if not routes:
            return 0
        state.pending[offset] = len(routes)
        self.in_flight += 1
        tasks = self.tasks.setdefault(partition, set())
        for route in routes:
            self.attempts[(partition, offset, route.sink.name)] = made
            self._count(route, +1)
            task = asyncio.create_task(self._deliver(route, alert, partition, offset, made),
                                       name=f"webhook {route.sink.name} {alert['alert_id']}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return len(routes)

    def _made(self, partition: int, offset: int) -> int:
        """Attempts restored for ``offset``; offsets before it will not come again."""
        prior = self.prior.get(partition)
        if not prior:
            return 0
        made = prior.pop(offset, 0)
        for passed in [passed for passed in prior if passed < offset]:
            del prior[passed]
        return made

    def _count(self, route: _Route, change: int) -> None:
        route.unsettled += change
        self.metrics.webhook_in_flight.labels(route.sink.name).set(route.unsettled)

    def skip(self, partition: int, offset: int) -> None:
        """A record that is not an alert: settled as soon as it is read."""
        self._made(partition, offset)
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
            self.prior.pop(partition, None)
            for key in [key for key in self.attempts if key[0] == partition]:
                del self.attempts[key]
                for route in self.routes:
                    if route.sink.name == key[2]:
                        self._count(route, -1)

    async def close(self) -> None:
        """Cancel every delivery; unsettled alerts are redelivered after a restart."""
        await self.revoke(list(self.partitions))

    def _settle(self, route: _Route, partition: int, offset: int) -> None:
        if self.attempts.pop((partition, offset, route.sink.name), None) is not None:
            self._count(route, -1)
        state = self.partitions.get(partition)
        if state is None or offset not in state.pending:
            return
        state.pending[offset] -= 1
        if state.pending[offset] == 0:
            del state.pending[offset]
            self.in_flight -= 1

    async def _deliver(self, route: _Route, alert: dict[str, Any], partition: int,
                       offset: int, attempts: int) -> None:
        name = route.sink.name
        key = (partition, offset, name)
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
                self.attempts[key] = attempts
                started = self.clock()
                try:
                    await route.sink.add(alert)
                except ReceiverGone as exc:
                    self._attempted(name, exc.result, started)
                    self.disable(name, "it answered 410 Gone")
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
        self._settle(route, partition, offset)

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
