"""Routing (monitor.routing.views): which entity views an event updates, and exactly one primary."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.contract.events import (
    CHANNELS,
    ENTITY_TYPES,
    LABELS,
    LOAN_DISBURSALS,
    PAYMENTS,
    Event,
    Label,
    LoanDisbursal,
    Payment,
    from_dict,
)
from monitor.routing.partitioner import partition_for
from monitor.routing.views import View, entities, placements, shard_of, views

FUZZ = settings(max_examples=200, deadline=None, database=None)
TS = "2026-01-05T10:00:00+08:00"

# Few distinct names, so that payer == payee, referrer == lender etc. happen often.
names = st.sampled_from(["a", "b", "c", "QuickCash", "borrower-1", "x" * 128])


def payment(**fields: Any) -> Payment:
    data = {"event_id": "p1", "ts": TS, "payer": "a", "payee": "b", "amount": 10.0,
            "channel": "card", **fields}
    event = from_dict(PAYMENTS, data)
    assert isinstance(event, Payment)
    return event


def disbursal(**fields: Any) -> LoanDisbursal:
    data = {"event_id": "d1", "ts": TS, "loan_id": "L1", "borrower": "bob", "lender": "QC",
            "principal": 1000, "term_days": 7, "account": "acct-bob", **fields}
    event = from_dict(LOAN_DISBURSALS, data)
    assert isinstance(event, LoanDisbursal)
    return event


def as_tuples(found: list[View]) -> list[tuple[str, str, str, bool]]:
    return [(v.role, v.entity_type, v.entity, v.primary) for v in found]


def test_payment_views_payer_then_payee() -> None:
    assert as_tuples(views(payment())) == [("payer", "account", "a", True),
                                           ("payee", "account", "b", False)]


def test_payment_to_oneself_has_a_single_view() -> None:
    assert as_tuples(views(payment(payee="a"))) == [("payer", "account", "a", True)]


def test_loan_repayment_also_views_the_borrower() -> None:
    event = payment(channel="loan_repayment", loan_id="L1", borrower="bob")
    assert as_tuples(views(event)) == [("payer", "account", "a", True),
                                       ("payee", "account", "b", False),
                                       ("repayment", "borrower", "bob", False)]


def test_borrower_field_on_other_channels_is_not_routed() -> None:
    event = payment(loan_id="L1", borrower="bob")
    assert [v.entity_type for v in views(event)] == ["account", "account"]


def test_disbursal_views_borrower_then_lender() -> None:
    assert as_tuples(views(disbursal())) == [("borrower", "borrower", "bob", True),
                                             ("lender", "lender", "QC", False)]


def test_disbursal_views_a_different_referrer() -> None:
    assert as_tuples(views(disbursal(referrer="FastLoan"))) == [
        ("borrower", "borrower", "bob", True),
        ("lender", "lender", "QC", False),
        ("referrer", "lender", "FastLoan", False),
    ]


def test_disbursal_referred_by_its_own_lender_views_the_lender_once() -> None:
    assert [v.role for v in views(disbursal(referrer="QC"))] == ["borrower", "lender"]


def test_entity_label_views_the_entity() -> None:
    event = from_dict(LABELS, {"event_id": "l1", "ts": TS, "entity": "mule-1",
                               "entity_type": "account", "pattern": "mule_account",
                               "confirmed": True})
    assert as_tuples(views(event)) == [("label", "account", "mule-1", True)]


def test_event_label_views_its_target_event() -> None:
    event = from_dict(LABELS, {"event_id": "l2", "ts": TS, "target_event_id": "p1",
                               "confirmed": False})
    found = views(event)
    assert as_tuples(found) == [("label", "event", "p1", True)]
    assert found[0].key == "event:p1"
    assert entities(event) == []


def test_keys_namespace_entities_by_type() -> None:
    event = disbursal(borrower="same", lender="same")
    keys = [v.key for v in views(event)]
    assert keys == ["borrower:same", "lender:same"]


def test_entities_list_the_device_too() -> None:
    event = payment(device_id="dev-1")
    assert entities(event) == [{"type": "account", "id": "a"}, {"type": "account", "id": "b"},
                               {"type": "device", "id": "dev-1"}]


def test_shard_of_hashes_the_view_key() -> None:
    for view in views(payment(channel="loan_repayment", loan_id="L", borrower="bob")):
        for partitions in (1, 4, 12):
            assert shard_of(view, partitions) == partition_for(view.key, partitions)
            assert 0 <= shard_of(view, partitions) < partitions


# --- properties over generated events -----------------------------------------------


@st.composite
def any_event(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from([PAYMENTS, LOAN_DISBURSALS, LABELS]))
    data: dict[str, Any] = {"event_id": draw(names), "ts": TS}
    if kind == PAYMENTS:
        data.update(payer=draw(names), payee=draw(names), amount=5.0,
                    channel=draw(st.sampled_from(sorted(CHANNELS))),
                    loan_id=draw(names), borrower=draw(names))
        if draw(st.booleans()):
            data["device_id"] = draw(names)
    elif kind == LOAN_DISBURSALS:
        data.update(loan_id=draw(names), borrower=draw(names), lender=draw(names),
                    principal=100.0, term_days=30, account=draw(names))
        if draw(st.booleans()):
            data["referrer"] = draw(names)
        if draw(st.booleans()):
            data["device_id"] = draw(names)
    elif draw(st.booleans()):
        data.update(entity=draw(names), entity_type=draw(st.sampled_from(sorted(ENTITY_TYPES))),
                    pattern="mule_account", confirmed=draw(st.booleans()))
    else:
        data.update(target_event_id=draw(names), confirmed=draw(st.booleans()))
    return from_dict(kind, data)


@FUZZ
@given(event=any_event(), partitions=st.integers(min_value=1, max_value=64))
def test_every_event_has_exactly_one_primary_view_first(event: Event, partitions: int) -> None:
    found = views(event)
    assert [v.primary for v in found].count(True) == 1
    assert found[0].primary
    assert len({v.key for v in found}) == len(found)  # no entity updated twice
    assert len({v.role for v in found}) == len(found)
    assert all(0 <= shard_of(v, partitions) < partitions for v in found)


@FUZZ
@given(event=any_event())
def test_views_follow_the_routing_rules(event: Event) -> None:
    found = {(v.role, v.entity_type, v.entity) for v in views(event)}
    expected: set[tuple[str, str, str]]
    if isinstance(event, Payment):
        expected = {("payer", "account", event.payer)}
        if event.payee != event.payer:
            expected.add(("payee", "account", event.payee))
        if event.channel == "loan_repayment":
            assert event.borrower is not None
            expected.add(("repayment", "borrower", event.borrower))
        if event.device_id is not None:
            expected.add(("device", "device", event.device_id))
        primary = ("payer", "account", event.payer)
    elif isinstance(event, LoanDisbursal):
        expected = {("borrower", "borrower", event.borrower), ("lender", "lender", event.lender)}
        if event.referrer is not None and event.referrer != event.lender:
            expected.add(("referrer", "lender", event.referrer))
        if event.device_id is not None:
            expected.add(("device", "device", event.device_id))
        primary = ("borrower", "borrower", event.borrower)
    else:
        assert isinstance(event, Label)
        if event.entity is not None:
            assert event.entity_type is not None
            primary = ("label", event.entity_type, event.entity)
        else:
            assert event.target_event_id is not None
            primary = ("label", "event", event.target_event_id)
        expected = {primary}
    assert found == expected
    first = views(event)[0]
    assert (first.role, first.entity_type, first.entity) == primary



@pytest.mark.parametrize("event", [
    payment(), payment(payee="a"), payment(device_id="dev-1"), payment(payee="a", device_id="d"),
    payment(channel="loan_repayment", loan_id="L1", borrower="bob"), disbursal(),
])
def test_placements_are_the_views_with_their_shards(event: Event) -> None:
    placed = placements(event, 4)
    assert [view for view, _ in placed] == views(event)
    assert [shard for _, shard in placed] == [shard_of(view, 4) for view in views(event)]
