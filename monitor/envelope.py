"""The routed record: one entity view of a validated event, as the routed topic carries it.

The envelope keeps the event's original JSON object (unknown fields included), so the
shard re-validates it with the very same contract code that replay uses.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.errors import InvalidEvent
from monitor.events import Event, from_dict
from monitor.routing import View


def encode(view: View, event: Event) -> bytes:
    return orjson.dumps({
        "kind": event.kind, "role": view.role, "entity_type": view.entity_type,
        "entity": view.entity, "primary": view.primary, "value": event.raw,
    })


def decode(payload: bytes) -> tuple[View, Event]:
    """Envelope bytes -> (view, event); ``InvalidEvent`` if it is not one."""
    try:
        data: Any = orjson.loads(payload)
        view = View(data["role"], data["entity_type"], data["entity"], bool(data["primary"]))
        kind = data["kind"]
        value = data["value"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    return view, from_dict(kind, value)
