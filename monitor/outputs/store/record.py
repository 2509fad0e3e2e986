"""An alerts-topic record, checked before it is stored: what the store indexes must be
there and well formed, and nothing may be larger than the settings allow.

The alerts topic is read like any other input: anybody with write access to it could put
anything there. A record that is not an alert is skipped with a short reason (counted by
``fraudmon_alert_store_skipped_total``), never stored and never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from monitor.contract.vocabulary import SEVERITIES

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_WORD = re.compile(r"^[a-z0-9_]{1,64}$")
MAX_TEXT = 128


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the store keeps it: indexed columns and the whole record as JSON."""

    alert_id: str
    ts_us: int
    pattern: str
    entity: str
    entity_type: str
    severity: int
    body: str


def _text(alert: dict[str, Any], key: str) -> str | None:
    value = alert.get(key)
    return value if isinstance(value, str) and 1 <= len(value) <= MAX_TEXT else None


def stored_alert(value: bytes | None, max_bytes: int) -> StoredAlert | str:
    """The alert in one record's value, or why it is skipped: ``too_large``,
    ``not_json`` or ``not_an_alert`` (the metric's label values)."""
    if value is None:
        return "not_json"
    if len(value) > max_bytes:
        return "too_large"
    try:
        alert = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "not_json"
    if not isinstance(alert, dict):
        return "not_an_alert"
    alert_id, pattern = _text(alert, "alert_id"), _text(alert, "pattern")
    entity, entity_type = _text(alert, "entity"), _text(alert, "entity_type")
    severity, ts = alert.get("severity"), _text(alert, "ts")
    if (alert_id is None or not _ID.match(alert_id) or pattern is None
            or not _WORD.match(pattern) or entity is None or entity_type is None
            or not _WORD.match(entity_type) or severity not in SEVERITIES or ts is None):
        return "not_an_alert"
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        return "not_an_alert"
    if when.tzinfo is None or not 1970 <= when.year <= 9999:
        return "not_an_alert"
    seconds = int(when.timestamp())
    ts_us = seconds * 1_000_000 + when.microsecond
    return StoredAlert(alert_id, ts_us, pattern, entity, entity_type,
                       SEVERITIES.index(str(severity)), orjson.dumps(alert).decode())
