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

This module is the loop: it consumes and dispatches. Each job is a part of its own, and
the parts share one :class:`~streams.pipeline.clients.Clients`: ingest
(:mod:`streams.pipeline.ingest`), score (:mod:`streams.pipeline.score`), what folding
hands back (:mod:`streams.pipeline.sink`), flow control (:mod:`streams.pipeline.flow`),
checkpoints and commits (:mod:`streams.pipeline.checkpoint`) and rebalances
(:mod:`streams.pipeline.rebalance`).

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
import logging
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from monitor.processing.folding import Folder
from monitor.processing.readback import ReadBack
from streams.connection import client_options
from streams.pipeline.checkpoint import Checkpointer, Offsets
from streams.pipeline.clients import Clients
from streams.pipeline.flow import DECODED_LIMIT, FlowControl
from streams.pipeline.ingest import Ingest
from streams.pipeline.lookup import InputLookup
from streams.pipeline.outputs import Outputs
from streams.pipeline.rebalance import Rebalance
from streams.pipeline.retries import RestoreRetries
from streams.pipeline.score import Scorer
from streams.pipeline.sink import DeadLetters, WorkerSink
from streams.topics import kind_by_topic

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine

    from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
    from aiokafka.structs import ConsumerRecord

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)


def _why(exc: BaseException) -> str:
    """One line on a failed restore: the error's type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

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
#: Bytes one fetch may bring of one partition: a routed group can be 192 KiB
#: (``monitor.processing.folding.GROUP_BYTES``), and at Kafka's 1 MiB default the read-back of the
#: worker's own groups fell behind.
PARTITION_FETCH_BYTES = 4 << 20

class Pipeline:
    """Consumer, producer and loop of one worker: opened by :meth:`start`, closed by
    :meth:`stop`; :meth:`checkpoint` runs on the app's timer."""

    def __init__(self, settings: Settings, manager: ShardManager, metrics: Metrics,
                 assignor: AbstractPartitionAssignor | None = None) -> None:
        self.settings, self.manager, self.metrics = settings, manager, metrics
        # The group's assignment strategy (streams.web.owners: it also tells every
        # worker which worker owns each shard); aiokafka's round robin when None.
        self.assignor = assignor
        self.kinds = kind_by_topic(settings)
        self.routed = settings.kafka.topic("routed")
        self.decisions_topic = settings.kafka.topic("decisions")
        self.alerts_topic = settings.kafka.topic("alerts")
        self.dead_topic = settings.kafka.topic("dead_letter")
        self.clients = Clients()
        self.lookup = InputLookup(settings)  # events behind references, after a crash
        self.dead = DeadLetters(self.clients, self.dead_topic,
                                settings.processing.dead_letter_prefix_bytes)
        # Groups produced for owned shards, until they are read back (see "Folding here").
        self.readback = ReadBack(DECODED_LIMIT)
        self.sink = WorkerSink(self.clients, self.routed, self.alerts_topic, self.readback,
                               manager, metrics, self.dead)
        # Routes and folds each view (monitor.processing.folding); it keeps the owned and
        # broken shards, whether it may fold here and whether caught up (see the
        # properties below) and the open groups. It holds manager.shards and
        # metrics.tally, so neither is ever replaced.
        self.folder = Folder(settings.kafka.partitions, manager.shards,
                             settings.processing.dedup_window > 0, self.decisions_topic,
                             self.sink, metrics.tally)
        self.ingest = Ingest(settings, self.folder, metrics, self.dead)
        self.scorer = Scorer(settings, manager, self.folder, self.readback, self.lookup,
                             metrics, self.dead, self._unreadable)
        self.flow = FlowControl(self.clients, self.routed, self.readback, self.folder,
                                settings.processing.dedup_window)
        self.offsets = Offsets()
        self.checkpointer = Checkpointer(self.routed, self.clients, manager, self.offsets,
                                         lambda: self.folder.owned, lambda: self.failed,
                                         self._fail)
        self.drift_reported: dict[int, dict[str, int]] = {}  # shard -> detections counted
        self.rebalance = Rebalance(self.clients, self.routed, self.folder, manager,
                                   self.offsets, self.readback, self.flow, self.checkpointer,
                                   self.drift_reported)
        self.retries = RestoreRetries(settings.processing.restore_backoff_initial_seconds,
                                      settings.processing.restore_backoff_max_seconds)
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

    @property
    def rebalancing(self) -> bool:
        """Whether the group is rebalancing (from start-up or a revoke until assigned)."""
        return self.rebalance.rebalancing

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        return self.clients.consumer

    @consumer.setter
    def consumer(self, consumer: AIOKafkaConsumer | None) -> None:
        self.clients.consumer = consumer

    @property
    def outputs(self) -> Outputs | None:
        return self.clients.outputs

    @outputs.setter
    def outputs(self, outputs: Outputs | None) -> None:
        self.clients.outputs = self.folder.outputs = outputs

    # lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        kafka = self.settings.kafka
        clients = self.clients
        clients.producer = producer = AIOKafkaProducer(
            **client_options(kafka), client_id=f"{kafka.app_id}-worker",
            acks="all", linger_ms=0, max_batch_size=256 * 1024,
            max_request_size=4 << 20)
        clients.consumer = consumer = AIOKafkaConsumer(
            **client_options(kafka), group_id=kafka.app_id,
            client_id=f"{kafka.app_id}-worker", enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_bytes=16 << 20,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_wait_ms=FETCH_WAIT_MS, fetch_min_bytes=FETCH_MIN_BYTES,
            session_timeout_ms=int(kafka.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_seconds * 1000),
            **({"partition_assignment_strategy": (self.assignor,)}
               if self.assignor is not None else {}))
        await self.manager.start()
        await producer.start()
        self.outputs = outputs = Outputs(producer, soft=[self.dead_topic],
                                         lost=self._dead_letters_lost)
        await outputs.prepare(self.routed, self.decisions_topic, self.alerts_topic,
                              self.dead_topic)
        await consumer.start()
        consumer.subscribe([*self.kinds, self.routed], listener=self.rebalance.listener())
        self.running = True
        self.task = asyncio.create_task(self._run(), name="fraudmon-pipeline")

    def _dead_letters_lost(self, topic: str, count: int, exc: BaseException) -> None:
        """Dead letters the broker refused after retries: counted and logged, not fatal."""
        self.metrics.dead_letter_write_failures.inc(count)
        logger.error("%d dead letters could not be written to %s: %s", count, topic,
                     _why(exc))

    async def stop(self) -> None:
        """Finish the batch in hand, checkpoint every owned shard, commit, leave."""
        self.running = False
        if self.task is not None:
            await asyncio.wait([self.task])
        clients = self.clients
        consumer, producer = clients.consumer, clients.producer
        if consumer is not None and producer is not None:
            try:
                if not self.failed:
                    saved = await self.checkpoint()
                    logger.info("final checkpoint: %d shards saved", saved)
            finally:
                clients.consumer = clients.producer = None
                self.outputs = None
                self.manager.release(set(self.owned))
                self.owned.clear()
                self.rebalance.routed_partitions = []
                await consumer.stop()
                await producer.stop()
                await self.lookup.stop()
                await self.manager.stop()

    def assignment(self) -> set[TopicPartition]:
        consumer = self.clients.consumer
        return set(consumer.assignment()) if consumer is not None else set()

    async def checkpoint(self, only: set[int] | None = None, shards: int | None = None) -> int:
        """Save dirty shards and commit (see :meth:`Checkpointer.checkpoint`)."""
        return await self.checkpointer.checkpoint(only, shards)

    async def revoke(self, revoked: Collection[TopicPartition]) -> None:
        await self.rebalance.revoke(revoked)

    def assign(self, assigned: Collection[TopicPartition]) -> None:
        self.rebalance.assign(assigned)

    async def _run(self) -> None:
        clients = self.clients
        assert clients.consumer is not None and clients.outputs is not None  # noqa: S101
        outputs = clients.outputs
        try:
            while self.running:
                if self.retries.due():
                    self._retry_restores()
                if self._restore_pending():
                    async with self.manager.lock:
                        await self._restore()
                if not self.caught_up:
                    await self._catch_up()
                batch = await self._poll()
                if not batch:
                    if self.flow.paused:  # nothing came back to score: let ingest go on
                        self.flow.resume(forget=True)
                    continue
                async with self.manager.lock:
                    await self._restore()  # shards assigned while the fetch was in flight
                    inputs = {tp: records for tp, records in batch.items()
                              if tp.topic != self.routed}
                    if inputs:
                        self.offsets.ingested.update(self.ingest.handle(inputs))
                    for tp, records in batch.items():
                        if tp.topic == self.routed:
                            await self.scorer.score(tp, records)
                    self.folder.close_groups()
                    await outputs.send()
                    self._report_drift()
                self.flow.throttle()
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
        routed = self.rebalance.routed_partitions
        if routed:
            batch = await consumer.getmany(*routed, timeout_ms=0,
                                           max_records=ROUTED_BATCH)
        room = MAX_BATCH - sum(map(len, batch.values()))
        more = await consumer.getmany(timeout_ms=0 if batch else POLL_MS, max_records=room)
        for tp, records in more.items():
            if tp in batch:
                batch[tp] += records
            else:
                batch[tp] = records
        return batch

    async def _catch_up(self) -> None:
        """Start folding here once the owned routed partitions are read to their end.

        Until then ingest is paused, so the only envelopes in flight are onward views of
        the records being caught up on, which go the round trip (the read-back cache).
        """
        consumer = self.clients.reader()
        if self.fold_here and not self.rebalancing:
            if self.readback.decoded or self._restore_pending():
                return
            for shard_id in self.owned - self.broken:
                tp = TopicPartition(self.routed, shard_id)
                high = consumer.highwater(tp)
                if high is None or await consumer.position(tp) < high:
                    return  # not fetched yet, or records left to read
        self.caught_up = True
        if not self.flow.paused:
            consumer.resume(*self.clients.inputs(self.routed))

    def _fail(self, exc: BaseException, what: str) -> None:
        logger.critical("%s; stopping the worker", what, exc_info=exc)
        self.failed = True
        self.running = False
        if self.on_crash is not None and self._crashing is None:
            self._crashing = asyncio.create_task(self.on_crash(exc))

    def _unreadable(self, shard_id: int, exc: BaseException) -> None:
        """Stop consuming a shard whose restore failed, rather than lose state (not the
        records' fault), and retry it with backoff (:class:`RestoreRetries`)."""
        self.broken.add(shard_id)
        self.clients.reader().pause(TopicPartition(self.routed, shard_id))
        delay = self.retries.failed(shard_id)
        self.metrics.shard_restore_failures.inc()
        logger.error("shard %d cannot be restored (%s); not consuming it, retrying in %.0f s",
                     shard_id, _why(exc), delay)

    def _retry_restores(self) -> None:
        """Give the shards whose retry is due another restore, in the loop's next turn."""
        for shard_id in self.retries.take_due():
            if shard_id in self.broken and shard_id in self.owned:
                self.broken.discard(shard_id)
                self.clients.reader().resume(TopicPartition(self.routed, shard_id))

    async def _restore(self) -> None:
        """Restore every owned shard not restored yet, all at once, before any record.

        Runs right after an assignment (not on a shard's first record), so start-up pays
        one round of restores instead of one per shard as records arrive, and ``/readyz``
        can wait for it. Runs under ``manager.lock``, so a revoke (which checkpoints under
        it) waits until the shards it may release are in place. Off the event loop: file
        reads and unpickling run in threads, changelog reads are async. A shard that fails
        to restore, for whatever reason, is paused and retried with backoff; the others
        go on.
        """
        missing = [shard_id for shard_id in sorted(self.owned)
                   if shard_id not in self.manager.shards and shard_id not in self.broken]
        if not missing:
            return
        results = await asyncio.gather(*(self.manager.ensure(shard_id) for shard_id in missing),
                                       return_exceptions=True)
        for shard_id, result in zip(missing, results, strict=True):
            if isinstance(result, Exception):
                self._unreadable(shard_id, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                self.retries.restored(shard_id)
                self.drift_reported[shard_id] = dict(result.drift_detections)

    def _restore_pending(self) -> bool:
        """Whether an owned shard waits for its first restore attempt."""
        return any(shard_id not in self.manager.shards and shard_id not in self.broken
                   for shard_id in self.owned)

    def restored(self) -> bool:
        """Whether every owned shard is restored (``/readyz``: a shard whose restore
        failed and waits for its retry is not)."""
        return all(shard_id in self.manager.shards for shard_id in self.owned)

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
