"""Shard checkpoints in a compacted Kafka topic, so a worker on any host can restore a shard.

Snapshots are several MB (4 MB a shard at 200,000 events) and grow with the state, so
they are **chunked** rather than sent as one record: raising ``max.message.bytes`` on
the topic and ``max_request_size`` on the producer only moves the limit (the broker's
replica fetch, consumers' fetch sizes and every later growth of the state must follow
it), while chunks of :data:`CHUNK_BYTES` fit Kafka's defaults at any snapshot size.

Every snapshot is a **generation** with keys of its own, in the shard's partition
(partition = shard id), written in this order and each step acknowledged (acks=all):

* chunks, key ``<shard>/<generation>/<index>``, value a slice of the pickle;
* the manifest, key ``<shard>/<generation>``, value JSON: chunk count, size, SHA-256,
  the shard's ``applied_offset``;
* then tombstones for every key of the generations it supersedes.

No two generations share a key, so compaction never replaces a chunk of one snapshot
by a chunk of another: a save that dies half-way leaves orphan chunks (no manifest)
and the previous generation intact. A reader takes, of the generations whose manifest
it read, the one with the highest ``applied_offset`` (then the latest) whose chunks are
all present and hash to the manifest's digest; stale or partial chunks are never
mixed in. Orphans and superseded generations a reader finds are tombstoned after the
next save of that shard.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from monitor.errors import CheckpointError
from streams.topics import changelog_topic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from monitor.config import Settings

logger = logging.getLogger(__name__)

#: Bytes of snapshot per record: below the broker's and the producer's 1 MiB defaults.
CHUNK_BYTES = 512 * 1024
MANIFEST_FORMAT = 1
#: How long one save or one restore may take before it fails (a failed save is retried
#: by the next checkpoint; a failed restore leaves the shard paused, not empty).
TIMEOUT_SECONDS = 120.0
#: A read that sees nothing for this long before the end offset takes what it has: the
#: tail of a compacted log can be records the cleaner removed (faust-streaming #176).
IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class Manifest:
    """What one generation of a shard's snapshot consists of."""

    shard_id: int
    generation: str
    chunks: int
    size: int
    sha256: str
    applied_offset: int

    def encode(self) -> bytes:
        return orjson.dumps({"format": MANIFEST_FORMAT, "shard_id": self.shard_id,
                             "generation": self.generation, "chunks": self.chunks,
                             "size": self.size, "sha256": self.sha256,
                             "applied_offset": self.applied_offset})

    @classmethod
    def decode(cls, value: bytes) -> Manifest:
        """Raises ``ValueError`` on anything but a manifest of this format."""
        data: Any = orjson.loads(value)
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a manifest of this format")
        try:
            return cls(int(data["shard_id"]), str(data["generation"]), int(data["chunks"]),
                       int(data["size"]), str(data["sha256"]), int(data["applied_offset"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"manifest lacks or mistypes {exc}") from exc

    def keys(self) -> list[bytes]:
        """Every key of this generation: its chunks, then its manifest."""
        return [chunk_key(self.shard_id, self.generation, index)
                for index in range(self.chunks)] + [manifest_key(self.shard_id, self.generation)]


def manifest_key(shard_id: int, generation: str) -> bytes:
    return f"{shard_id}/{generation}".encode()


def chunk_key(shard_id: int, generation: str, index: int) -> bytes:
    return f"{shard_id}/{generation}/{index}".encode()


def encode_snapshot(shard_id: int, data: bytes, applied_offset: int,
                    chunk_bytes: int = CHUNK_BYTES, generation: str | None = None,
                    ) -> tuple[Manifest, list[tuple[bytes, bytes]]]:
    """A new generation for ``data``: its manifest and its chunk records, in write order."""
    generation = generation or uuid.uuid4().hex
    chunks = [(chunk_key(shard_id, generation, index), data[start:start + chunk_bytes])
              for index, start in enumerate(range(0, len(data), chunk_bytes))]
    manifest = Manifest(shard_id, generation, len(chunks), len(data),
                        hashlib.sha256(data).hexdigest(), applied_offset)
    return manifest, chunks


@dataclass(frozen=True)
class Restored:
    """The newest complete snapshot of a shard found in its changelog."""

    manifest: Manifest
    data: bytes

    @property
    def applied_offset(self) -> int:
        return self.manifest.applied_offset


@dataclass
class Reassembler:
    """Folds one shard's changelog records, in log order, into its newest complete snapshot.

    Tombstones drop what they delete, so memory holds about the live generations only.
    """

    shard_id: int
    manifests: dict[str, tuple[Manifest, int]] = field(default_factory=dict)
    chunks: dict[str, dict[int, bytes]] = field(default_factory=dict)

    def add(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        parts = key.decode(errors="replace").split("/") if key else []
        if len(parts) not in (2, 3) or parts[0] != str(self.shard_id):
            return  # another shard's record (or not ours at all)
        generation = parts[1]
        if len(parts) == 2:
            if value is None:
                self.manifests.pop(generation, None)
                return
            try:
                manifest = Manifest.decode(value)
            except ValueError as exc:
                logger.warning("shard %d: changelog record %d is not a manifest: %s",
                               self.shard_id, offset, exc)
                return
            if (manifest.shard_id, manifest.generation) == (self.shard_id, generation):
                self.manifests[generation] = (manifest, offset)
            return
        try:
            index = int(parts[2])
        except ValueError:
            return
        if value is None:
            self.chunks.get(generation, {}).pop(index, None)
        else:
            self.chunks.setdefault(generation, {})[index] = value

    def newest(self) -> Restored | None:
        """The newest complete generation; ``None`` when there is no manifest at all.

        Raises ``CheckpointError`` when there are manifests but none is complete: the
        shard had state that cannot be read, which must not become an empty shard.
        """
        ranked = sorted(self.manifests.values(),
                        key=lambda item: (item[0].applied_offset, item[1]), reverse=True)
        for manifest, offset in ranked:
            data = self._assemble(manifest)
            if data is not None:
                return Restored(manifest, data)
            logger.warning("shard %d: changelog generation %s (record %d) is incomplete",
                           self.shard_id, manifest.generation, offset)
        if ranked:
            raise CheckpointError(f"shard {self.shard_id}: no complete snapshot in the "
                                  f"changelog ({len(ranked)} incomplete)")
        return None

    def _assemble(self, manifest: Manifest) -> bytes | None:
        chunks = self.chunks.get(manifest.generation, {})
        if any(index not in chunks for index in range(manifest.chunks)):
            return None
        data = b"".join(chunks[index] for index in range(manifest.chunks))
        if len(data) != manifest.size or hashlib.sha256(data).hexdigest() != manifest.sha256:
            return None
        return data

    def keys(self) -> list[bytes]:
        """Every live key read: tombstoned once a newer generation is durable."""
        keys = [chunk_key(self.shard_id, generation, index)
                for generation, chunks in self.chunks.items() for index in chunks]
        return keys + [manifest_key(self.shard_id, generation) for generation in self.manifests]


class KafkaChangelog:
    """Saves and restores shard snapshots in the changelog topic (see the module docstring).

    :meth:`_append` and :meth:`_read` are the only Kafka I/O; the rest is bookkeeping.
    """

    def __init__(self, settings: Settings, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.settings, self.chunk_bytes = settings, chunk_bytes
        self.topic = changelog_topic(settings)
        self.partitions = settings.kafka.partitions
        self.producer: AIOKafkaProducer | None = None
        # shard -> keys a newer save makes obsolete (the last generation, restore leftovers)
        self.obsolete: dict[int, list[bytes]] = {}

    async def start(self) -> None:
        kafka = self.settings.kafka
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers,
                                    client_id=f"{kafka.app_id}-changelog", acks="all",
                                    linger_ms=0, max_batch_size=self.chunk_bytes + 4096)
        await producer.start()
        try:
            self.partitions = len(await producer.partitions_for(self.topic))
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer

    async def stop(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()

    def forget(self, shard_ids: Iterable[int]) -> None:
        """Shards another worker owns now: their cleanup is its business."""
        for shard_id in shard_ids:
            self.obsolete.pop(shard_id, None)

    async def save(self, shard_id: int, data: bytes, applied_offset: int) -> None:
        """Write a new generation, acknowledged by the broker; then drop the old ones."""
        manifest, chunks = encode_snapshot(shard_id, data, applied_offset, self.chunk_bytes)
        try:
            await self._append(shard_id, chunks)
            await self._append(shard_id, [(manifest_key(shard_id, manifest.generation),
                                           manifest.encode())])
        except (KafkaError, TimeoutError) as exc:
            raise CheckpointError(f"cannot write shard {shard_id} to {self.topic}: "
                                  f"{exc!r}") from exc
        obsolete = self.obsolete.get(shard_id, [])
        self.obsolete[shard_id] = manifest.keys()
        if obsolete:
            try:
                await self._append(shard_id, [(key, None) for key in obsolete])
            except (KafkaError, TimeoutError) as exc:
                logger.warning("shard %d: old changelog generations not deleted yet: %r",
                               shard_id, exc)
                self.obsolete[shard_id] += obsolete

    async def load(self, shard_id: int) -> Restored | None:
        """The newest complete snapshot in the changelog, read to its end; ``None`` if none."""
        assembler = Reassembler(shard_id)
        try:
            await self._read(shard_id, assembler.add)
        except (KafkaError, TimeoutError) as exc:
            raise CheckpointError(f"cannot read shard {shard_id} from {self.topic}: "
                                  f"{exc!r}") from exc
        restored = assembler.newest()
        self.obsolete[shard_id] = assembler.keys()
        return restored

    # Kafka I/O -------------------------------------------------------------------

    def _partition(self, shard_id: int) -> int:
        return shard_id % self.partitions

    async def _append(self, shard_id: int,
                      records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Append records to the shard's partition and wait until all are acknowledged."""
        if self.producer is None:
            raise CheckpointError("the changelog is not started")
        partition = self._partition(shard_id)
        deliveries = [await self.producer.send(self.topic, value, key=key, partition=partition)
                      for key, value in records]
        await asyncio.wait_for(asyncio.gather(*deliveries), TIMEOUT_SECONDS)

    async def _read(self, shard_id: int,
                    sink: Callable[[bytes | None, bytes | None, int], None]) -> None:
        """Feed every record of the shard's partition, up to its end offset, to ``sink``."""
        kafka = self.settings.kafka
        tp = TopicPartition(self.topic, self._partition(shard_id))
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None,
                                    client_id=f"{kafka.app_id}-restore",
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=8 << 20, fetch_max_bytes=32 << 20,
                                    fetch_max_wait_ms=100)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            deadline = time.monotonic() + TIMEOUT_SECONDS
            heard = time.monotonic()
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=200)
                now = time.monotonic()
                for record in batch.get(tp, []):
                    sink(record.key, record.value, record.offset)
                    heard = now
                if now - heard > IDLE_SECONDS:
                    logger.warning("shard %d: changelog read stopped at %d of %d (nothing "
                                   "more to fetch)", shard_id, await consumer.position(tp), end)
                    return
                if now > deadline:
                    raise TimeoutError(f"changelog of shard {shard_id} not read to its end")
        finally:
            await consumer.stop()
