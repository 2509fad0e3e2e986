"""The routed envelope carries the input message's arrival time, when it has one."""

from __future__ import annotations

import orjson
import pytest

from monitor.contract.events import from_dict
from monitor.errors import InvalidEvent
from monitor.routing import envelope
from monitor.routing.views import views

PAYMENT = {"event_id": "p-1", "ts": "2026-01-05T09:30:00+08:00", "payer": "a", "payee": "b",
           "amount": 10.0, "channel": "card", "extra": "kept"}


def test_arrival_time_round_trips() -> None:
    event = from_dict("payments", PAYMENT)
    view = views(event)[0]
    decoded_view, decoded, arrived = envelope.decode_with_arrival(
        envelope.encode(view, event, 1767576600.25))
    assert (decoded_view, decoded, arrived) == (view, event, 1767576600.25)
    assert decoded.raw == PAYMENT
    assert envelope.decode(envelope.encode(view, event)) == (view, event)


def test_envelopes_without_or_with_a_bad_arrival_decode_without_one() -> None:
    event = from_dict("payments", PAYMENT)
    payload = orjson.loads(envelope.encode(views(event)[0], event))
    assert "arrived" not in payload
    for bad in (None, True, "soon", [1]):
        raw = orjson.dumps({**payload, "arrived": bad})
        assert envelope.decode_with_arrival(raw)[2] is None


@pytest.mark.parametrize("payload", [b"[]", b"{}", b"not json", b'"text"'])
def test_what_is_not_an_envelope_is_invalid(payload: bytes) -> None:
    with pytest.raises(InvalidEvent, match="not a routed envelope"):
        envelope.decode_with_arrival(payload)


@pytest.mark.parametrize("field", ["kind", "role", "entity_type", "entity"])
def test_an_envelope_field_of_the_wrong_type_is_invalid_not_an_error(field: str) -> None:
    # Compiled, a wrong type at a call raises TypeError: the worker must get a reason.
    event = from_dict("payments", PAYMENT)
    payload = orjson.loads(envelope.encode(views(event)[0], event))
    invalid: list[tuple[bytes, str]] = []
    assert envelope.decode_group(orjson.dumps([{**payload, field: 5}]), invalid) == []
    assert "not a routed envelope" in invalid[0][1]


def test_a_group_decodes_to_its_views_in_order() -> None:
    first = from_dict("payments", PAYMENT)
    second = from_dict("payments", {**PAYMENT, "event_id": "p-2", "payer": "c"})
    items = [(view, event, 1767576600.25) for event in (first, second)
             for view in views(event)]
    group = envelope.encode_group([envelope.encode(*item) for item in items])
    assert envelope.decode_group(group) == items


def test_a_bare_envelope_reads_as_a_group_of_one() -> None:
    # Routed records written before groups hold one envelope each.
    event = from_dict("payments", PAYMENT)
    view = views(event)[1]
    assert envelope.decode_group(envelope.encode(view, event)) == [(view, event, None)]


@pytest.mark.parametrize("payload", [b"[]", b"not json", b'"text"', b"[1]",
                                     b'[{"role": "payer"}]'])
def test_what_is_not_a_group_of_envelopes_is_invalid(payload: bytes) -> None:
    with pytest.raises(InvalidEvent, match="not a routed envelope"):
        envelope.decode_group(payload)


@pytest.mark.parametrize("source", [orjson.dumps(PAYMENT),
                                    b'{ "extra": "kept", "event_id": "p-1", "payer": "a",\n'
                                    b'"payee": "b", "amount": 10.0, "channel": "card",\n'
                                    b'"ts": "2026-01-05T09:30:00+08:00" }'])
def test_an_envelope_carrying_the_input_bytes_decodes_as_one_built_from_the_event(
        source: bytes) -> None:
    event = from_dict("payments", PAYMENT)
    for view in views(event):
        carried = envelope.encode(view, event, 1767576600.25, source)
        assert envelope.decode_with_arrival(carried) == envelope.decode_with_arrival(
            envelope.encode(view, event, 1767576600.25))
        assert envelope.decode_with_arrival(carried)[1].raw == PAYMENT


def test_a_bad_item_of_a_group_is_set_aside_when_asked_and_the_rest_kept() -> None:
    event = from_dict("payments", PAYMENT)
    good = [envelope.encode(view, event) for view in views(event)]
    group = envelope.encode_group([good[0], b'{"role": "payer"}', good[1]])
    with pytest.raises(InvalidEvent):
        envelope.decode_group(group)
    invalid: list[tuple[bytes, str]] = []
    assert envelope.decode_group(group, invalid) == [
        (view, event, None) for view in views(event)[:2]]
    assert len(invalid) == 1 and orjson.loads(invalid[0][0]) == {"role": "payer"}
    assert "not a routed envelope" in invalid[0][1]


def test_a_reference_round_trips_beside_envelopes_in_order() -> None:
    event = from_dict("payments", PAYMENT)
    first, second = views(event)[:2]
    onward = envelope.View("rollover", "lender", "l-1", False)
    group = envelope.encode_group([
        envelope.encode_reference(event, first, "fraudmon.payments", 3, 41),
        envelope.encode(second, event),
        envelope.encode_reference(event, onward, "fraudmon.payments", 3, 41, onward=True)])
    reference, item, derived = envelope.decode_group(group)
    assert reference == envelope.Reference("p-1", "payer", "fraudmon.payments", 3, 41)
    assert isinstance(reference, envelope.Reference) and reference.token == "p-1\x1fpayer"
    assert item == (second, event, None)
    assert derived == envelope.Reference("p-1", "rollover", "fraudmon.payments", 3, 41, onward)
    assert derived != reference


@pytest.mark.parametrize("item", [
    [], ["p-1", "payer", "fraudmon.payments", 3],
    ["p-1", "payer", "fraudmon.payments", -1, 41],
    ["p-1", "payer", "fraudmon.payments", 3, True],
    ["p-1", 7, "fraudmon.payments", 3, 41],
    ["p-1", 7, "fraudmon.payments", 3, 41, "lender", "bank-1", False],
    ["p-1", "rollover", "fraudmon.payments", 3, 41, "lender", 9, False]])
def test_what_is_not_a_reference_is_set_aside(item: list[object]) -> None:
    invalid: list[tuple[bytes, str]] = []
    assert envelope.decode_group(orjson.dumps([item]), invalid) == []
    assert "not a routed reference" in invalid[0][1]


def test_a_decoded_reference_encodes_as_it_was_written() -> None:
    event = from_dict("payments", PAYMENT)
    onward = envelope.View("rollover", "lender", "l-1", False)
    for written in (envelope.encode_reference(event, views(event)[0], "t", 0, 7),
                    envelope.encode_reference(event, onward, "t", 0, 7, onward=True)):
        (reference,) = envelope.decode_group(b"[" + written + b"]")
        assert isinstance(reference, envelope.Reference) and reference.encode() == written
