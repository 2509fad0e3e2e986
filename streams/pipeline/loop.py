"""The worker's consumer loop: ingest and score on one plain aiokafka consumer.

One consumer in the group ``kafka.app_id`` reads the input topics and the routed
topic, ``getmany`` in bounded batches, and handles each batch without yielding to the
event loop except where the producer pushes back:

* **ingest** (input topics) validates each message, dead-letters what breaks the
  contract, and routes each entity view to the routed topic, on the partition (shard)
  that owns the entity, grouped per shard (:mod:`monitor.routing.envelope`). At-least-once: an
  input offset is committed only after the producer has flushed everything it produced.
* **score** (routed topic) folds each partition into its :class:`~monitor.state.shard.Shard`
  and emits decisions, alerts and onward views. A routed offset is committed only after
  the checkpoint that holds its effects is durable (:mod:`streams.state.shards`).

**Folding here**: a view for a shard this worker owns is folded as soon as it is
routed, depth first with the views it leads to, as replay does (:mod:`monitor.processing.engine`),
instead of after a round trip through the routed topic. It is still logged, so the
routed log stays the shard's durable input, in the order the shard folded it: as a
reference to the input message its event came in (:class:`monitor.routing.envelope.Reference`),
not with the event. Read back here it is skipped; after a restore or a rebalance the
shard's dedup window drops it (a checkpoint can hold folds whose records lie past its
applied offset), and only a view the restored state lacks (after a crash) is looked up
in the input topic (:mod:`streams.pipeline.lookup`). Without a dedup window
(``processing.dedup_window: 0``) every view goes the round trip. The per-view work
(which group a view goes into, folding it, emitting what the fold produced) is
:class:`monitor.processing.folding.Folder`, compiled with the hot path; this loop feeds it batches
and produces what it hands back.

Folding here must not overtake the routed log: after an assignment (a start, a
restore, a rebalance) a shard's log can hold envelopes it has not folded yet, produced
before a crash or by the previous owner. Until every owned routed partition is read up
to its high watermark, with no envelope of this worker's still on its way back, ingest
stays paused and views go the round trip (:meth:`Pipeline._catch_up`).

Outputs are enqueued on the producer without awaiting each delivery; a checkpoint
flushes the producer (and checks every delivery) before it saves shards and commits.
faust's per-message machinery (tasks, streams, acks) costs about ten times the domain
code per record, which is why this loop does not run as a faust agent; the faust app
still hosts it (start-up, timers, web server, shutdown).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter
from itertools import islice
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from monitor.contract import events
from monitor.contract.records import dead_letter
from monitor.errors import CheckpointError, InvalidEvent
from monitor.processing.folding import FOLDED, ROUND_TRIP, Folder, Group, Ingested, Place
from monitor.routing import envelope
from monitor.routing.views import placements
from streams.pipeline.lookup import InputLookup
from streams.pipeline.outputs import Outputs, settle
from streams.topics import kind_by_topic

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine

    from aiokafka.structs import ConsumerRecord

    from monitor.config import Settings
    from monitor.contract.events import Event
    from monitor.outputs.alertstore import AlertStore
    from monitor.outputs.metrics import Metrics
    from monitor.routing.views import View
    from monitor.state.shard import Shard
    from streams.state.shards import Begun, ShardManager, Snapshot

logger = logging.getLogger(__name__)

#: Records per ``getmany``: one batch's synchronous work (30-60 us an input record)
#: stays far below the session timeout, and the loop yields between batches. Under a
#: backlog, 4,000 ran the 200,000-event bench 1.2x faster than 2,000 (fewer flushes,
#: sends and polls); at a steady rate a poll returns what arrived, far fewer.
MAX_BATCH = 4_000
#: Routed records a batch takes ahead of input records (:meth:`Pipeline._poll`): a
#: record is a group of up to ``monitor.processing.folding.GROUP_VIEWS`` views, and a batch of
#: input routes about 50.
ROUTED_BATCH = 64
POLL_MS = 100
#: How long the broker may hold a fetch until it has ``FETCH_MIN_BYTES``. aiokafka leaves
#: partitions with buffered records out of the fetch in flight, so records arriving on
#: them (the routed views this worker just produced) can wait for that fetch to return
#: (500 ms default). Under a steady load, answering every fetch at its first byte cost
#: the worker and the broker a request each per produce batch: with 32 KiB / 5 ms instead
#: of 1 byte / 20 ms the worker took 0.62-0.65 of a core instead of 0.70-0.72 at 7,000
#: events/s, the broker 0.49-0.53 instead of 0.56-0.62 (three paired bench runs), for
#: about 2 ms more median latency.
FETCH_WAIT_MS = 5
FETCH_MIN_BYTES = 32 * 1024
#: Flow control: ingest pauses while this many views routed to the worker's own shards
#: wait to be scored or read back, and resumes below a quarter of it. Without it a backlog
#: of input is routed far ahead of scoring, every cached group is evicted before it is
#: read back, and each is decoded a second time.
INGEST_AHEAD = 12_288
#: Groups of envelopes this worker produced for its own shards to fold when read back,
#: decoded: the routed records it reads back are those, and decoding (re-validating the
#: events) costs about a tenth of a view's work. A safety net for groups never read back:
#: flow control (INGEST_AHEAD, in views; a poll adds at most about 16,000) pauses ingest
#: before, even with groups of one view, so the cache never drops a group on its way.
DECODED_LIMIT = 4 * INGEST_AHEAD
#: Views folded here that one shard may have on their way back before ingest pauses (and
#: resumes below a quarter). They are scored already; what bounds them is the shard's
#: dedup window: a view read back after its cache entry was dropped (an idle poll, an
#: assignment, a restart) is skipped only while its token is still in the window, so at
#: most a quarter of the window may be in flight (``Pipeline.folded_limit``). At one
#: INGEST_AHEAD for all shards, ingest paused in 43 % of batches for the round trip
#: through the broker alone.
FOLDED_AHEAD = 2 * INGEST_AHEAD
#: Bytes one fetch may bring of one partition: a routed group can be 192 KiB
#: (``monitor.processing.folding.GROUP_BYTES``), and at Kafka's 1 MiB default the read-back of the
#: worker's own groups fell behind.
PARTITION_FETCH_BYTES = 4 << 20
#: Share of wall time timer checkpoints may spend pickling: after a snapshot whose header
#: and slices took ``p`` seconds in all, the next one is due ``p / SNAPSHOT_SHARE``
#: seconds later. Processing waits only for the header and one slice at a time now, but
#: this one thread does not process while it pickles either way (and a thread compresses
#: what it pickled), so the share bounds the throughput checkpoints cost (entities the
#: shard pickles itself before changing them are not counted: a slice would have pickled
#: them). At 0.03 a shard of 200,000 events' state (~50 ms to pickle) is saved every ~7 s
#: with four shards, which bounds what a restart re-folds. Input offsets are committed on
#: every tick regardless.
SNAPSHOT_SHARE = 0.03
#: After a slice of a snapshot that took ``t`` seconds the next waits ``SLICE_REST * t``,
#: so a snapshot takes at most a quarter of the loop while it runs. Taken back to back
#: (the loop ran between slices only when a fetch had come back), the slices of one
#: snapshot (40-60 ms at 10,000 events/s) overloaded the worker for a tenth of a second
#: every two seconds: at half load the p99 was 60-68 ms with them and 32-36 ms paced
#: (paired bench runs); under a backlog, throughput was the same either way.
SLICE_REST = 3.0


_appended = attrgetter("timestamp")  # a consumer record's Kafka time (ms)
_event_time = itemgetter(0)  # an ingested event's own time


def _internal_error(stage: str, exc: Exception) -> str:
    """The dead-letter reason for a record our own code failed on (never its content)."""
    return f"internal error while {stage}: {type(exc).__name__}"


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self.pipeline.revoke(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self.pipeline.assign(assigned)


class Pipeline:
    """Consumer, producer and loop of one worker: opened by :meth:`start`, closed by
    :meth:`stop`; :meth:`checkpoint` runs on the app's timer."""

    def __init__(self, settings: Settings, manager: ShardManager, metrics: Metrics,
                 store: AlertStore) -> None:
        self.settings, self.manager, self.metrics, self.store = settings, manager, metrics, store
        self.kinds = kind_by_topic(settings)
        self.routed = settings.kafka.topic("routed")
        self.decisions_topic = settings.kafka.topic("decisions")
        self.alerts_topic = settings.kafka.topic("alerts")
        self.dead_topic = settings.kafka.topic("dead_letter")
        self.partitions = settings.kafka.partitions
        self.max_bytes = settings.processing.max_event_bytes
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        # Routes and folds each view (monitor.processing.folding); it keeps the owned and broken
        # shards, whether it may fold here and whether caught up (see the properties
        # below) and the open groups. It holds manager.shards and metrics.tally, so
        # neither is ever replaced.
        self.folder = Folder(self.partitions, manager.shards,
                             settings.processing.dedup_window > 0, self.decisions_topic, self)
        self.routed_partitions: list[TopicPartition] = []  # those of the owned shards
        self.ingested: dict[TopicPartition, int] = {}   # input tp -> next offset, sent
        self.committed: dict[TopicPartition, int] = {}
        self.durable: dict[TopicPartition, int] = {}    # safe to commit, not yet committed
        self.outputs: Outputs | None = None
        self.lookup = InputLookup(settings)  # events behind references, after a crash
        # Groups produced for owned shards to fold when read back, decoded already.
        self.decoded: dict[bytes, list[tuple[View, Event, float | None]]] = {}
        # Groups folded here when routed (see "Folding here"), until they are read back:
        # copies in flight and views in each.
        self.folded: dict[bytes, tuple[int, int]] = {}
        self.folded_views: dict[int, int] = {}  # shard -> views folded here, not read back
        # At most a quarter of a shard's dedup window in flight (see FOLDED_AHEAD).
        self.folded_limit = max(1, min(FOLDED_AHEAD, settings.processing.dedup_window // 4))
        self.drift_reported: dict[int, dict[str, int]] = {}  # shard -> detections counted
        self.ingest_paused = False
        self.snapshot_due = 0.0  # monotonic time of the next timer snapshot
        self.rebalancing = True
        self.running = False
        # After a failure mid-batch, shard state may hold effects whose outputs were never
        # sent: nothing more is checkpointed or committed, a restart re-folds.
        self.failed = False
        self.task: asyncio.Task[None] | None = None
        self.on_crash: Callable[[BaseException], Coroutine[Any, Any, None]] | None = None
        self._crashing: asyncio.Task[None] | None = None

    @property
    def owned(self) -> set[int]:
        """The shards (routed partitions) assigned to this worker."""
        return self.folder.owned

    @owned.setter
    def owned(self, shards: set[int]) -> None:
        self.folder.owned = shards

    @property
    def broken(self) -> set[int]:
        """Owned shards whose checkpoint cannot be read: not consumed."""
        return self.folder.broken

    @property
    def fold_here(self) -> bool:
        """Whether views of owned shards may be folded where they are routed (a dedup
        window drops them when read back)."""
        return self.folder.fold_here

    @fold_here.setter
    def fold_here(self, value: bool) -> None:
        self.folder.fold_here = value

    @property
    def caught_up(self) -> bool:
        """Whether the owned routed partitions were read to their end since assigned."""
        return self.folder.caught_up

    @caught_up.setter
    def caught_up(self, value: bool) -> None:
        self.folder.caught_up = value

    # lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        kafka = self.settings.kafka
        self.producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.app_id}-worker",
            acks="all", linger_ms=0, max_batch_size=256 * 1024,
            max_request_size=4 << 20)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers, group_id=kafka.app_id,
            client_id=f"{kafka.app_id}-worker", enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_bytes=16 << 20,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_wait_ms=FETCH_WAIT_MS, fetch_min_bytes=FETCH_MIN_BYTES,
            session_timeout_ms=int(kafka.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_seconds * 1000))
        await self.manager.start()
        await self.producer.start()
        self.outputs = Outputs(self.producer)
        await self.outputs.prepare(self.routed, self.decisions_topic, self.alerts_topic,
                                   self.dead_topic)
        await self.consumer.start()
        self.consumer.subscribe([*self.kinds, self.routed], listener=_Listener(self))
        self.running = True
        self.task = asyncio.create_task(self._run(), name="fraudmon-pipeline")

    async def stop(self) -> None:
        """Finish the batch in hand, checkpoint every owned shard, commit, leave."""
        self.running = False
        if self.task is not None:
            await asyncio.wait([self.task])
        consumer, producer = self.consumer, self.producer
        if consumer is not None and producer is not None:
            try:
                if not self.failed:
                    saved = await self.checkpoint()
                    logger.info("final checkpoint: %d shards saved", saved)
            finally:
                self.consumer = self.producer = self.outputs = None
                self.manager.release(set(self.owned))
                self.owned.clear()
                self.routed_partitions = []
                await consumer.stop()
                await producer.stop()
                await self.lookup.stop()
                await self.manager.stop()

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    async def _run(self) -> None:
        assert self.consumer is not None and self.outputs is not None  # noqa: S101 - started
        try:
            while self.running:
                if not self.restored():
                    async with self.manager.lock:
                        await self._restore()
                if not self.caught_up:
                    await self._catch_up()
                batch = await self._poll()
                if not batch:
                    if self.ingest_paused:  # nothing came back to score: let ingest go on
                        self._resume_ingest(forget=True)
                    continue
                async with self.manager.lock:
                    await self._restore()  # shards assigned while the fetch was in flight
                    inputs = {tp: records for tp, records in batch.items()
                              if tp.topic != self.routed}
                    if inputs:
                        self._ingest(inputs)
                    for tp, records in batch.items():
                        if tp.topic == self.routed:
                            await self._score(tp, records)
                    self._flush_groups()
                    await self.outputs.send()
                    self._report_drift()
                self._throttle()
                await asyncio.sleep(0)  # let heartbeats, timers and the web server run
        except Exception as exc:  # noqa: BLE001 - reported, and the worker stops
            self._fail(exc, "the consumer loop failed")

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """One batch: the routed records fetched already first (up to ``ROUTED_BATCH``),
        then up to ``MAX_BATCH`` in all, waiting up to ``POLL_MS`` only if none came.

        aiokafka hands out fetched records partition by partition, in the order the
        fetches came back, so under an input backlog a plain ``getmany`` returned the
        routed records only after every input record fetched before them (seconds of
        work at 4 MiB a partition fetch): views other workers sent waited that long, and
        the views folded here that long on their way back, until flow control paused
        ingest to let them through.
        """
        consumer = self.consumer
        assert consumer is not None  # noqa: S101 - started
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        if self.routed_partitions:
            batch = await consumer.getmany(*self.routed_partitions, timeout_ms=0,
                                           max_records=ROUTED_BATCH)
        room = MAX_BATCH - sum(map(len, batch.values()))
        more = await consumer.getmany(timeout_ms=0 if batch else POLL_MS, max_records=room)
        for tp, records in more.items():
            if tp in batch:
                batch[tp] += records
            else:
                batch[tp] = records
        return batch

    def _throttle(self) -> None:
        """Pause ingest while too many views wait to be scored or read back here (see
        INGEST_AHEAD and FOLDED_AHEAD)."""
        assert self.consumer is not None  # noqa: S101 - started
        waiting = sum(map(len, self.decoded.values()))
        if not self.ingest_paused and (waiting >= INGEST_AHEAD
                                       or self._most_folded() >= self.folded_limit):
            self.consumer.pause(*self._inputs())
            self.ingest_paused = True
        elif self.ingest_paused and (waiting <= INGEST_AHEAD // 4
                                     and self._most_folded() <= self.folded_limit // 4):
            self._resume_ingest(forget=False)

    def _most_folded(self) -> int:
        return max(self.folded_views.values(), default=0)

    def _resume_ingest(self, *, forget: bool) -> None:
        """Resume the input partitions (unless catching up); ``forget`` drops cached
        envelopes that will never be read back here (their shard was revoked or cannot
        be restored)."""
        assert self.consumer is not None  # noqa: S101 - started
        if forget:
            self._forget()
        self.ingest_paused = False
        if self.caught_up:
            self.consumer.resume(*self._inputs())

    async def _catch_up(self) -> None:
        """Start folding here once the owned routed partitions are read to their end.

        Until then ingest is paused, so the only envelopes in flight are onward views of
        the records being caught up on, which go the round trip (``decoded``).
        """
        consumer = self.consumer
        assert consumer is not None  # noqa: S101 - started
        if self.fold_here and not self.rebalancing:
            if self.decoded or not self.restored():
                return
            for shard_id in self.owned - self.broken:
                tp = TopicPartition(self.routed, shard_id)
                high = consumer.highwater(tp)
                if high is None or await consumer.position(tp) < high:
                    return  # not fetched yet, or records left to read
        self.caught_up = True
        if not self.ingest_paused:
            consumer.resume(*self._inputs())

    def _inputs(self) -> list[TopicPartition]:
        assert self.consumer is not None  # noqa: S101 - started
        return [tp for tp in self.consumer.assignment() if tp.topic != self.routed]

    def _fail(self, exc: BaseException, what: str) -> None:
        logger.critical("%s; stopping the worker", what, exc_info=exc)
        self.failed = True
        self.running = False
        if self.on_crash is not None and self._crashing is None:
            self._crashing = asyncio.create_task(self.on_crash(exc))

    # ingest ----------------------------------------------------------------------

    def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str,
                     value: bytes | None = None) -> None:
        """Dead-letter ``record`` (or ``value``, one item of it) with ``reason``."""
        assert self.outputs is not None  # noqa: S101 - started
        letter = dead_letter(record.value if value is None else value, record.topic,
                             record.partition, record.offset, reason)
        self.outputs.add(self.dead_topic, record.key, orjson.dumps(letter))

    def _dead_letter_bug(self, record: ConsumerRecord[bytes, bytes], stage: str,
                         exc: Exception) -> None:
        """A record our own code failed on: log where (never the record), dead-letter it."""
        logger.exception("%s %s[%d]@%d failed", stage, record.topic, record.partition,
                         record.offset)
        self._dead_letter(record, _internal_error(stage, exc))

    def _ingest(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
                ) -> None:
        """Route the valid input records of one batch in event-time order.

        Replay reads its file in order, and the files are in event time; features are in
        event time too, but whether and where an alert fires can depend on the order in
        which a shard sees events. Kafka timestamps have millisecond resolution and tie
        for many events at once, so within a batch the events are sorted by their own
        time (stable: ties keep the order they were appended in).
        """
        assert self.outputs is not None  # noqa: S101 - started
        parse, kinds = events.parse, self.kinds
        max_bytes = self.max_bytes
        valid: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        lists = list(batch.values())
        ordered = lists[0] if len(lists) == 1 else heapq.merge(*lists, key=_appended)
        parsed_events: list[Ingested] = []
        for record in ordered:
            kind = kinds[record.topic]
            try:
                parsed = parse(kind, record.value, max_bytes=max_bytes)
            except InvalidEvent as exc:
                self._dead_letter(record, exc.reason)
                dead[kind] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                self._dead_letter_bug(record, "validating", exc)
                dead[kind] += 1
                continue
            valid[kind] += 1
            parsed_events.append((parsed.ts, parsed, record.timestamp / 1000, record.value,
                                  (record.topic, record.partition, record.offset)))
        parsed_events.sort(key=_event_time)
        self.folder.route_events(parsed_events)
        for tp, records in batch.items():
            self.ingested[tp] = records[-1].offset + 1
        for kind, count in valid.items():
            self.metrics.valid[kind].inc(count)
        for kind, count in dead.items():
            self.metrics.dead_lettered[kind].inc(count)

    # routing ---------------------------------------------------------------------

    def flush(self, shard_id: int, group: Group) -> None:
        """Produce ``group`` for ``shard_id``; remember it if it comes back here."""
        assert self.outputs is not None  # noqa: S101 - started
        value = envelope.encode_group(group.envelopes)
        self.outputs.add(self.routed, None, value, shard_id)
        if group.mode == FOLDED:
            copies, views = self.folded.get(value, (0, len(group.envelopes)))
            self.folded[value] = (copies + 1, views)
            self.folded_views[shard_id] = self.folded_views.get(shard_id, 0) + views
        elif group.mode == ROUND_TRIP:
            self._decoded()[value] = group.views

    def _flush_groups(self) -> None:
        """Produce the open groups (at the end of each handled batch, before the send)."""
        for shard_id, group in self.folder.take_groups().items():
            self.flush(shard_id, group)

    def _forget(self) -> None:
        """Drop the groups waiting to be read back here (they never will be, or their
        shard's dedup window drops them)."""
        self.decoded.clear()
        self.folded.clear()
        self.folded_views.clear()

    def _decoded(self) -> dict[bytes, list[tuple[View, Event, float | None]]]:
        """The cache of groups produced here, its oldest half dropped when full (groups
        routed to shards other workers own are never read back here)."""
        decoded = self.decoded
        if len(decoded) > DECODED_LIMIT:
            for value in list(islice(decoded, len(decoded) // 2)):
                del decoded[value]
        return decoded

    # score -----------------------------------------------------------------------

    async def _restore(self) -> None:
        """Restore every owned shard not restored yet, all at once, before any record.

        Runs right after an assignment (not on a shard's first record), so start-up pays
        one round of restores instead of one per shard as records arrive, and ``/readyz``
        can wait for it. Runs under ``manager.lock``, so a revoke (which checkpoints under
        it) waits until the shards it may release are in place. Off the event loop: file
        reads and unpickling run in threads, changelog reads are async.
        """
        assert self.consumer is not None  # noqa: S101 - started
        missing = [shard_id for shard_id in sorted(self.owned)
                   if shard_id not in self.manager.shards and shard_id not in self.broken]
        if not missing:
            return
        results = await asyncio.gather(*(self.manager.ensure(shard_id) for shard_id in missing),
                                       return_exceptions=True)
        for shard_id, result in zip(missing, results, strict=True):
            if isinstance(result, CheckpointError):
                # Not the records' fault: stop consuming this shard rather than lose state.
                logger.critical("shard %d cannot be restored; not consuming it", shard_id,
                                exc_info=result)
                self.broken.add(shard_id)
                self.consumer.pause(TopicPartition(self.routed, shard_id))
            elif isinstance(result, BaseException):
                raise result
            else:
                self.drift_reported[shard_id] = dict(result.drift_detections)

    def restored(self) -> bool:
        """Whether every owned shard is restored (or known unrestorable)."""
        return all(shard_id in self.manager.shards or shard_id in self.broken
                   for shard_id in self.owned)

    async def _score(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]],
                     ) -> None:
        assert self.outputs is not None and self.consumer is not None  # noqa: S101
        shard_id = tp.partition
        if shard_id not in self.owned or shard_id in self.broken:
            return  # revoked while fetched: its new owner folds it
        try:
            shard = self.manager.shard(shard_id)
        except CheckpointError:
            # Not the records' fault: stop consuming this shard rather than lose state.
            logger.critical("shard %d cannot be restored; not consuming it", shard_id,
                            exc_info=True)
            self.broken.add(shard_id)
            self.consumer.pause(tp)
            return
        decoded, folded = self.decoded, self.folded
        # Groups to decode (produced elsewhere, or before a restart), first all at once:
        # the events of their references are looked up in one go.
        reads = {index: self._read(record.value) for index, record in enumerate(records)
                 if record.offset > shard.applied_offset and record.value not in folded
                 and record.value not in decoded}
        wanted = [reference for items, _ in reads.values() if not isinstance(items, str)
                  for reference in self._unseen(shard, items)]
        found, asked = await self._look_up(wanted), set(map(id, wanted))
        for index, record in enumerate(records):
            value = record.value
            if folded:
                known = folded.get(value)
                if known is not None:  # folded when it was routed: only the offset moves
                    copies, views = known
                    if copies == 1:
                        del folded[value]
                    else:
                        folded[value] = (copies - 1, views)
                    self.folded_views[shard_id] = self.folded_views.get(shard_id, 0) - views
                    if record.offset > shard.applied_offset:
                        shard.applied_offset = record.offset
                    continue
            group = decoded.pop(value, None)
            if record.offset <= shard.applied_offset:
                continue  # already in the state restored
            if group is not None:
                self.folder.fold_views(shard, group, record.offset)
            else:
                read = reads.get(index)
                if read is None:  # the same group twice in a batch: cached only once
                    read = self._read(value)
                    if not isinstance(read[0], str):
                        more = self._unseen(shard, read[0])
                        asked.update(map(id, more))
                        found.update(await self._look_up(more))
                items, invalid = read
                if isinstance(items, str):
                    self._dead_letter(record, items)
                    continue
                for item, reason in invalid:  # the rest of the group is still folded
                    self._dead_letter(record, reason, item)
                if not self.folder.fold_group(shard, items, record.offset):  # references
                    for view, parsed, arrived, source, origin in self._resolved(
                            record, items, found, asked):
                        self.folder.apply(shard, view, parsed, arrived, source, origin,
                                          record.offset)
            shard.applied_offset = record.offset
        self.manager.advance(shard_id, records[-1].offset + 1)

    @staticmethod
    def _read(value: bytes) -> tuple[list[envelope.Decoded] | str, list[tuple[bytes, str]]]:
        """A routed record's items and those set aside, or why it is not a group (also
        when our own decoding fails on it: the record is dead-lettered, not the stream)."""
        invalid: list[tuple[bytes, str]] = []
        try:
            return envelope.decode_group(value, invalid), invalid
        except InvalidEvent as exc:
            return exc.reason, []
        except Exception as exc:  # a bug must not stop the stream
            logger.exception("decoding a routed record failed")
            return _internal_error("decoding", exc), []

    @staticmethod
    def _unseen(shard: Shard, items: list[envelope.Decoded]) -> list[envelope.Reference]:
        """The references among ``items`` that ``shard`` has not folded (restored state
        holds the others, in its dedup window)."""
        return [item for item in items if isinstance(item, envelope.Reference)
                and not (shard.dedup_window and item.token in shard.seen)]

    async def _look_up(self, references: list[envelope.Reference],
                       ) -> dict[Place, tuple[bytes, float]]:
        """The input messages of ``references`` (after a crash, see ``streams.pipeline.lookup``)."""
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
                  ) -> list[tuple[View, Event, float | None, bytes | None, Place | None]]:
        """A group's views, its references replaced by their events (``found``) and
        those folded already (whose ``id`` was not ``asked`` for) left out; a reference
        whose message is gone or is not its event is dead-lettered."""
        views: list[tuple[View, Event, float | None, bytes | None, Place | None]] = []
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
                    parsed = events.parse(kind, source, max_bytes=self.max_bytes)
                except InvalidEvent as exc:
                    reason = f"routed reference to {where}: {exc.reason}"
                else:
                    if parsed.event_id != item.event_id:
                        reason = f"routed reference to {where}: another event is there"
                    elif view is None and (view := self._own_view(parsed, item.role)) is None:
                        reason = f"routed reference to {where}: the event has no {item.role!r}"
            if reason is not None or view is None:
                self._dead_letter(record, reason or "", item.encode())
                continue
            views.append((view, parsed, arrived, source, place))
        return views

    def _own_view(self, parsed: Event, role: str) -> View | None:
        """The view of ``parsed`` with ``role`` (as routed: label copies included)."""
        for view, _ in placements(parsed, self.partitions):
            if view.role == role:
                return view
        return None

    def fold_failed(self, shard: Shard, view: View, parsed: Event, arrived: float | None,
                    source: bytes | None, offset: int | None, exc: Exception) -> None:
        """A view our own code failed on: logged, and dead-lettered as an envelope
        (``offset``: that of the routed record it was read in), not the stream."""
        logger.error("folding a view for shard %d failed", shard.shard_id, exc_info=exc)
        assert self.outputs is not None  # noqa: S101 - started
        self.outputs.add(self.dead_topic, view.key.encode(), orjson.dumps(dead_letter(
            envelope.encode(view, parsed, arrived, source), self.routed, shard.shard_id,
            offset, _internal_error("scoring", exc))))

    def alerted(self, view: View, parsed: Event, alert: dict[str, Any]) -> None:
        """Send an alert a fold raised, count it and keep it for the HTTP API."""
        assert self.outputs is not None  # noqa: S101 - started
        self.outputs.add(self.alerts_topic, view.key.encode(), orjson.dumps(alert))
        self.metrics.alert(alert["pattern"], alert["severity"])
        self.store.put(alert, parsed.ts)

    def _report_drift(self) -> None:
        """Count the drift detections the owned shards made since the last batch."""
        reported = self.drift_reported
        for shard_id in self.owned:
            shard = self.manager.shards.get(shard_id)
            if shard is None:
                continue
            before = reported.setdefault(shard_id, {})  # set at restore (see _restore)
            if shard.drift_detections != before:
                for family, count in shard.drift_detections.items():
                    if count > before.get(family, 0):
                        self.metrics.drifted(family, count - before.get(family, 0))
                reported[shard_id] = dict(shard.drift_detections)

    # checkpoint and rebalance ------------------------------------------------------

    async def checkpoint(self, only: set[int] | None = None, shards: int | None = None) -> int:
        """Save dirty shards (of ``only``; at most ``shards``, least recently saved
        first) once their outputs are delivered, then commit.

        One shard at a time: under the lock, processing paused, queue every pending
        output and begin the shard's snapshot (offsets fixed, models and small parts
        pickled); then pickle its entities, dedup window and decision memory a slice at
        a time, processing going on between slices (the shard pickles an entity before
        changing it, so the snapshot stays the state it began at). Then: wait until the
        outputs queued before each snapshot began are acknowledged, write the files,
        commit. A snapshot is thus written only after every output it implies is in
        Kafka, and an input offset is committed only after the envelopes it led to are.
        A timer checkpoint (``shards`` given) pickles only when due (see
        ``SNAPSHOT_SHARE``). Returns the number of shards saved.
        """
        if self.consumer is None or self.outputs is None or self.failed:
            return 0
        manager = self.manager
        async with manager.saving:
            started = time.perf_counter()
            begun: list[Begun] = []
            snapshots: list[Snapshot] = []
            pickled = paused = 0.0  # pickling in all; the longest pause it imposed
            try:
                async with manager.lock:
                    if not (manager.dirty or self.durable) and self.ingested == self.committed:
                        return 0
                    inputs = dict(self.ingested)
                    scope = self.owned if only is None else only & self.owned
                    if shards is not None and time.monotonic() < self.snapshot_due:
                        shards = 0
                    targets = manager.stalest(scope, shards)
                    deliveries, items, took = await self._begin(targets[:1])
                for index, shard_id in enumerate(targets):
                    if index:  # a turn of the lock per shard: one pause at a time
                        async with manager.lock:
                            more, items, took = await self._begin([shard_id])
                        deliveries += more
                    begun += items
                    pickled, paused = pickled + took, max(paused, took)
                    for item in items:
                        # Paced on the timer; a revoke or a stop waits for it.
                        snapshot, took, longest = await self._slices(
                            item, SLICE_REST if shards is not None else 0.0)
                        pickled, paused = pickled + took, max(paused, longest)
                        if snapshot is not None:
                            snapshots.append(snapshot)
            except BaseException:
                manager.abandon(begun)  # a shard still owned stays dirty
                raise
            if targets:
                self.snapshot_due = time.monotonic() + pickled / SNAPSHOT_SHARE
            try:
                await settle(deliveries)
            except KafkaError as exc:
                self._fail(exc, "outputs were not delivered")
                return 0
            self.durable.update(inputs)
            saved = await manager.save(snapshots)
            self.durable.update({TopicPartition(self.routed, snap.shard_id): snap.commit_offset
                                 for snap in saved})
            await self._commit()
            if saved:
                manager.checkpoints += 1
                manager.last_checkpoint_seconds = time.perf_counter() - started
                manager.last_pause_seconds = paused
            return len(saved)

    async def _begin(self, targets: list[int],
                     ) -> tuple[list[asyncio.Future[Any]], list[Begun], float]:
        """Under the lock: queue pending outputs, take their deliveries, and begin the
        snapshots of ``targets``; the deliveries, the snapshots begun and the seconds
        spent beginning them."""
        assert self.outputs is not None  # noqa: S101 - started
        await self.outputs.send()
        deliveries = self.outputs.take()
        pickling = time.perf_counter()
        begun = self.manager.begin(targets)
        return deliveries, begun, time.perf_counter() - pickling

    async def _slices(self, begun: Begun, rest: float) -> tuple[Snapshot | None, float, float]:
        """Pickle a begun snapshot's entities a slice at a time, waiting ``rest`` times
        as long as each slice took before the next (``SLICE_REST``);
        the snapshot (None when its shard was released meanwhile), the seconds spent and
        the longest slice. No lock: a slice reads only entities unchanged since the snapshot
        began, and the state changes only on this thread."""
        spent = longest = 0.0
        while True:
            pickling = time.perf_counter()
            try:
                done = begun.step()
            except CheckpointError as exc:
                logger.warning("snapshot of shard %d dropped: %s", begun.shard_id, exc)
                return None, spent, longest
            took = time.perf_counter() - pickling
            spent, longest = spent + took, max(longest, took)
            if done:
                return begun.snapshot(), spent, longest
            await asyncio.sleep(took * rest)  # the consumer loop runs meanwhile

    async def _commit(self) -> None:
        assert self.consumer is not None  # noqa: S101 - started
        assigned = self.consumer.assignment()
        offsets = {tp: offset for tp, offset in self.durable.items()
                   if tp in assigned and self.committed.get(tp) != offset}
        self.durable.clear()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # The next checkpoint commits again; until then a restart re-reads a little
            # more (skipped by applied offsets and the dedup window).
            logger.warning("committing offsets failed: %r", exc)
            for tp, offset in offsets.items():
                self.durable.setdefault(tp, offset)
            return
        self.committed.update(offsets)

    async def revoke(self, revoked: Collection[TopicPartition]) -> None:
        """Before giving partitions up: checkpoint their shards and commit, then release."""
        self.rebalancing = True
        gone = {tp.partition for tp in revoked if tp.topic == self.routed}
        await self.checkpoint(only=gone)
        self.manager.release(gone)
        for shard_id in gone:
            self.drift_reported.pop(shard_id, None)
        self.owned.difference_update(gone)
        self.routed_partitions = [tp for tp in self.routed_partitions
                                  if tp.partition not in gone]
        self.broken.difference_update(gone)
        for tp in revoked:
            self.ingested.pop(tp, None)
            self.committed.pop(tp, None)
            self.durable.pop(tp, None)

    def assign(self, assigned: Collection[TopicPartition]) -> None:
        """Own the routed partitions assigned; the loop restores their shards before any record."""
        self.owned = {tp.partition for tp in assigned if tp.topic == self.routed}
        self.routed_partitions = [tp for tp in assigned if tp.topic == self.routed]
        self.rebalancing = False
        # Groups for shards owned before are not read back here; read back, those folded
        # here are dropped by the dedup window.
        self._forget()
        self.caught_up = False
        if self.consumer is not None and self.fold_here:
            self.consumer.pause(*self._inputs())  # until caught up (see _catch_up)
        self.ingest_paused = False  # a new assignment starts unpaused
        logger.info("owning shards %s", sorted(self.owned))
