"""Ingest: validate a batch of input messages and route their views, in event-time order.

What breaks the contract is dead-lettered with its reason: a malformed event, an event time
outside the wall clock's bounds (``processing.min_event_date``, ``max_future_skew_seconds``),
or an ``event_id`` this worker saw with other content. Every valid event's views go
to the folder (:class:`monitor.processing.folding.Folder`), which groups them per shard
and folds those of the shards this worker owns.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from operator import attrgetter
from typing import TYPE_CHECKING

from monitor.contract import events
from monitor.contract.events import content_digest
from monitor.errors import InvalidEvent
from monitor.processing.folding import IngestedEvent, event_time
from monitor.state.dedup import ContentWindow
from streams.topics import kind_by_topic

if TYPE_CHECKING:
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from monitor.processing.folding import Folder
    from streams.pipeline.sink import DeadLetters

_appended = attrgetter("timestamp")  # a consumer record's Kafka time (ms)

Batch = dict["TopicPartition", list["ConsumerRecord[bytes, bytes]"]]
"""One ``getmany``: the records fetched per topic-partition."""


class Ingest:
    """Validates input records and routes their views (one call per batch)."""

    def __init__(self, settings: Settings, folder: Folder, metrics: Metrics,
                 dead: DeadLetters) -> None:
        self.kinds = kind_by_topic(settings)
        self.max_bytes = settings.processing.max_event_bytes
        self.limits = settings.processing.limits()
        self.rule = settings.processing.time_rule()
        self.contents = ContentWindow(settings.processing.dedup_window)
        """Event ids and content digests of recent input: a copy with other content is a
        dead letter here, before any shard sees it; a byte-for-byte repeat goes on to the
        shards' dedup windows, which drop it."""
        self.folder = folder
        self.metrics = metrics
        self.dead = dead

    def handle(self, batch: Batch) -> dict[TopicPartition, int]:
        """Route the valid input records of one batch in event-time order; the next
        offset of each input partition, all of whose records are handled.

        Replay reads its file in order, and the files are in event time; features are in
        event time too, but whether and where an alert fires can depend on the order in
        which a shard sees events. Kafka timestamps have millisecond resolution and tie
        for many events at once, so within a batch the events are sorted by their own
        time (stable: ties keep the order they were appended in).
        """
        parse, kinds, max_bytes, dead = events.parse, self.kinds, self.max_bytes, self.dead
        limits, check, admit = self.limits, self.rule.check, self.contents.admit
        now = time.time()
        valid: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        lists = list(batch.values())
        ordered = lists[0] if len(lists) == 1 else heapq.merge(*lists, key=_appended)
        parsed_events: list[IngestedEvent] = []
        for record in ordered:
            kind = kinds[record.topic]
            try:
                parsed = parse(kind, record.value, max_bytes=max_bytes, limits=limits)
                check(parsed.ts, now)
                admit(parsed.event_id, content_digest(parsed))
            except InvalidEvent as exc:
                dead.record(record, exc.reason)
                rejected[kind] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                dead.bug(record, "validating", exc)
                rejected[kind] += 1
                continue
            valid[kind] += 1
            parsed_events.append(IngestedEvent(parsed.ts, parsed, record.timestamp / 1000,
                                               record.value,
                                               (record.topic, record.partition, record.offset)))
        parsed_events.sort(key=event_time)
        self.folder.route_events(parsed_events)
        for kind, count in valid.items():
            self.metrics.valid[kind].inc(count)
        for kind, count in rejected.items():
            self.metrics.dead_lettered[kind].inc(count)
        return {tp: records[-1].offset + 1 for tp, records in batch.items()}
