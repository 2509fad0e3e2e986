"""The routed record: entity views of validated events, as the routed topic carries them.

An envelope is one view: a JSON object that keeps the event's original JSON object
(unknown fields included), so the shard re-validates it with the very same contract
code that replay uses. It may also carry ``arrived``: the input message's Kafka
timestamp (unix seconds), so the worker can measure the time from arrival to decision
across the hop through Kafka.

A routed record is a **group**: a JSON array of envelopes for one shard, in the order
the shard folds them (:func:`encode_group`). One record per group instead of one per
view costs the producer, the broker and the consumer a fraction of the per-record work
(about three views an event). A record holding one bare envelope (written before
groups) reads as a group of one.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.errors import InvalidEvent
from monitor.events import Event, from_dict
from monitor.routing import View


def encode(view: View, event: Event, arrived: float | None = None,
           source: bytes | None = None) -> bytes:
    """One view as envelope bytes. ``source``, when given, is the event's JSON object as it
    arrived (the input message's value, which :func:`monitor.events.parse` accepted): it
    is carried as it is, instead of serialising ``event.raw`` again for every view (a
    tenth of a worker's time went to that). Decoded, both give the same event."""
    record: dict[str, Any] = {
        "kind": event.kind, "role": view.role, "entity_type": view.entity_type,
        "entity": view.entity, "primary": view.primary,
    }
    if arrived is not None:
        record["arrived"] = arrived
    if source is None:
        record["value"] = event.raw
        return orjson.dumps(record)
    return orjson.dumps(record)[:-1] + b',"value":' + source + b"}"


def encode_group(envelopes: list[bytes]) -> bytes:
    """Envelopes (from :func:`encode`) as one routed record, in order."""
    return b"[" + b",".join(envelopes) + b"]"


def decode_group(payload: bytes, invalid: list[tuple[bytes, str]] | None = None,
                 ) -> list[tuple[View, Event, float | None]]:
    """Routed record bytes -> its views in order; ``InvalidEvent`` if the record is not an
    envelope or a group of them. An item of a group that is not an envelope raises too,
    unless ``invalid`` is given: then the item (as JSON) and the reason are appended to it
    and the other items are still returned."""
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    if isinstance(data, dict):
        return [_decoded(data)]
    if not isinstance(data, list) or not data:
        raise InvalidEvent("not a routed envelope: neither an envelope nor a group of them")
    if invalid is None:
        return [_decoded(item) for item in data]
    views = []
    for item in data:
        try:
            views.append(_decoded(item))
        except InvalidEvent as exc:
            invalid.append((orjson.dumps(item), exc.reason))
    return views


def decode_with_arrival(payload: bytes) -> tuple[View, Event, float | None]:
    """Envelope bytes -> (view, event, arrival time or ``None``); ``InvalidEvent`` if not one."""
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    return _decoded(data)


def _decoded(data: Any) -> tuple[View, Event, float | None]:
    try:
        view = View(data["role"], data["entity_type"], data["entity"], bool(data["primary"]))
        kind = data["kind"]
        value = data["value"]
        arrived = data.get("arrived")
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    if isinstance(arrived, bool) or not isinstance(arrived, int | float):
        arrived = None
    return view, from_dict(kind, value), arrived


def decode(payload: bytes) -> tuple[View, Event]:
    """Envelope bytes -> (view, event); ``InvalidEvent`` if it is not one."""
    view, event, _ = decode_with_arrival(payload)
    return view, event
