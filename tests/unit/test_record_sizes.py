"""Every record the worker writes fits the ``max.message.bytes`` of the topics the project
creates (streams.topics), at the largest input the settings allow: a broker that refuses
a record fails its whole batch, and the worker would read the same input again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from monitor.config import ProcessingSettings, Settings
from monitor.contract.events import parse
from monitor.contract.records import dead_letter, decision
from monitor.detection.entities.base import EntityState
from monitor.outputs.metrics import Metrics
from monitor.processing.folding import GROUP_BYTES
from monitor.routing.views import views
from monitor.state.checkpoint import FileCheckpointStore
from streams.pipeline.loop import Pipeline
from streams.state.changelog import CHUNK_BYTES, encode_snapshot
from streams.state.shards import ShardManager
from streams.topics import INPUT_MESSAGE_BYTES, OUTPUT_MESSAGE_BYTES, message_bytes

RECORD_OVERHEAD = 1024
"""Room left for the key, headers and batch framing of one record."""
LARGEST_EVENT = ProcessingSettings.model_fields["max_event_bytes"].metadata[1].le
LARGEST_PREFIX = ProcessingSettings.model_fields["dead_letter_prefix_bytes"].metadata[1].le


def fits(value: bytes) -> bool:
    return len(value) + RECORD_OVERHEAD <= OUTPUT_MESSAGE_BYTES


def test_input_topics_take_more_than_the_worker_accepts_and_outputs_are_bounded() -> None:
    assert message_bytes("payments") == message_bytes("labels") == INPUT_MESSAGE_BYTES
    assert message_bytes("dead_letter") == message_bytes("routed") == OUTPUT_MESSAGE_BYTES
    assert INPUT_MESSAGE_BYTES > 2 << 20 > LARGEST_EVENT  # a 2 MB message reaches the worker


def test_a_dead_letter_of_the_worst_originals_fits_at_the_largest_prefix() -> None:
    worst = {
        "binary": bytes(range(256)) * (8 << 12),  # 2 MiB, not UTF-8: kept as hex
        "control characters": b"\x01" * (1 << 20),  # JSON-escaped six bytes each
        "quotes": b'"' * (1 << 20),
        "four-byte characters": "\U0001f600".encode() * (1 << 18),
    }
    for name, original in worst.items():
        letter = dead_letter(original, "fraudmon-payments", 3, 10**12, "x" * 2000,
                             prefix=LARGEST_PREFIX)
        value = orjson.dumps(letter)
        assert fits(value), (name, len(value))
        assert letter["original_bytes"] == len(original) and letter["original_truncated"]
        assert len(letter["original_sha256"]) == 64


def test_a_cut_through_a_character_drops_it_and_stays_text() -> None:
    letter = dead_letter("€".encode() * 10, "t", 0, 0, "r", prefix=4)
    assert letter["original"] == "€" and letter["original_encoding"] == "utf-8"


def big_payment(number: int, size: int) -> bytes:
    """A valid payment message of ``size`` bytes (an extra field pads it)."""
    base = {"event_id": f"p-{number}", "ts": "2026-01-05T09:00:00+08:00",
            "payer": "a" * 120 + f"{number:08d}", "payee": "b" * 120 + f"{number:08d}",
            "amount": 10.0, "currency": "CNY", "channel": "transfer", "device_id": "d" * 128,
            "note": ""}
    pad = size - len(orjson.dumps(base))
    base["note"] = "\u00e9" * (pad // 2)  # two bytes each in UTF-8
    value = orjson.dumps(base)
    assert size - 2 <= len(value) <= size
    return value


class RecordingOutputs:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []

    def add(self, topic: str, key: bytes | None, value: bytes,
            partition: int | None = None) -> None:
        self.records.append((topic, value))


def test_routed_groups_of_the_largest_events_fit(tmp_path: Path) -> None:
    settings = Settings(processing={"max_event_bytes": LARGEST_EVENT})
    line = Pipeline(settings, ShardManager(settings, FileCheckpointStore(tmp_path)),
                    Metrics(CollectorRegistry()))
    outputs = RecordingOutputs()
    line.outputs = outputs  # type: ignore[assignment]
    line.owned, line.caught_up = set(), True  # every shard another worker's: full envelopes
    sizes = [1000, 60_000, GROUP_BYTES // 2, LARGEST_EVENT - 3, LARGEST_EVENT]
    for number in range(40):
        source = big_payment(number, sizes[number % len(sizes)])
        event = parse("payments", source, max_bytes=LARGEST_EVENT)
        for view in views(event):
            line.folder.route(0, view, event, 1.0, source, None, False)
    line.folder.close_groups()
    routed = [value for topic, value in outputs.records if topic == line.routed]
    assert len(routed) > 10
    assert max(len(value) for value in routed) > LARGEST_EVENT  # the limit was reached
    assert all(fits(value) for value in routed), max(len(value) for value in routed)


def test_changelog_chunks_fit() -> None:
    _, chunks = encode_snapshot(0, bytes(range(256)) * 20_000, 5, codec="none")
    assert len(chunks) > 3
    assert all(len(key) + len(value) + RECORD_OVERHEAD <= OUTPUT_MESSAGE_BYTES
               for key, value in chunks)
    assert max(len(value) for _, value in chunks) == CHUNK_BYTES


def test_a_decision_and_an_alert_with_the_longest_ids_fit() -> None:
    source = big_payment(1, LARGEST_EVENT)
    event = parse("payments", source, max_bytes=LARGEST_EVENT)
    entities = [{"type": "x" * 32, "id": "y" * 128} for _ in range(16)]
    record = decision(event, entities, {f"pattern-{i}": 0.5 for i in range(32)},
                      [f"al_{i:024d}" for i in range(16)], "m" * 64)
    assert fits(orjson.dumps(record))
    # An alert's evidence is at most max_evidence event ids; its reasons one per signal.
    alert: dict[str, Any] = {"alert_id": "al_" + "0" * 24, "entity": "y" * 128,
                             "reasons": [{"signal": "s" * 64, "value": 1.0,
                                          "typical": "t" * 64}] * 32,
                             "evidence": ["e" * 128] * EntityState.max_evidence}
    assert fits(orjson.dumps(alert))
