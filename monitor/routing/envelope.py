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

An item of a group may also be a **reference** (:func:`encode_reference`): a view the
worker folded where it routed it, logged by where its event is (input topic, partition,
offset) instead of with the event. The shard's log keeps its order; only a worker that
reads it back without having folded it (after a crash) looks the event up in the input
topic. A reference is a JSON array, an envelope a JSON object; a reference is about a
seventh of the bytes, and producing and reading back the event's bytes with every view
cost the worker about a quarter of its time.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.contract.events import DEFAULT_LIMITS, Event, Limits, from_dict
from monitor.errors import InvalidEvent
from monitor.routing.views import View


def encode(view: View, event: Event, arrived: float | None = None,
           source: bytes | None = None) -> bytes:
    """One view as envelope bytes. ``source``, when given, is the event's JSON object as it
    arrived (the input message's value, which :func:`monitor.contract.events.parse` accepted): it
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


class Reference:
    """A view logged by its event's place in an input topic (see the module doc).

    ``view`` is ``None`` for one of the event's own views, which the event gives back by
    its role (:func:`monitor.routing.views.placements`); an onward view, which a shard derived,
    carries its fields.
    """

    __slots__ = ("event_id", "offset", "partition", "role", "topic", "view")

    def __init__(self, event_id: str, role: str, topic: str, partition: int, offset: int,
                 view: View | None = None) -> None:
        self.event_id, self.role, self.view = event_id, role, view
        self.topic, self.partition, self.offset = topic, partition, offset

    @property
    def token(self) -> str:
        """The view's dedup token (as :meth:`monitor.state.shard.Shard.process` keeps it)."""
        return f"{self.event_id}\x1f{self.role}"

    def encode(self) -> bytes:
        """The reference as a group item (what :func:`encode_reference` wrote)."""
        return orjson.dumps(_reference_fields(self.event_id, self.role, self.topic,
                                              self.partition, self.offset, self.view))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def _fields(self) -> tuple[Any, ...]:
        view = self.view
        return (self.event_id, self.role, self.topic, self.partition, self.offset,
                None if view is None else (view.entity_type, view.entity, view.primary))


def encode_reference(event: Event, view: View, topic: str, partition: int, offset: int,
                     *, onward: bool = False) -> bytes:
    """One view as a reference to the input message its event came in: the event's id,
    the view's role and the message's place; an ``onward`` view (not one of the event's
    own) with its fields as well. The arrival time is the message's Kafka time."""
    return orjson.dumps(_reference_fields(event.event_id, view.role, topic, partition,
                                          offset, view if onward else None))


def _reference_fields(event_id: str, role: str, topic: str, partition: int, offset: int,
                      view: View | None) -> list[Any]:
    fields: list[Any] = [event_id, role, topic, partition, offset]
    if view is not None:
        fields += [view.entity_type, view.entity, view.primary]
    return fields


def encode_group(envelopes: list[bytes]) -> bytes:
    """Envelopes (from :func:`encode`) as one routed record, in order."""
    return b"[" + b",".join(envelopes) + b"]"


Decoded = tuple[View, Event, float | None] | Reference
"""An item of a group: a view with its event and arrival time, or a reference."""


def decode_group(payload: bytes, invalid: list[tuple[bytes, str]] | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> list[Decoded]:
    """Routed record bytes -> its views (or references) in order; ``InvalidEvent`` if the
    record is not an envelope or a group of them. An item of a group that is neither
    raises too, unless ``invalid`` is given: then the item (as JSON) and the reason are
    appended to it and the other items are still returned. Events are checked against
    ``limits`` (the worker's ``processing`` settings) as at ingest."""
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    if isinstance(data, dict):
        return [_decoded(data, limits)]
    if not isinstance(data, list) or not data:
        raise InvalidEvent("not a routed envelope: neither an envelope nor a group of them")
    if invalid is None:
        return [_item(item, limits) for item in data]
    views = []
    for item in data:
        try:
            views.append(_item(item, limits))
        except InvalidEvent as exc:
            invalid.append((orjson.dumps(item), exc.reason))
    return views


def _item(data: Any, limits: Limits) -> Decoded:
    return _reference(data) if isinstance(data, list) else _decoded(data, limits)


def _reference(data: list[Any]) -> Reference:
    if len(data) not in (5, 8):
        raise InvalidEvent(f"not a routed reference: {len(data)} fields")
    event_id, role, topic, partition, offset = data[:5]
    # Types first: a compiled build checks them at each call (a TypeError, not a reason).
    if not all(isinstance(text, str) for text in (event_id, role, topic)):
        raise InvalidEvent("not a routed reference: ids, role and topic must be strings")
    view = None
    if len(data) == 8:
        entity_type, entity, primary = data[5:]
        if not (isinstance(entity_type, str) and isinstance(entity, str)):
            raise InvalidEvent("not a routed reference: entity type and id must be strings")
        view = View(role, entity_type, entity, bool(primary))
    if not all(isinstance(number, int) and not isinstance(number, bool) and number >= 0
               for number in (partition, offset)):
        raise InvalidEvent("not a routed reference: partition and offset must be integers")
    return Reference(event_id, role, topic, partition, offset, view)


def decode_with_arrival(payload: bytes) -> tuple[View, Event, float | None]:
    """Envelope bytes -> (view, event, arrival time or ``None``); ``InvalidEvent`` if not one."""
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    return _decoded(data)


def _decoded(data: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[View, Event, float | None]:
    try:
        role, entity_type, entity = data["role"], data["entity_type"], data["entity"]
        primary, kind, value = data["primary"], data["kind"], data["value"]
        arrived = data.get("arrived")
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidEvent(f"not a routed envelope: {exc}") from exc
    # Types first: a compiled build checks them at each call (a TypeError, not a reason).
    if not all(isinstance(text, str) for text in (role, entity_type, entity, kind)):
        raise InvalidEvent("not a routed envelope: kind, role and entity must be strings")
    view = View(role, entity_type, entity, bool(primary))
    if isinstance(arrived, bool) or not isinstance(arrived, int | float):
        arrived = None
    return view, from_dict(kind, value, limits), arrived


def decode(payload: bytes) -> tuple[View, Event]:
    """Envelope bytes -> (view, event); ``InvalidEvent`` if it is not one."""
    view, event, _ = decode_with_arrival(payload)
    return view, event
