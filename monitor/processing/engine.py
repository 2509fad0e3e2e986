"""The in-process engine: routes each event's views to their shards, in order.

Replay uses it directly; the Kafka worker does the same work split in two steps
(``streams``: validate and route to the routed topic, then fold each partition
into its shard, routing onward views back to the routed topic).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from monitor.contract.clock import StreamClock
from monitor.contract.events import content_digest
from monitor.routing.views import View, placements, shard_of
from monitor.state.dedup import ContentWindow
from monitor.state.shard import Outcome, Shard

if TYPE_CHECKING:
    from collections.abc import Callable

    from monitor.config import Settings
    from monitor.contract.events import Event


class Engine:
    """All shards of one deployment, in one process."""

    def __init__(self, settings: Settings) -> None:
        self.partitions = settings.kafka.partitions
        self.rule = settings.processing.time_rule()
        self.clock = StreamClock(self.rule.max_watermark_step)
        """The file's own clock (see :mod:`monitor.contract.clock`), for every shard."""
        self.contents = ContentWindow(settings.processing.dedup_window)
        self.limits = settings.processing.limits()
        self.dead_letter_prefix = settings.processing.dead_letter_prefix_bytes
        self.shards = [Shard(i, settings) for i in range(self.partitions)]
        for shard in self.shards:
            shard.clock = self.clock.now
            shard.prepare()
        self.timer: Callable[[View, float], None] | None = None
        """Called with each view and the seconds its shard took (``fraudmon cost``)."""

    def admit(self, event: Event, wall: float | None = None) -> None:
        """Raise :class:`InvalidEvent` when ``event`` must not be processed: a time outside
        the file's clock and the wall clock (``wall``, now when ``None``) plus the skew,
        or an ``event_id`` seen before with other content."""
        clock = self.clock
        if clock.value is None:
            self.rule.check(event.ts, event.ts)  # the first event sets the clock
        else:
            self.rule.check(event.ts, clock.value,
                            also_before=time.time() if wall is None else wall)
        self.contents.admit(event.event_id, content_digest(event))

    def process(self, event: Event) -> list[Outcome]:
        """Every outcome of ``event``, its primary view's (with the decision) first.

        Views a shard routes onward are folded right after the view that produced them
        (depth first), which is where they land in the routed log when events arrive one
        at a time.
        """
        outcomes: list[Outcome] = []
        shards = self.shards
        self.clock.observe(event.ts)
        for view, shard in placements(event, self.partitions):
            timer = self.timer
            outcome = (shards[shard].process(view, event) if timer is None
                       else _timed(timer, shards[shard], view, event))
            if outcome is not None:
                outcomes.append(outcome)
                if outcome.forwards:
                    self._forward(outcome.forwards, event, outcomes)
        return outcomes

    def _forward(self, forwards: list[View], event: Event, outcomes: list[Outcome]) -> None:
        for view in forwards:
            shard = self.shards[shard_of(view, self.partitions)]
            timer = self.timer
            outcome = (shard.process(view, event) if timer is None
                       else _timed(timer, shard, view, event))
            if outcome is not None:
                outcomes.append(outcome)
                if outcome.forwards:
                    self._forward(outcome.forwards, event, outcomes)


def _timed(timer: Callable[[View, float], None], shard: Shard, view: View,
           event: Event) -> Outcome | None:
    started = time.perf_counter()
    outcome = shard.process(view, event)
    timer(view, time.perf_counter() - started)
    return outcome
