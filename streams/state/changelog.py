"""Shard checkpoints in a compacted Kafka topic, so a worker on any host can restore a shard.

Snapshots are several MB (4 MB a shard at 200,000 events) and grow with the state, so
they are **compressed** (zlib level 1, :data:`CODEC`) and the compressed stream is
**chunked** rather than sent as one record: raising ``max.message.bytes`` on
the topic and ``max_request_size`` on the producer only moves the limit (the broker's
replica fetch, consumers' fetch sizes and every later growth of the state must follow
it), while chunks of :data:`CHUNK_BYTES` fit Kafka's defaults at any snapshot size.
Compressing, hashing and slicing (a save) and joining, hashing and decompressing (a
restore) run in a worker thread (zlib and hashlib release the GIL), not on the event
loop that processes events.

Every snapshot is a **generation** with keys of its own, in the shard's partition
(partition = shard id), written in this order and each step acknowledged (acks=all):

* chunks, key ``<shard>/<generation>/<index>``, value a slice of the stored (compressed)
  bytes;
* the manifest, key ``<shard>/<generation>``, value JSON: chunk count, ``codec``, size
  and SHA-256 *of the stored bytes* (so a reader checks the chunks before it spends
  anything on decompressing), ``raw_size`` of the pickle, the shard's ``applied_offset``.
  A manifest without ``codec`` (written before compression) is read as ``"none"``: the
  chunks are the pickle itself;
* then tombstones for every key of the generations it supersedes.

No two generations share a key, so compaction never replaces a chunk of one snapshot
by a chunk of another: a save that dies half-way leaves orphan chunks (no manifest)
and the previous generation intact. A reader takes, of the generations whose manifest
it read, the one with the highest ``applied_offset`` (then the latest) whose chunks are
all present, hash to the manifest's digest and decode (a known codec, a complete zlib
stream with nothing after it, ``raw_size`` bytes); stale or partial chunks are never
mixed in. Orphans and superseded generations a reader finds are tombstoned after the
next save of that shard.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from monitor.errors import CheckpointError
from streams.connection import client_options
from streams.topics import changelog_topic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from monitor.config import Settings

logger = logging.getLogger(__name__)

#: Stored (compressed) bytes per record: below the broker's and the producer's 1 MiB
#: defaults whatever the snapshot compresses to (zlib adds at most a few bytes per 16 KiB).
CHUNK_BYTES = 512 * 1024
#: Format 1 still: a reader that predates ``codec`` gets bytes that do not unpickle and
#: keeps the shard paused; a new format would make it see no manifest, an empty shard.
MANIFEST_FORMAT = 1
#: The codec of new generations; ``"none"`` is what manifests without the field mean.
CODEC = "zlib"
#: zlib level 1: a shard pickle to 23% of its size in 16 ms per 2.7 MB (level 6: 19%,
#: three times the time).
ZLIB_LEVEL = 1
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
    #: ``size`` and ``sha256`` are of the stored bytes (the chunks joined).
    size: int
    sha256: str
    applied_offset: int
    codec: str = "none"
    #: Bytes of the snapshot once decoded (``size`` when the codec is ``"none"``).
    raw_size: int | None = None

    def encode(self) -> bytes:
        return orjson.dumps({"format": MANIFEST_FORMAT, "shard_id": self.shard_id,
                             "generation": self.generation, "chunks": self.chunks,
                             "codec": self.codec, "size": self.size,
                             "raw_size": self.raw_size, "sha256": self.sha256,
                             "applied_offset": self.applied_offset})

    @classmethod
    def decode(cls, value: bytes) -> Manifest:
        """Raises ``ValueError`` on anything but a manifest of this format."""
        data: Any = orjson.loads(value)
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a manifest of this format")
        raw_size = data.get("raw_size")
        try:
            return cls(int(data["shard_id"]), str(data["generation"]), int(data["chunks"]),
                       int(data["size"]), str(data["sha256"]), int(data["applied_offset"]),
                       str(data.get("codec", "none")),
                       None if raw_size is None else int(raw_size))
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
                    codec: str = CODEC) -> tuple[Manifest, list[tuple[bytes, bytes]]]:
    """A new generation for ``data``: its manifest and its chunk records, in write order.

    CPU-bound (compression, SHA-256): :meth:`KafkaChangelog.save` runs it in a thread.
    """
    generation = generation or uuid.uuid4().hex
    if codec == "zlib":
        stored = zlib.compress(data, ZLIB_LEVEL)
    elif codec == "none":
        stored = data
    else:
        raise ValueError(f"unknown codec {codec!r}")
    chunks = [(chunk_key(shard_id, generation, index), stored[start:start + chunk_bytes])
              for index, start in enumerate(range(0, len(stored), chunk_bytes))]
    manifest = Manifest(shard_id, generation, len(chunks), len(stored),
                        hashlib.sha256(stored).hexdigest(), applied_offset, codec, len(data))
    return manifest, chunks


def decode_snapshot(manifest: Manifest, stored: bytes) -> bytes:
    """The snapshot from its stored bytes; raises ``ValueError`` if they do not decode."""
    if manifest.codec == "none":
        data = stored
    elif manifest.codec == "zlib":
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(stored) + inflater.flush()
        except zlib.error as exc:
            raise ValueError(f"corrupt zlib stream: {exc}") from exc
        if not inflater.eof or inflater.unused_data:
            raise ValueError("truncated zlib stream or bytes after its end")
    else:
        raise ValueError(f"unknown codec {manifest.codec!r}")
    if manifest.raw_size is not None and len(data) != manifest.raw_size:
        raise ValueError(f"{len(data)} bytes decoded, the manifest says {manifest.raw_size}")
    return data


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

        CPU-bound (SHA-256, decompression): :meth:`KafkaChangelog.load` runs it in a thread.
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
        stored = b"".join(chunks[index] for index in range(manifest.chunks))
        if (len(stored) != manifest.size
                or hashlib.sha256(stored).hexdigest() != manifest.sha256):
            return None
        try:
            return decode_snapshot(manifest, stored)
        except ValueError as exc:
            logger.warning("shard %d: changelog generation %s does not decode: %s",
                           self.shard_id, manifest.generation, exc)
            return None

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
        producer = AIOKafkaProducer(**client_options(kafka),
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
        manifest, chunks = await asyncio.to_thread(encode_snapshot, shard_id, data,
                                                   applied_offset, self.chunk_bytes)
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
        restored = await asyncio.to_thread(assembler.newest)
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
        consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None,
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
