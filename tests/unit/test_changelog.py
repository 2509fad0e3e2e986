"""The Kafka checkpoint store without Kafka: chunks, generations, compaction, restore choice.

``MemoryChangelog`` is :class:`streams.state.changelog.KafkaChangelog` with its two I/O methods
over a list standing in for one compacted partition per shard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaError

from monitor.config import load_settings
from monitor.contract.events import from_dict
from monitor.errors import CheckpointError, ConfigError
from monitor.routing.views import placements
from monitor.state.checkpoint import FileCheckpointStore
from monitor.tools.sample import generate
from streams.state.changelog import (
    CHUNK_BYTES,
    KafkaChangelog,
    Manifest,
    Reassembler,
    chunk_key,
    encode_snapshot,
    manifest_key,
)
from streams.state.shards import ShardManager
from tests.unit.test_shard import make_settings

Record = tuple[bytes, bytes | None]


def _log(*generations: tuple[Manifest, list[tuple[bytes, bytes]]]) -> list[Record]:
    records: list[Record] = []
    for manifest, chunks in generations:
        records += chunks
        records.append((manifest_key(manifest.shard_id, manifest.generation), manifest.encode()))
    return records


def _read(shard_id: int, records: Sequence[Record]) -> Reassembler:
    assembler = Reassembler(shard_id)
    for offset, (key, value) in enumerate(records):
        assembler.add(key, value, offset)
    return assembler


def _compact(records: Sequence[Record]) -> list[Record]:
    """What the log cleaner leaves: the last record of each key, tombstones gone."""
    last = {key: index for index, (key, _) in enumerate(records)}
    return [(key, value) for index, (key, value) in enumerate(records)
            if last[key] == index and value is not None]


# --- chunks and generations --------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 95])
def test_a_snapshot_splits_into_chunks_and_reassembles(size: int) -> None:
    data = bytes(range(256))[:size]
    manifest, chunks = encode_snapshot(3, data, 41, chunk_bytes=10, codec="none")
    assert manifest.chunks == len(chunks) == -(-size // 10)
    assert all(len(value) <= 10 for _, value in chunks)
    restored = _read(3, _log((manifest, chunks))).newest()
    assert restored is not None
    assert (restored.data, restored.applied_offset) == (data, 41)


@pytest.mark.parametrize("size", [0, 1, 95, 5000])
def test_a_compressed_snapshot_round_trips_in_chunks_of_the_compressed_bytes(
        size: int) -> None:
    data = pickle.dumps([bytes(range(256))[: n % 256] for n in range(size)])
    manifest, chunks = encode_snapshot(3, data, 41, chunk_bytes=64)
    stored = b"".join(value for _, value in chunks)
    assert (manifest.codec, manifest.raw_size, manifest.size) == ("zlib", len(data), len(stored))
    assert zlib.decompress(stored) == data
    assert manifest.chunks == len(chunks) == -(-len(stored) // 64)
    assert all(len(value) <= 64 for _, value in chunks)
    assert Manifest.decode(manifest.encode()) == manifest
    restored = _read(3, _log((manifest, chunks))).newest()
    assert restored is not None
    assert (restored.data, restored.applied_offset) == (data, 41)


def test_a_shard_snapshot_compresses_below_a_chunk() -> None:
    """Pickles compress well: a snapshot that took several chunks takes fewer."""
    data = pickle.dumps({f"account-{n}": {"amounts": [n * 1.5] * 20, "country": "NL"}
                         for n in range(20000)})
    assert len(data) > CHUNK_BYTES
    manifest, _ = encode_snapshot(0, data, 1)
    assert manifest.size < len(data) / 3 and manifest.chunks < -(-len(data) // CHUNK_BYTES)


def test_a_manifest_without_a_codec_is_an_uncompressed_generation() -> None:
    """Generations written before compression restore as they are."""
    data = b"old pickle" * 5
    manifest, chunks = encode_snapshot(4, data, 12, chunk_bytes=8, codec="none")
    legacy = {"format": 1, "shard_id": 4, "generation": manifest.generation,
              "chunks": manifest.chunks, "size": manifest.size, "sha256": manifest.sha256,
              "applied_offset": 12}
    decoded = Manifest.decode(orjson.dumps(legacy))
    assert (decoded.codec, decoded.raw_size) == ("none", None)
    log: list[Record] = [*chunks, (manifest_key(4, manifest.generation), orjson.dumps(legacy))]
    restored = _read(4, log).newest()
    assert restored is not None and (restored.data, restored.applied_offset) == (data, 12)


def _with_stored(manifest: Manifest, stored: bytes, chunk_bytes: int = 16,
                 **changes: object) -> tuple[Manifest, list[tuple[bytes, bytes]]]:
    """A generation whose chunks are ``stored`` and whose digest matches them."""
    chunks = [(chunk_key(manifest.shard_id, manifest.generation, index),
               stored[start:start + chunk_bytes])
              for index, start in enumerate(range(0, len(stored), chunk_bytes))]
    fields: dict[str, object] = {"chunks": len(chunks), "size": len(stored),
                                 "sha256": hashlib.sha256(stored).hexdigest(), **changes}
    return dataclasses.replace(manifest, **fields), chunks  # type: ignore[arg-type]


def test_compressed_data_that_does_not_decode_falls_back_to_the_previous_generation(
        ) -> None:
    data = pickle.dumps(list(range(500)))
    good = encode_snapshot(0, b"good" * 40, 5, chunk_bytes=16, generation="g1")
    manifest, chunks = encode_snapshot(0, data, 9, chunk_bytes=16, generation="g2")
    stored = b"".join(value for _, value in chunks)
    flipped = bytearray(stored)
    flipped[len(stored) // 2] ^= 0xFF
    bad = [
        _with_stored(manifest, bytes(flipped)),  # the digest matches, the stream does not
        _with_stored(manifest, stored[:-5]),  # truncated stream
        _with_stored(manifest, stored + b"junk"),  # bytes after the end of the stream
        _with_stored(manifest, zlib.compress(data[:-1], 1)),  # not raw_size bytes
        _with_stored(manifest, stored, codec="brotli"),  # a codec this reader lacks
    ]
    for generation in bad:
        restored = _read(0, _log(good, generation)).newest()
        assert restored is not None
        assert (restored.data, restored.manifest.generation) == (b"good" * 40, "g1")
    corrupt_chunk = _log(good, (manifest, [(chunks[0][0], b"X" * len(chunks[0][1])),
                                           *chunks[1:]]))
    restored = _read(0, corrupt_chunk).newest()  # a digest mismatch, as before
    assert restored is not None and restored.manifest.generation == "g1"
    with pytest.raises(CheckpointError, match="no complete snapshot"):
        _read(0, _log(bad[0])).newest()  # and never an empty shard


def test_stale_chunks_of_an_older_generation_never_mix_in() -> None:
    old = encode_snapshot(1, b"A" * 30, 10, chunk_bytes=10, generation="old")
    new = encode_snapshot(1, b"B" * 15, 20, chunk_bytes=10, generation="new")
    records = _log(old, new)
    for log in (records, _compact(records)):
        restored = _read(1, log).newest()
        assert restored is not None and restored.data == b"B" * 15


def test_a_save_that_died_half_way_leaves_the_previous_generation_readable() -> None:
    done = encode_snapshot(2, b"done" * 10, 5, chunk_bytes=8, generation="g1")
    _, chunks = encode_snapshot(2, b"half" * 10, 9, chunk_bytes=8, generation="g2")
    records = _log(done) + chunks[:2]  # no manifest: the writer died
    for log in (records, _compact(records)):
        restored = _read(2, log).newest()
        assert restored is not None
        assert (restored.data, restored.manifest.generation) == (b"done" * 10, "g1")


def test_an_incomplete_or_corrupt_generation_falls_back_to_the_previous_one() -> None:
    good = encode_snapshot(0, b"good" * 10, 5, chunk_bytes=8, generation="g1")
    manifest, chunks = encode_snapshot(0, b"next" * 10, 9, chunk_bytes=8, generation="g2")
    missing = _log(good, (manifest, chunks[1:]))
    corrupt = _log(good, (manifest, [(chunks[0][0], b"XXXXXXXX"), *chunks[1:]]))
    for log in (missing, corrupt):
        restored = _read(0, log).newest()
        assert restored is not None and restored.data == b"good" * 10


def test_manifests_without_a_complete_generation_are_an_error_not_an_empty_shard() -> None:
    manifest, chunks = encode_snapshot(0, b"data" * 10, 9, chunk_bytes=8)
    with pytest.raises(CheckpointError, match="no complete snapshot"):
        _read(0, _log((manifest, chunks[:-1]))).newest()
    assert _read(0, []).newest() is None


def test_the_highest_applied_offset_wins_over_a_later_write() -> None:
    ahead = encode_snapshot(0, b"ahead", 90, generation="a")
    behind = encode_snapshot(0, b"behind", 40, generation="b")  # a late, stale writer
    restored = _read(0, _log(ahead, behind)).newest()
    assert restored is not None and restored.data == b"ahead"


def test_other_shards_and_foreign_keys_in_the_partition_are_ignored() -> None:
    mine = encode_snapshot(1, b"mine", 3, generation="g")
    other = encode_snapshot(5, b"other", 7, generation="g")
    log = [*_log(mine, other), (b"junk", b"x"), (b"1/g/x", b"y"), (b"1/h", b"not json")]
    restored = _read(1, log).newest()
    assert restored is not None and restored.data == b"mine"
    assert set(_read(1, log).keys()) == {chunk_key(1, "g", 0), manifest_key(1, "g")}


def test_manifest_decoding_refuses_other_formats() -> None:
    manifest, _ = encode_snapshot(0, b"x", 0)
    assert Manifest.decode(manifest.encode()) == manifest
    for bad in (b"[]", b'{"format": 2}', b'{"format": 1, "shard_id": 0}'):
        with pytest.raises(ValueError):
            Manifest.decode(bad)


# --- the store's bookkeeping over an in-memory log ------------------------------------


class MemoryChangelog(KafkaChangelog):
    """One list per partition instead of Kafka; ``fail`` makes appends raise."""

    def __init__(self, chunk_bytes: int = 64) -> None:
        super().__init__(make_settings(), chunk_bytes=chunk_bytes)
        self.log: dict[int, list[Record]] = {}
        self.fail = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def _append(self, shard_id: int, records: Sequence[Record]) -> None:
        if self.fail:
            raise KafkaError("broker gone")
        self.log.setdefault(self._partition(shard_id), []).extend(records)

    async def _read(self, shard_id: int,
                    sink: Callable[[bytes | None, bytes | None, int], None]) -> None:
        for offset, (key, value) in enumerate(self.log.get(self._partition(shard_id), [])):
            sink(key, value, offset)

    def compact(self) -> None:
        self.log = {partition: _compact(records) for partition, records in self.log.items()}


async def test_saves_supersede_and_delete_older_generations() -> None:
    store = MemoryChangelog(chunk_bytes=4)
    await store.save(2, b"first snapshot", 10)
    await store.save(2, b"second snapshot", 20)
    store.compact()
    [manifest] = [Manifest.decode(v) for k, v in store.log[2] if v and k.count(b"/") == 1]
    assert manifest.applied_offset == 20
    assert {key for key, _ in store.log[2]} == set(manifest.keys())
    reader = MemoryChangelog(chunk_bytes=4)
    reader.log = store.log
    restored = await reader.load(2)
    assert restored is not None and restored.data == b"second snapshot"
    await reader.save(2, b"third", 30)  # a new owner cleans up what it restored from
    reader.compact()
    assert len([k for k, _ in reader.log[2] if k.count(b"/") == 1]) == 1


async def test_a_failed_save_raises_and_keeps_what_it_would_delete() -> None:
    store = MemoryChangelog()
    await store.save(0, b"kept", 1)
    kept = list(store.obsolete[0])
    store.fail = True
    with pytest.raises(CheckpointError):
        await store.save(0, b"lost", 2)
    assert store.obsolete[0] == kept
    restored = await store.load(0)
    assert restored is not None and restored.data == b"kept"


# --- ShardManager with a changelog ---------------------------------------------------


def _fold(manager: ShardManager, shard_id: int, start: int, stop: int) -> None:
    """Fold the views of ``shard_id`` with offsets ``start`` to ``stop - 1``."""
    offset = 0
    shard = manager.shard(shard_id)
    for record in generate():
        if "value" not in record:
            continue
        event = from_dict(record["topic"], record["value"])
        for view, owner in placements(event, 4):
            if owner == shard_id:
                if start <= offset < stop:
                    shard.process(view, event, offset)
                offset += 1
    manager.advance(shard_id, stop)


async def test_a_worker_with_an_empty_directory_restores_from_the_changelog(
        tmp_path: Path) -> None:
    log = MemoryChangelog(chunk_bytes=1024)
    first = ShardManager(make_settings(), FileCheckpointStore(tmp_path / "a"), log)
    await first.ensure(1)
    _fold(first, 1, 0, 30)
    saved = await first.save(first.snapshot())
    assert [snap.commit_offset for snap in saved] == [30]
    [manifest] = [Manifest.decode(v) for k, v in log.log[1] if v and k.count(b"/") == 1]
    assert saved[0].data is not None and manifest.raw_size == len(saved[0].data)
    assert manifest.codec == "zlib" and manifest.size < len(saved[0].data)
    assert manifest.chunks > 1  # several chunks
    processed = first.shard(1).processed
    first.release([1])
    other_host = ShardManager(make_settings(), FileCheckpointStore(tmp_path / "b"), log)
    with pytest.raises(CheckpointError):
        other_host.shard(1)  # never straight from a possibly stale file
    shard = await other_host.ensure(1)
    assert (shard.applied_offset, shard.processed) == (29, processed)
    assert shard.snapshot() == saved[0].data


async def test_the_newer_of_file_and_changelog_is_restored(tmp_path: Path) -> None:
    log = MemoryChangelog(chunk_bytes=4096)
    files = FileCheckpointStore(tmp_path)
    manager = ShardManager(make_settings(), files, log)
    await manager.ensure(0)
    _fold(manager, 0, 0, 20)
    [at_20] = await manager.save(manager.snapshot())
    _fold(manager, 0, 20, 35)
    [at_35] = manager.snapshot()
    assert at_35.data is not None
    files.save(0, at_35.data)  # the file is newer than the changelog (a cache ahead)
    manager.release([0])
    assert (await ShardManager(make_settings(), files, log).ensure(0)).applied_offset == 34
    files.save(0, at_20.data or b"")  # now the changelog is newer (another host went on)
    await log.save(0, at_35.data, at_35.applied_offset)
    assert (await ShardManager(make_settings(), files, log).ensure(0)).applied_offset == 34
    assert (await ShardManager(make_settings(), files).ensure(0)).applied_offset == 19


async def test_an_unreadable_file_falls_back_to_the_changelog_or_fails(tmp_path: Path) -> None:
    (tmp_path / "shard-0003.ckpt").write_bytes(b"not a pickle")
    log = MemoryChangelog(chunk_bytes=4096)
    with pytest.raises(CheckpointError):
        await ShardManager(make_settings(), FileCheckpointStore(tmp_path), log).ensure(3)
    writer = ShardManager(make_settings(), FileCheckpointStore(tmp_path / "w"), log)
    await writer.ensure(3)
    _fold(writer, 3, 0, 10)
    await writer.save(writer.snapshot())
    restored = await ShardManager(make_settings(), FileCheckpointStore(tmp_path), log).ensure(3)
    assert restored.applied_offset == 9


async def test_a_changelog_write_that_fails_is_not_committed_nor_cached(tmp_path: Path) -> None:
    log = MemoryChangelog()
    manager = ShardManager(make_settings(), FileCheckpointStore(tmp_path), log)
    await manager.ensure(0)
    _fold(manager, 0, 0, 10)
    log.fail = True
    assert await manager.save(manager.snapshot()) == []
    assert manager.dirty == {0} and manager.pending == {0: 10}
    assert not (tmp_path / "shard-0000.ckpt").exists()


def test_the_store_setting_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("processing:\n  checkpoint_store: s3\n")
    with pytest.raises(ConfigError, match=r"processing\.checkpoint_store: Input should be"):
        load_settings(path)
    path.write_text("processing:\n  checkpoint_store: file\n")
    assert load_settings(path).processing.checkpoint_store == "file"
    assert make_settings().processing.checkpoint_store == "kafka"
