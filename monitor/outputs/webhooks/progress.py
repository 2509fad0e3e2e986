"""A receiver's delivery progress, kept in the metadata of its committed offsets.

Each receiver's delivery group commits, with every partition's offset, a short JSON text:
the attempts already made for the unsettled alerts at and after that offset, and whether
the receiver answered 410 Gone under its current configuration. A restarted worker (or
the one that takes the partition over) reads it back, so retry counts do not start from
zero after every restart, and a receiver that is gone stays disabled until its
configuration changes.

The metadata is read from Kafka, so it is parsed as untrusted input: anything that is
not exactly this shape is ignored (logged), never raised. Brokers cap commit metadata
(``offset.metadata.max.bytes``, 4096 by default); the text is kept under
:data:`METADATA_LIMIT` by leaving out the newest alerts' attempts, which then start again
from zero (they are retried more than ``max_attempts`` at worst, never lost).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import orjson

from monitor.config import ReceiverSettings

logger = logging.getLogger(__name__)

METADATA_LIMIT = 3_500
"""Bytes of metadata per committed offset, under the broker's default 4096."""
MAX_ENTRIES = 1_000
MAX_ATTEMPTS = 1_000_000


@dataclass(frozen=True, slots=True)
class Progress:
    """Attempts made per unsettled alert offset, and the 410 mark."""

    attempts: dict[int, int] = field(default_factory=dict)
    gone: str | None = None
    """The :func:`fingerprint` of the configuration that answered 410 Gone, if one did."""


def fingerprint(receiver: ReceiverSettings) -> str:
    """A short digest of the receiver's configuration: a 410 holds until it changes."""
    text = orjson.dumps(receiver.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]


def encode(progress: Progress, limit: int = METADATA_LIMIT) -> str:
    """The metadata text: the oldest offsets' attempts first, as many as fit ``limit``."""
    pairs = sorted(progress.attempts.items())[:MAX_ENTRIES]
    while True:
        text = orjson.dumps({"v": 1, "gone": progress.gone, "attempts": pairs}).decode()
        if len(text) <= limit or not pairs:
            return text
        pairs = pairs[:len(pairs) * 3 // 4]


def decode(text: str | None) -> Progress:
    """Progress from a committed offset's metadata; empty for anything malformed."""
    if not text:
        return Progress()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("v") != 1:
        logger.warning("webhooks: ignoring offset metadata that is not delivery progress")
        return Progress()
    gone = data.get("gone")
    if not (gone is None or (isinstance(gone, str) and len(gone) <= 64)):
        gone = None
    attempts: dict[int, int] = {}
    pairs = data.get("attempts")
    for pair in pairs[:MAX_ENTRIES] if isinstance(pairs, list) else ():
        if (isinstance(pair, list) and len(pair) == 2
                and all(type(value) is int for value in pair)
                and pair[0] >= 0 and 0 < pair[1] <= MAX_ATTEMPTS):
            attempts[pair[0]] = pair[1]
    return Progress(attempts, gone)
