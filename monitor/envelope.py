"""The routed record: one entity view of a validated event, as the routed topic carries it.

The envelope keeps the event's original JSON object (unknown fields included), so the
shard re-validates it with the very same contract code that replay uses. It may also
carry ``arrived``: the input message's Kafka timestamp (unix seconds), so the score
agent can measure the time from arrival to decision across the hop through Kafka.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.errors import InvalidEvent
from monitor.events import Event, from_dict
from monitor.routing import View


def encode(view: View, event: Event, arrived: float | None = None) -> bytes:
    record: dict[str, Any] = {
        "kind": event.kind, "role": view.role, "entity_type": view.entity_type,
        "entity": view.entity, "primary": view.primary, "value": event.raw,
    }
    if arrived is not None:
        record["arrived"] = arrived
    return orjson.dumps(record)


def decode_with_arrival(payload: bytes) -> tuple[View, Event, float | None]:
    """Envelope bytes -> (view, event, arrival time or ``None``); ``InvalidEvent`` if not one."""
    try:
        data: Any = orjson.loads(payload)
        view = View(data["role"], data["entity_type"], data["entity"], bool(data["primary"]))
        kind = data["kind"]
        value = data["value"]
        arrived = data.get("arrived")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    if isinstance(arrived, bool) or not isinstance(arrived, int | float):
        arrived = None
    return view, from_dict(kind, value), arrived


def decode(payload: bytes) -> tuple[View, Event]:
    """Envelope bytes -> (view, event); ``InvalidEvent`` if it is not one."""
    view, event, _ = decode_with_arrival(payload)
    return view, event
