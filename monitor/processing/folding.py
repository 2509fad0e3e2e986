"""A worker's per-view loop: which routed record each view goes into, folding it where
it is routed, and what the fold emits.

The live worker (:mod:`streams.pipeline.loop`) sends every view of a batch to its shard's
log, in one group per shard (:mod:`monitor.routing.envelope`), and folds the views of the shards
it owns right away, depth first with the views they lead to, as replay does
(:mod:`monitor.processing.engine`). This is that loop, compiled with the rest of the hot path
(:mod:`monitor.runtime.native`): as interpreted methods of the pipeline it took about a fifth of
the worker's time.

What the loop hands its caller goes through typed seams: decisions to a
:class:`RecordSink` (the producer's pending batches), and through :class:`FoldSink` the
groups it closes (to produce on the routed topic), alerts, shards it folds ahead of
their routed offset, and views our own code failed on. The caller
(``streams.pipeline.sink.WorkerSink``) turns those into Kafka records and metrics.
"""

from __future__ import annotations

import time
from typing import Any, Final, Protocol

import orjson

from monitor.contract.events import Event
from monitor.processing.tally import DecisionTally
from monitor.routing import envelope
from monitor.routing.views import View, placements, shard_of
from monitor.state.shard import Outcome, Shard

#: What becomes of a group once it is read back (see :class:`Group`).
FOREIGN: Final = 0
ROUND_TRIP: Final = 1
FOLDED: Final = 2
#: A routed record groups the views one handled batch sends a shard, in order
#: (:func:`monitor.routing.envelope.encode_group`), up to this many views or bytes: far below the
#: producer's 256 KiB batches, so a group always fits a batch of its own.
GROUP_VIEWS: Final = 256
GROUP_BYTES: Final = 192 * 1024

Place = tuple[str, int, int]
"""An input message's topic, partition and offset."""
RoutedView = tuple[View, Event, "float | None"]
"""A view as a routed envelope carries it: the view, its event, the input's arrival time."""


class IngestedEvent:
    """A valid input event as ingest hands it on: its own time, the event, the input
    message's Kafka time (s), its bytes and its place."""

    __slots__ = ("arrived", "event", "place", "source", "ts")

    def __init__(self, ts: float, event: Event, arrived: float, source: bytes,
                 place: Place) -> None:
        self.ts = ts
        self.event = event
        self.arrived = arrived
        self.source = source
        self.place = place


def event_time(ingested: IngestedEvent) -> float:
    """The sort key ingest orders a batch by."""
    return ingested.ts


class Group:
    """The views one handled batch routes to one shard, not yet produced.

    ``mode`` says what the worker does when it reads the record back: ``FOREIGN`` (a
    shard it does not own: never read back here), ``ROUND_TRIP`` (fold it then; the
    decoded views wait in the pipeline's cache), ``FOLDED`` (folded when routed: skip
    it). A view of another mode than the open group's closes the group, so the order
    of the shard's views is the order of the records.
    """

    __slots__ = ("envelopes", "mode", "size", "views")

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.envelopes: list[bytes] = []
        self.views: list[RoutedView] = []
        self.size = 0


class RecordSink(Protocol):
    """Takes output records (the worker's pending producer batches)."""

    def add(self, topic: str, key: bytes | None, value: bytes,
            partition: int | None = None) -> None:
        """Queue one record for ``topic`` (on ``partition``, or by ``key``)."""


class FoldSink(Protocol):
    """What the folder hands its caller, one call per item, in the order it made them."""

    def group_closed(self, shard_id: int, group: Group) -> None:
        """A group is complete: produce it on ``shard_id``'s routed partition."""

    def folding_ahead(self, shard_id: int) -> None:
        """``shard_id`` folds views ahead of its routed offset (a new group of them)."""

    def alerted(self, view: View, event: Event, alert: dict[str, Any]) -> None:
        """An alert a fold raised."""

    def fold_failed(self, shard: Shard, view: View, event: Event, arrived: float | None,
                    source: bytes | None, offset: int | None, exc: Exception) -> None:
        """Our own code failed on a view (``offset``: the routed record it was read in)."""


class Folder:
    """Routes and folds views for one worker (see the module doc).

    ``shards`` is the shard manager's dict of restored shards; ``owned``, ``broken``
    (shards whose checkpoint cannot be read), ``fold_here`` and ``caught_up`` are set by
    the pipeline (through its properties of the same names). Decisions go straight to
    ``outputs`` (set while the worker runs: one per event, so not through the sink);
    ``tally`` counts every decision for the metrics.
    """

    def __init__(self, partitions: int, shards: dict[int, Shard], fold_here: bool,
                 decisions_topic: str, sink: FoldSink, tally: DecisionTally) -> None:
        self.partitions = partitions
        self.shards = shards
        self.fold_here = fold_here
        self.decisions_topic = decisions_topic
        self.sink = sink
        self.outputs: RecordSink | None = None
        self.owned: set[int] = set()
        self.broken: set[int] = set()
        self.caught_up = False  # owned routed partitions read to their end since assigned
        self.groups: dict[int, Group] = {}  # shard -> the open group of the batch in hand
        self.tally = tally

    def route_events(self, ingested: list[IngestedEvent]) -> None:
        """Route every view of each event, in order (see :meth:`route`)."""
        partitions = self.partitions
        for item in ingested:
            event = item.event
            for view, shard_id in placements(event, partitions):
                self.route(shard_id, view, event, item.arrived, item.source, item.place, False)

    def route(self, shard_id: int, view: View, event: Event, arrived: float | None,
              source: bytes | None, origin: Place | None, onward: bool) -> None:
        """Send a view to its shard's log (in the batch's group) and, when this worker
        owns the shard and may fold here, fold it now. ``source`` and ``origin``: the
        input message's value and place, when this worker ingested the event; a view
        folded here is then logged as a reference to that place (``onward``: a view a
        shard derived, not one of the event's own)."""
        shard: Shard | None = None
        if shard_id not in self.owned or shard_id in self.broken:
            mode = FOREIGN
        elif self.fold_here and self.caught_up and (
                shard := self.shards.get(shard_id)) is not None:
            mode = FOLDED
        else:
            mode = ROUND_TRIP  # not folding here yet, or not restored yet
        if mode == FOLDED and origin is not None:
            value = envelope.encode_reference(event, view, origin[0], origin[1], origin[2],
                                              onward=onward)
        else:
            value = envelope.encode(view, event, arrived, source)
        group = self.groups.get(shard_id)
        if group is None or group.mode != mode or len(group.envelopes) >= GROUP_VIEWS or (
                group.size + len(value) > GROUP_BYTES):
            if group is not None:
                self.sink.group_closed(shard_id, group)
            group = Group(mode)
            self.groups[shard_id] = group
            if shard is not None:  # folded ahead of its routed offset (a group at a time)
                self.sink.folding_ahead(shard_id)
        group.envelopes.append(value)
        if mode == ROUND_TRIP:  # folded when read back (FOLDED: now; FOREIGN: elsewhere)
            group.views.append((view, event, arrived))
        group.size += len(value) + 1
        if shard is not None:
            self.apply(shard, view, event, arrived, source, origin, None)

    def close_groups(self) -> None:
        """Hand over the open groups (at the end of a handled batch); none stay open."""
        groups = self.groups
        self.groups = {}
        sink = self.sink
        for shard_id, group in groups.items():
            sink.group_closed(shard_id, group)

    def fold_views(self, shard: Shard, views: list[RoutedView],
                   offset: int) -> None:
        """Fold the views of a routed record read back (at ``offset``), in order."""
        for view, event, arrived in views:
            self.apply(shard, view, event, arrived, None, None, offset)

    def fold_group(self, shard: Shard, items: list[envelope.Decoded], offset: int) -> bool:
        """Fold a decoded group read back (at ``offset``) if it holds views only; False,
        folding nothing, if it holds a reference (the pipeline resolves those)."""
        views: list[RoutedView] = []
        for item in items:
            if isinstance(item, envelope.Reference):
                return False
            views.append(item)
        self.fold_views(shard, views, offset)
        return True

    def apply(self, shard: Shard, view: View, event: Event, arrived: float | None,
              source: bytes | None, origin: Place | None, offset: int | None) -> None:
        """Fold one view into ``shard`` and emit what it produced; a view our own code
        fails on goes to the sink (``offset``: that of the routed record it was read
        in), and the stream goes on."""
        try:
            outcome = shard.process(view, event)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
            self.sink.fold_failed(shard, view, event, arrived, source, offset, exc)
            return
        if outcome is not None:
            self.emit(outcome, view, event, arrived, source, origin)

    def emit(self, outcome: Outcome, view: View, event: Event, arrived: float | None,
             source: bytes | None, origin: Place | None) -> None:
        """Send what a fold produced: onward views, the decision, alerts."""
        # Onward views first: in the routed log they then precede anything caused by
        # later events, as in replay (monitor.processing.engine).
        for onward in outcome.forwards:
            self.route(shard_of(onward, self.partitions), onward, event, arrived, source,
                       origin, True)
        decision = outcome.decision
        if decision is not None:
            outputs = self.outputs
            if outputs is None:
                raise RuntimeError("folding before the worker started")
            outputs.add(self.decisions_topic, event.event_id.encode(), orjson.dumps(decision))
            self.tally.decided(event.kind, decision["scores"], arrived, event.ts, time.time())
        sink = self.sink
        for alert in outcome.alerts:
            sink.alerted(view, event, alert)
