"""Score: fold the routed records of one owned shard, in the order of its log.

A record is a group of views (:mod:`monitor.routing.envelope`). A group this worker
folded when it routed it only moves the shard's offset; one it produced to fold on its
way back comes decoded from the read-back cache (:mod:`monitor.processing.readback`);
any other is decoded here. References to input messages that the shard has not folded
(after a crash) are read back from the input topics (:mod:`streams.pipeline.lookup`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.contract import events
from monitor.contract.events import DEFAULT_LIMITS, Limits
from monitor.errors import CheckpointError, InvalidEvent
from monitor.routing import envelope
from monitor.routing.views import placements
from streams.pipeline.sink import internal_error
from streams.topics import kind_by_topic

if TYPE_CHECKING:
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    from monitor.config import Settings
    from monitor.contract.events import Event
    from monitor.outputs.metrics import Metrics
    from monitor.processing.folding import Folder, Place
    from monitor.processing.readback import ReadBack
    from monitor.routing.views import View
    from monitor.state.shard import Shard
    from streams.pipeline.lookup import InputLookup
    from streams.pipeline.sink import DeadLetters
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)


class Read:
    """A routed record decoded: its items and the items set aside with their reasons,
    or why the record is not a group at all (``rejected``)."""

    __slots__ = ("invalid", "items", "rejected")

    def __init__(self, items: list[envelope.Decoded], invalid: list[tuple[bytes, str]],
                 rejected: str | None = None) -> None:
        self.items = items
        self.invalid = invalid
        self.rejected = rejected


Resolved = tuple["View", "Event", "float | None", "bytes | None", "Place | None"]
"""A view to fold, with its event, arrival time, input message and its place."""


def read(value: bytes, limits: Limits = DEFAULT_LIMITS) -> Read:
    """A routed record's items, or why it is not a group (also when our own decoding
    fails on it: the record is dead-lettered, not the stream)."""
    invalid: list[tuple[bytes, str]] = []
    try:
        return Read(envelope.decode_group(value, invalid, limits), invalid)
    except InvalidEvent as exc:
        return Read([], [], exc.reason)
    except Exception as exc:
        logger.exception("decoding a routed record failed")
        return Read([], [], internal_error("decoding", exc))


def unseen(shard: Shard, items: list[envelope.Decoded]) -> list[envelope.Reference]:
    """The references among ``items`` that ``shard`` has not folded (restored state
    holds the others, in its dedup window)."""
    return [item for item in items if isinstance(item, envelope.Reference)
            and not (shard.dedup_window and item.token in shard.seen)]


class Scorer:
    """Folds routed records into their shards (one call per partition of a batch).

    ``unreadable`` is called with a shard whose checkpoint cannot be read, and why: the
    loop pauses it (rather than lose its state) and retries its restore with backoff.
    """

    def __init__(self, settings: Settings, manager: ShardManager, folder: Folder,
                 readback: ReadBack, lookup: InputLookup, metrics: Metrics,
                 dead: DeadLetters, unreadable: Callable[[int, BaseException], None]) -> None:
        self.kinds = kind_by_topic(settings)
        self.partitions = settings.kafka.partitions
        self.max_bytes = settings.processing.max_event_bytes
        self.limits = settings.processing.limits()
        self.manager = manager
        self.folder = folder
        self.readback = readback
        self.lookup = lookup
        self.metrics = metrics
        self.dead = dead
        self.unreadable = unreadable

    async def score(self, tp: TopicPartition,
                    records: list[ConsumerRecord[bytes, bytes]]) -> None:
        shard_id = tp.partition
        folder = self.folder
        if shard_id not in folder.owned or shard_id in folder.broken:
            return  # revoked while fetched: its new owner folds it
        try:
            shard = self.manager.shard(shard_id)
        except CheckpointError as exc:
            self.unreadable(shard_id, exc)
            return
        readback = self.readback
        # Groups to decode (produced elsewhere, or before a restart), first all at once:
        # the events of their references are looked up in one go.
        reads = {index: read(record.value, self.limits) for index, record in enumerate(records)
                 if record.offset > shard.applied_offset and not readback.knows(record.value)}
        wanted = [reference for done in reads.values() if done.rejected is None
                  for reference in unseen(shard, done.items)]
        found, asked = await self._look_up(wanted), set(map(id, wanted))
        for index, record in enumerate(records):
            value = record.value
            if readback.claim_folded(shard_id, value):  # folded when routed: the offset moves
                if record.offset > shard.applied_offset:
                    shard.applied_offset = record.offset
                continue
            group = readback.take_decoded(value)
            if record.offset <= shard.applied_offset:
                continue  # already in the state restored
            if group is not None:
                folder.fold_views(shard, group, record.offset)
            else:
                done = reads.get(index)
                if done is None:  # the same group twice in a batch: cached only once
                    done = read(value, self.limits)
                    if done.rejected is None:
                        more = unseen(shard, done.items)
                        asked.update(map(id, more))
                        found.update(await self._look_up(more))
                if done.rejected is not None:
                    self.dead.record(record, done.rejected)
                    continue
                for item, reason in done.invalid:  # the rest of the group is still folded
                    self.dead.record(record, reason, item)
                if not folder.fold_group(shard, done.items, record.offset):  # references
                    for view, parsed, arrived, source, origin in self._resolved(
                            record, done.items, found, asked):
                        folder.apply(shard, view, parsed, arrived, source, origin,
                                     record.offset)
            shard.applied_offset = record.offset
        self.manager.advance(shard_id, records[-1].offset + 1)

    async def _look_up(self, references: list[envelope.Reference],
                       ) -> dict[Place, tuple[bytes, float]]:
        """The input messages of ``references`` (after a crash, see ``streams.lookup``)."""
        if not references:
            return {}
        found = await self.lookup.values(
            (item.topic, item.partition, item.offset) for item in references)
        self.metrics.references_resolved.inc(len(references))
        # Once per batch while a restarted worker catches up: the metric counts them all.
        logger.debug("%d views read back by reference, from the input topics", len(references))
        return found

    def _resolved(self, record: ConsumerRecord[bytes, bytes], items: list[envelope.Decoded],
                  found: dict[Place, tuple[bytes, float]], asked: set[int],
                  ) -> list[Resolved]:
        """A group's views, its references replaced by their events (``found``) and
        those folded already (whose ``id`` was not ``asked`` for) left out; a reference
        whose message is gone or is not its event is dead-lettered."""
        views: list[Resolved] = []
        for item in items:
            if not isinstance(item, envelope.Reference):
                views.append((*item, None, None))
                continue
            if id(item) not in asked:
                continue  # folded already: in the restored state
            place = (item.topic, item.partition, item.offset)
            where = f"{item.topic}[{item.partition}]@{item.offset}"
            message, kind = found.get(place), self.kinds.get(item.topic)
            reason, view = None, item.view
            if kind is None:
                reason = f"routed reference to {where}: not an input topic"
            elif message is None:
                reason = f"routed reference to {where}: the input message is gone"
            else:
                source, arrived = message
                try:
                    parsed = events.parse(kind, source, max_bytes=self.max_bytes,
                                          limits=self.limits)
                except InvalidEvent as exc:
                    reason = f"routed reference to {where}: {exc.reason}"
                else:
                    if parsed.event_id != item.event_id:
                        reason = f"routed reference to {where}: another event is there"
                    elif view is None and (view := self._own_view(parsed, item.role)) is None:
                        reason = f"routed reference to {where}: the event has no {item.role!r}"
            if reason is not None or view is None:
                self.dead.record(record, reason or "", item.encode())
                continue
            views.append((view, parsed, arrived, source, place))
        return views

    def _own_view(self, parsed: Event, role: str) -> View | None:
        """The view of ``parsed`` with ``role`` (as routed: label copies included)."""
        for view, _ in placements(parsed, self.partitions):
            if view.role == role:
                return view
        return None
