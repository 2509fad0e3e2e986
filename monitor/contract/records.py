"""Output records: decisions, alerts and dead letters, as plain JSON-ready dicts."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Final

from monitor.contract.events import Event


class _Stamp:
    """The last millisecond formatted and its text, and the last second and its text: a
    decision per event needs no new text, and a new millisecond only new digits."""

    __slots__ = ("millis", "second", "second_text", "text")

    def __init__(self) -> None:
        self.millis = -1
        self.text = ""
        self.second = -1
        self.second_text = ""


_STAMP: Final = _Stamp()
_MILLIS: Final = tuple(f".{rest:03d}Z" for rest in range(1000))


def now_text() -> str:
    """Wall-clock time as RFC 3339 UTC, for ``processed_at`` and ``created_at``."""
    millis = time.time_ns() // 1_000_000
    stamp = _STAMP
    if millis != stamp.millis:
        seconds = millis // 1000
        if seconds != stamp.second:
            stamp.second = seconds
            stamp.second_text = datetime.fromtimestamp(seconds, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S")
        stamp.millis = millis
        stamp.text = stamp.second_text + _MILLIS[millis - seconds * 1000]
    return stamp.text


def alert_id(pattern: str, entity_type: str, entity: str, trigger_event_id: str) -> str:
    """Deterministic alert id: reprocessing the same event yields the same id."""
    digest = hashlib.sha256(
        f"{pattern}\x1f{entity_type}\x1f{entity}\x1f{trigger_event_id}".encode()
    ).hexdigest()
    return f"al_{digest[:24]}"


def decision(event: Event, entities: list[dict[str, str]], scores: dict[str, float],
             alert_ids: list[str], model_version: str) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "topic": event.kind,
        "ts": event.ts_text,
        "entities": entities,
        "scores": {name: round(value, 6) if value else value for name, value in scores.items()},
        "alert_ids": alert_ids,
        "model_version": model_version,
        "processed_at": now_text(),
    }


DEAD_LETTER_PREFIX = 8192
"""Bytes of the original a dead letter keeps by default."""


def dead_letter(payload: bytes | None, topic: str, partition: int | None,
                offset: int | None, reason: str,
                prefix: int = DEAD_LETTER_PREFIX) -> dict[str, Any]:
    """A dead-letter record: at most ``prefix`` bytes of the original (as text where they
    decode, else hex), its full size and SHA-256, and why.

    A dead letter always fits in a Kafka record: the prefix is at most six times its size
    once JSON-escaped (``\\u0000``), twice as hex, whatever the original's size.
    """
    original: str | None = None
    encoding = "utf-8"
    size = digest = None
    truncated = False
    if payload is not None:
        size = len(payload)
        digest = hashlib.sha256(payload).hexdigest()
        kept = payload[:prefix]
        truncated = len(kept) < size
        try:
            original = _utf8_prefix(kept, truncated)
        except UnicodeDecodeError:
            original, encoding = kept.hex(), "hex"
    return {
        "reason": reason,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "original": original,
        "original_encoding": encoding,
        "original_bytes": size,
        "original_sha256": digest,
        "original_truncated": truncated,
        "dead_lettered_at": now_text(),
    }


def _utf8_prefix(kept: bytes, truncated: bool) -> str:
    """``kept`` as text; a character the cut split at its end is dropped."""
    try:
        return kept.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(kept) - 3 and exc.reason == "unexpected end of data":
            return kept[:exc.start].decode("utf-8")
        raise
