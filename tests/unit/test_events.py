"""The event contract (monitor.contract.events): what parses, what is refused, and why."""

from __future__ import annotations

import calendar
import math
import unicodedata
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contract import events
from monitor.contract.currencies import CURRENCIES
from monitor.contract.events import (
    LABELS,
    LOAN_DISBURSALS,
    PAYMENTS,
    Label,
    LoanDisbursal,
    Payment,
    from_dict,
)
from monitor.errors import InvalidEvent

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

TS = "2026-01-05T10:00:00+08:00"
TS_EPOCH = 1767578400.0  # 2026-01-05T02:00:00Z

PAYMENT: dict[str, Any] = {
    "event_id": "pay-1", "ts": TS, "payer": "acct-a", "payee": "acct-b",
    "amount": 120.5, "currency": "CNY", "channel": "card",
}
DISBURSAL: dict[str, Any] = {
    "event_id": "dis-1", "ts": TS, "loan_id": "loan-1", "borrower": "borrower-1",
    "lender": "QuickCash", "principal": 1500, "currency": "CNY", "fee": 300,
    "term_days": 7, "account": "acct-borrower-1",
}
ENTITY_LABEL: dict[str, Any] = {
    "event_id": "lbl-1", "ts": TS, "entity": "mule-1", "entity_type": "account",
    "pattern": "mule_account", "confirmed": True,
}
TARGET_LABEL: dict[str, Any] = {
    "event_id": "lbl-2", "ts": TS, "target_event_id": "pay-1", "confirmed": False,
}
VALID = {PAYMENTS: PAYMENT, LOAN_DISBURSALS: DISBURSAL, LABELS: ENTITY_LABEL}
REPAYMENT = {**PAYMENT, "channel": "loan_repayment", "loan_id": "loan-1",
             "borrower": "borrower-1"}


def encode(value: Any) -> bytes:
    return orjson.dumps(value)


def refused(kind: str, value: Any) -> str:
    """Parse ``value`` as ``kind``, expect InvalidEvent, and return its reason."""
    with pytest.raises(InvalidEvent) as caught:
        events.parse(kind, encode(value))
    reason = caught.value.reason
    assert reason
    assert "\n" not in reason
    assert str(caught.value) == reason
    return reason


def without(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != name}


# --- valid events -------------------------------------------------------------------


def test_payment_parses_with_every_field() -> None:
    data = {**PAYMENT, "device_id": "dev-9", "ip": "10.0.0.7"}
    event = events.parse(PAYMENTS, encode(data))
    assert isinstance(event, Payment)
    assert event.kind == PAYMENTS
    assert (event.event_id, event.payer, event.payee) == ("pay-1", "acct-a", "acct-b")
    assert event.amount == 120.5
    assert event.currency == "CNY"
    assert event.channel == "card"
    assert (event.device_id, event.ip) == ("dev-9", "10.0.0.7")
    assert event.ts == TS_EPOCH
    assert event.ts_text == TS
    assert (event.loan_id, event.borrower) == (None, None)


def test_payment_optional_fields_default() -> None:
    event = events.parse(PAYMENTS, encode(without(PAYMENT, "currency")))
    assert isinstance(event, Payment)
    assert event.currency == "CNY"
    assert (event.device_id, event.ip, event.loan_id, event.borrower) == (None,) * 4


def test_payment_null_optional_fields_count_as_absent() -> None:
    event = events.parse(PAYMENTS, encode({**PAYMENT, "device_id": None, "ip": None}))
    assert isinstance(event, Payment)
    assert (event.device_id, event.ip) == (None, None)


def test_payment_other_currency_is_kept() -> None:
    event = events.parse(PAYMENTS, encode({**PAYMENT, "currency": "USD"}))
    assert isinstance(event, Payment)
    assert event.currency == "USD"


def test_integer_amount_becomes_float() -> None:
    event = events.parse(PAYMENTS, encode({**PAYMENT, "amount": 7}))
    assert isinstance(event, Payment)
    assert event.amount == 7.0
    assert isinstance(event.amount, float)


def test_amount_upper_bound_is_inclusive() -> None:
    event = events.parse(PAYMENTS, encode({**PAYMENT, "amount": 1e12}))
    assert isinstance(event, Payment)
    assert event.amount == 1e12


def test_loan_repayment_carries_loan_and_borrower() -> None:
    event = events.parse(PAYMENTS, encode(REPAYMENT))
    assert isinstance(event, Payment)
    assert (event.loan_id, event.borrower) == ("loan-1", "borrower-1")


def test_loan_fields_are_ignored_on_other_channels() -> None:
    data = {**PAYMENT, "loan_id": "loan-1", "borrower": "borrower-1"}
    event = events.parse(PAYMENTS, encode(data))
    assert isinstance(event, Payment)
    assert (event.loan_id, event.borrower) == (None, None)
    assert event.raw["borrower"] == "borrower-1"


@pytest.mark.parametrize("name", ["loan_id", "borrower"])
def test_loan_repayment_requires_loan_fields(name: str) -> None:
    assert name in refused(PAYMENTS, without(REPAYMENT, name))


def test_unknown_fields_are_kept_in_raw_and_ignored() -> None:
    data = {**PAYMENT, "merchant_category": "5411", "nested": {"a": [1, 2]}}
    event = events.parse(PAYMENTS, encode(data))
    assert event.raw == data
    assert not hasattr(event, "merchant_category")
    assert event == events.parse(PAYMENTS, encode(PAYMENT))


def test_disbursal_parses_with_every_field() -> None:
    data = {**DISBURSAL, "referrer": "FastLoan", "device_id": "dev-1"}
    event = events.parse(LOAN_DISBURSALS, encode(data))
    assert isinstance(event, LoanDisbursal)
    assert event.kind == LOAN_DISBURSALS
    assert (event.loan_id, event.borrower, event.lender) == ("loan-1", "borrower-1",
                                                             "QuickCash")
    assert (event.principal, event.fee, event.term_days) == (1500.0, 300.0, 7)
    assert event.account == "acct-borrower-1"
    assert (event.referrer, event.device_id) == ("FastLoan", "dev-1")
    assert event.ts == TS_EPOCH


def test_disbursal_defaults() -> None:
    data = without(without(DISBURSAL, "fee"), "currency")
    event = events.parse(LOAN_DISBURSALS, encode(data))
    assert isinstance(event, LoanDisbursal)
    assert event.fee == 0.0
    assert event.currency == "CNY"
    assert (event.referrer, event.device_id) == (None, None)


def test_disbursal_zero_fee_is_allowed() -> None:
    event = events.parse(LOAN_DISBURSALS, encode({**DISBURSAL, "fee": 0}))
    assert isinstance(event, LoanDisbursal)
    assert event.fee == 0.0


@pytest.mark.parametrize("term", [1, 36_500])
def test_term_days_bounds_are_inclusive(term: int) -> None:
    event = events.parse(LOAN_DISBURSALS, encode({**DISBURSAL, "term_days": term}))
    assert isinstance(event, LoanDisbursal)
    assert event.term_days == term


def test_entity_label_parses() -> None:
    event = events.parse(LABELS, encode(ENTITY_LABEL))
    assert isinstance(event, Label)
    assert event.kind == LABELS
    assert (event.entity, event.entity_type, event.pattern) == ("mule-1", "account",
                                                                "mule_account")
    assert event.confirmed is True
    assert event.target_event_id is None


def test_target_label_parses() -> None:
    event = events.parse(LABELS, encode(TARGET_LABEL))
    assert isinstance(event, Label)
    assert event.target_event_id == "pay-1"
    assert event.confirmed is False
    assert (event.entity, event.entity_type, event.pattern) == (None, None, None)


@pytest.mark.parametrize("entity_type", sorted(events.ENTITY_TYPES))
def test_every_entity_type_is_accepted(entity_type: str) -> None:
    event = events.parse(LABELS, encode({**ENTITY_LABEL, "entity_type": entity_type}))
    assert isinstance(event, Label)
    assert event.entity_type == entity_type


@pytest.mark.parametrize("channel", sorted(events.CHANNELS - {"loan_repayment"}))
def test_every_channel_is_accepted(channel: str) -> None:
    event = events.parse(PAYMENTS, encode({**PAYMENT, "channel": channel}))
    assert isinstance(event, Payment)
    assert event.channel == channel


@pytest.mark.parametrize(("text", "epoch"), [
    ("2026-01-05T02:00:00Z", TS_EPOCH),
    ("2026-01-05T02:00:00z", TS_EPOCH),
    ("2026-01-05t02:00:00+00:00", TS_EPOCH),
    ("2026-01-05 02:00:00Z", TS_EPOCH),
    ("2026-01-04T21:30:00-04:30", TS_EPOCH),
    ("2026-01-05T02:00:00.250Z", TS_EPOCH + 0.25),
    ("2026-01-05T02:00:00.5+00:00", TS_EPOCH + 0.5),
    ("2026-01-05T10:00:00.123456789+08:00", TS_EPOCH + 0.123456),
])
def test_rfc3339_forms_are_accepted(text: str, epoch: float) -> None:
    event = events.parse(PAYMENTS, encode({**PAYMENT, "ts": text}))
    assert event.ts == pytest.approx(epoch, abs=1e-6)
    assert event.ts_text == text


def test_partition_key_follows_the_contract() -> None:
    assert events.partition_key(events.from_dict(PAYMENTS, PAYMENT)) == "acct-a"
    assert events.partition_key(events.from_dict(LOAN_DISBURSALS, DISBURSAL)) == "borrower-1"
    assert events.partition_key(events.from_dict(LABELS, ENTITY_LABEL)) == "mule-1"
    assert events.partition_key(events.from_dict(LABELS, TARGET_LABEL)) == "pay-1"


# --- invalid input ------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID))
@pytest.mark.parametrize("payload", [
    b"not json at all", b"{", b"", b'{"event_id": "x",}', b"NaN", b"{'single': 1}",
])
def test_not_json_is_refused(kind: str, payload: bytes) -> None:
    with pytest.raises(InvalidEvent, match="JSON"):
        events.parse(kind, payload)


@pytest.mark.parametrize("payload", [
    b"\xff\xfe{}", b'{"event_id": "\xe9t\xe9"}', b'"\xed\xa0\x80"',
])
def test_non_utf8_bytes_are_refused(payload: bytes) -> None:
    with pytest.raises(InvalidEvent, match="UTF-8"):
        events.parse(PAYMENTS, payload)


@pytest.mark.parametrize("kind", sorted(VALID))
@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"42", b"true", b"null"])
def test_json_that_is_not_an_object_is_refused(kind: str, payload: bytes) -> None:
    with pytest.raises(InvalidEvent, match="object"):
        events.parse(kind, payload)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_null_payload_is_refused(kind: str) -> None:
    with pytest.raises(InvalidEvent, match="null"):
        events.parse(kind, None)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="transfers"):
        events.parse("transfers", encode(PAYMENT))
    with pytest.raises(InvalidEvent, match="transfers"):
        events.from_dict("transfers", PAYMENT)


def test_oversize_message_is_refused() -> None:
    payload = encode({**PAYMENT, "note": "x" * 70_000})
    with pytest.raises(InvalidEvent, match="65536"):
        events.parse(PAYMENTS, payload)


def test_max_bytes_is_an_inclusive_limit() -> None:
    payload = encode(PAYMENT)
    assert events.parse(PAYMENTS, payload, max_bytes=len(payload)).event_id == "pay-1"
    with pytest.raises(InvalidEvent, match=f"{len(payload)} bytes"):
        events.parse(PAYMENTS, payload, max_bytes=len(payload) - 1)


REQUIRED = {
    PAYMENTS: ["event_id", "ts", "payer", "payee", "amount", "channel"],
    LOAN_DISBURSALS: ["event_id", "ts", "loan_id", "borrower", "lender", "principal",
                      "term_days", "account"],
    LABELS: ["event_id", "ts", "confirmed", "entity_type", "pattern"],
}
MISSING_CASES = [(kind, name) for kind, names in REQUIRED.items() for name in names]


@pytest.mark.parametrize(("kind", "name"), MISSING_CASES)
def test_missing_required_field_is_named(kind: str, name: str) -> None:
    assert name in refused(kind, without(VALID[kind], name))


@pytest.mark.parametrize(("kind", "name"), MISSING_CASES)
def test_null_required_field_is_refused(kind: str, name: str) -> None:
    assert name in refused(kind, {**VALID[kind], name: None})


ID_FIELDS = [(PAYMENTS, name) for name in ("event_id", "payer", "payee", "device_id", "ip")]
ID_FIELDS += [(LOAN_DISBURSALS, name) for name in ("event_id", "loan_id", "borrower",
                                                   "lender", "account", "referrer",
                                                   "device_id")]
ID_FIELDS += [(LABELS, name) for name in ("event_id", "entity")]


@pytest.mark.parametrize(("kind", "name"), ID_FIELDS)
@pytest.mark.parametrize("value", [7, 1.5, True, ["a"], {"id": "a"}])
def test_ill_typed_identifier_is_named(kind: str, name: str, value: Any) -> None:
    assert name in refused(kind, {**VALID[kind], name: value})


@pytest.mark.parametrize(("kind", "name"), ID_FIELDS)
@pytest.mark.parametrize("value", ["", "x" * 129, "\u00e9" * 129])
def test_identifier_length_is_bounded(kind: str, name: str, value: str) -> None:
    reason = refused(kind, {**VALID[kind], name: value})
    assert name in reason
    assert "128" in reason


@pytest.mark.parametrize(("kind", "name"), ID_FIELDS)
def test_identifier_of_128_characters_is_accepted(kind: str, name: str) -> None:
    event = events.parse(kind, encode({**VALID[kind], name: "\u6768" * 128}))
    assert event.raw[name] == "\u6768" * 128


def test_repayment_identifiers_are_checked() -> None:
    assert "loan_id" in refused(PAYMENTS, {**REPAYMENT, "loan_id": ""})
    assert "borrower" in refused(PAYMENTS, {**REPAYMENT, "borrower": 42})


@pytest.mark.parametrize(("kind", "name"), [(PAYMENTS, "amount"),
                                            (LOAN_DISBURSALS, "principal"),
                                            (LOAN_DISBURSALS, "fee")])
@pytest.mark.parametrize("value", [
    True, False, "10", [10], {"v": 10}, 1e12 * 1.0000001, 10**12 + 1, 10**18,
    -0.01, -1,
])
def test_bad_amount_is_named(kind: str, name: str, value: Any) -> None:
    assert name in refused(kind, {**VALID[kind], name: value})


@pytest.mark.parametrize(("kind", "name"), [(PAYMENTS, "amount"),
                                            (LOAN_DISBURSALS, "principal")])
def test_zero_amount_is_refused(kind: str, name: str) -> None:
    assert "positive" in refused(kind, {**VALID[kind], name: 0})
    assert "positive" in refused(kind, {**VALID[kind], name: 0.0})


@pytest.mark.parametrize(("kind", "name"), [(PAYMENTS, "amount"),
                                            (LOAN_DISBURSALS, "principal"),
                                            (LOAN_DISBURSALS, "fee")])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_amount_is_refused(kind: str, name: str, value: float) -> None:
    # JSON has no NaN or infinity, so these can only reach the contract as Python values.
    with pytest.raises(InvalidEvent, match=name):
        events.from_dict(kind, {**VALID[kind], name: value})


def test_overflowing_json_number_is_refused() -> None:
    payload = encode(PAYMENT).replace(b"120.5", b"1e400")
    with pytest.raises(InvalidEvent):
        events.parse(PAYMENTS, payload)


@pytest.mark.parametrize("channel", ["telepathy", "CARD", "", 3])
def test_unknown_channel_is_refused(channel: Any) -> None:
    reason = refused(PAYMENTS, {**PAYMENT, "channel": channel})
    assert "channel" in reason
    assert "card" in reason


@pytest.mark.parametrize("channel", [["card"], {"card": 1}])
def test_unhashable_channel_is_refused(channel: Any) -> None:
    assert "channel" in refused(PAYMENTS, {**PAYMENT, "channel": channel})


@pytest.mark.parametrize("value", [
    "2026-01-05T10:00:00", "2026-01-05", "yesterday", "", "2026-01-05T10:00+08:00",
    "2026-01-05T10:00:00+0800", "2026-01-05T10:00:00 +08:00", "05/01/2026 10:00:00Z",
    "2026-01-05T10:00:00+08:00 ", "2026-01-05T10:00:00.Z",
])
def test_unparseable_or_offsetless_time_is_refused(value: str) -> None:
    assert "'ts'" in refused(PAYMENTS, {**PAYMENT, "ts": value})


@pytest.mark.parametrize("value", [
    "2026-13-05T10:00:00Z", "2026-02-30T10:00:00Z", "2026-01-05T25:00:00Z",
    "2026-01-05T10:61:00Z", "2026-01-05T10:00:60Z", "2026-01-05T10:00:00+24:00",
    "0000-01-01T00:00:00Z", "\u0662\u0660\u0662\u0666-01-05T10:00:00Z",
])
def test_impossible_time_is_refused(value: str) -> None:
    assert "'ts'" in refused(PAYMENTS, {**PAYMENT, "ts": value})


@pytest.mark.parametrize("value", [1767578400, 1767578400.0, True, ["2026-01-05"]])
def test_non_string_time_is_refused(value: Any) -> None:
    assert "'ts'" in refused(PAYMENTS, {**PAYMENT, "ts": value})


@pytest.mark.parametrize("kind", [PAYMENTS, LOAN_DISBURSALS])
@pytest.mark.parametrize("value", ["cny", "CN", "EURO", "C1Y", "", 156, True])
def test_bad_currency_is_refused(kind: str, value: Any) -> None:
    assert "currency" in refused(kind, {**VALID[kind], "currency": value})


@pytest.mark.parametrize("value", [0, -7, 36_501, 7.0, 7.5, "7", True, None, [7]])
def test_term_days_must_be_a_positive_integer(value: Any) -> None:
    assert "term_days" in refused(LOAN_DISBURSALS, {**DISBURSAL, "term_days": value})


def test_label_needs_entity_or_target() -> None:
    data = without(without(ENTITY_LABEL, "entity"), "entity_type")
    reason = refused(LABELS, without(data, "pattern"))
    assert "entity" in reason
    assert "target_event_id" in reason


@pytest.mark.parametrize("value", ["merchant", "", "Account", 1, ["account"], {"t": 1}])
def test_label_entity_type_must_be_known(value: Any) -> None:
    assert "entity_type" in refused(LABELS, {**ENTITY_LABEL, "entity_type": value})


@pytest.mark.parametrize("value", [1, 0, "true", "yes", None])
def test_label_confirmed_must_be_boolean(value: Any) -> None:
    assert "confirmed" in refused(LABELS, {**ENTITY_LABEL, "confirmed": value})


# --- properties ---------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
kinds = st.sampled_from(sorted(VALID))


def accepts_or_refuses(kind: str, call: Any) -> None:
    """``call()`` returns an event of ``kind`` or raises InvalidEvent; nothing else."""
    try:
        event = call()
    except InvalidEvent as exc:
        assert exc.reason
        assert "\n" not in exc.reason
    else:
        assert event.kind == kind


@FUZZ
@given(kind=kinds, payload=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_invalid_event(kind: str, payload: bytes) -> None:
    accepts_or_refuses(kind, lambda: events.parse(kind, payload))


@FUZZ
@given(kind=kinds, value=json_values)
def test_arbitrary_json_only_raises_invalid_event(kind: str, value: Any) -> None:
    accepts_or_refuses(kind, lambda: events.parse(kind, encode(value)))
    accepts_or_refuses(kind, lambda: events.from_dict(kind, value))


TEMPLATES = [(PAYMENTS, PAYMENT), (PAYMENTS, REPAYMENT), (LOAN_DISBURSALS, DISBURSAL),
             (LABELS, ENTITY_LABEL), (LABELS, TARGET_LABEL)]
OPTIONAL = {PAYMENTS: ["device_id", "ip", "loan_id", "borrower"],
            LOAN_DISBURSALS: ["referrer", "device_id"],
            LABELS: ["entity", "entity_type", "pattern", "target_event_id"]}
KNOWN_FIELDS = sorted({name for _, template in TEMPLATES for name in template}
                      | {name for names in OPTIONAL.values() for name in names})
# Containers as often as scalars: a field of the wrong shape is the likeliest damage.
damage = st.one_of(json_scalars, st.lists(json_scalars, max_size=3),
                   st.dictionaries(st.text(max_size=5), json_scalars, max_size=3), json_values)


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid event with one or two of its fields replaced by arbitrary JSON, or dropped."""
    kind, template = draw(st.sampled_from(TEMPLATES))
    data = dict(template)
    fields = sorted({*template, *OPTIONAL[kind]})
    for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique=True)):
        if draw(st.integers(0, 3)):
            data[name] = draw(damage)
        else:
            data.pop(name, None)
    return kind, data


@FUZZ
@given(case=near_valid())
def test_damaged_events_only_raise_invalid_event(case: tuple[str, dict[str, Any]]) -> None:
    kind, data = case
    accepts_or_refuses(kind, lambda: events.parse(kind, encode(data)))


ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=128).map(
    lambda text: unicodedata.normalize("NFC", text)).filter(
    lambda text: 1 <= len(text) <= 128 and text.isprintable() and text == text.strip(" "))
"""Identifiers the contract accepts as they are: printable, NFC, no outer spaces."""


@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, float]:
    """An RFC 3339 time with an offset, and its epoch seconds computed independently."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    micros = moment.microsecond if draw(st.booleans()) else 0
    offset = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    if micros:
        text += f".{micros:06d}"
    if offset == 0 and draw(st.booleans()):
        text += "Z"
    else:
        sign = "+" if offset >= 0 else "-"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    seconds = calendar.timegm(moment.replace(microsecond=0).timetuple()) - offset * 60
    return text, (seconds * 10**6 + micros) / 10**6


amounts = (st.floats(min_value=events.MIN_AMOUNT, max_value=1e12)
           | st.integers(min_value=1, max_value=10**12))


@st.composite
def payments(draw: st.DrawFn) -> dict[str, Any]:
    ts_text, _ = draw(rfc3339())
    data: dict[str, Any] = {
        "event_id": draw(ids), "ts": ts_text, "payer": draw(ids), "payee": draw(ids),
        "amount": draw(amounts), "channel": draw(st.sampled_from(sorted(events.CHANNELS))),
    }
    if data["channel"] == "loan_repayment":
        data["loan_id"], data["borrower"] = draw(ids), draw(ids)
    for name in ("device_id", "ip"):
        if draw(st.booleans()):
            data[name] = draw(ids)
    if draw(st.booleans()):
        data["currency"] = draw(st.sampled_from(sorted(CURRENCIES)))
    if draw(st.booleans()):
        extra = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in KNOWN_FIELDS))
        data[extra] = draw(json_values)
    return data


@FUZZ
@given(data=payments())
def test_valid_payments_parse_and_round_trip(data: dict[str, Any]) -> None:
    event = events.parse(PAYMENTS, encode(data))
    assert isinstance(event, Payment)
    assert event.raw == data
    assert event.event_id == data["event_id"]
    assert (event.payer, event.payee, event.channel) == (data["payer"], data["payee"],
                                                         data["channel"])
    assert event.amount == float(data["amount"])
    assert event.currency == data.get("currency", "CNY")
    assert event.device_id == data.get("device_id")
    assert event.ip == data.get("ip")
    assert event.loan_id == data.get("loan_id")
    assert event.borrower == data.get("borrower")
    assert event.ts_text == data["ts"]
    # Re-encoding the typed fields gives back an equal event.
    again = {name: getattr(event, name) for name in (
        "event_id", "payer", "payee", "amount", "currency", "channel", "device_id", "ip",
        "loan_id", "borrower")}
    again["ts"] = event.ts_text
    assert events.parse(PAYMENTS, encode(again)) == event


@FUZZ
@given(case=rfc3339())
def test_timestamps_convert_to_epoch_seconds(case: tuple[str, float]) -> None:
    text, epoch = case
    event = events.from_dict(PAYMENTS, {**PAYMENT, "ts": text})
    assert event.ts == epoch
    assert event.ts_text == text


WRONG_TYPES = st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
WRONG_VALUE = {
    "event_id": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "payer": st.one_of(WRONG_TYPES, st.floats(), st.just(""), st.text(min_size=129)),
    "payee": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "loan_id": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "borrower": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "lender": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "account": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "entity_type": st.one_of(WRONG_TYPES, st.integers(),
                             st.text().filter(lambda t: t not in events.ENTITY_TYPES)),
    "entity": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "target_event_id": st.one_of(WRONG_TYPES, st.integers(), st.just(""),
                                 st.text(min_size=129)),
    "pattern": st.one_of(WRONG_TYPES, st.integers(), st.just(""), st.text(min_size=129)),
    "ts": st.one_of(WRONG_TYPES, st.integers(), st.floats(),
                    st.text(max_size=30).filter(lambda t: not t[:1].isdigit()),
                    st.just("2026-01-05T10:00:00"), st.just("2026-01-05")),
    "amount": st.one_of(WRONG_TYPES, st.text(), st.floats(max_value=0),
                        st.floats(min_value=1e12, exclude_min=True),
                        st.integers(max_value=0), st.integers(min_value=10**12 + 1)),
    "principal": st.one_of(WRONG_TYPES, st.text(), st.floats(max_value=0),
                           st.floats(min_value=1e12, exclude_min=True),
                           st.integers(max_value=0)),
    "term_days": st.one_of(WRONG_TYPES, st.text(), st.floats(), st.integers(max_value=0),
                           st.integers(min_value=36_501)),
    "channel": st.one_of(WRONG_TYPES, st.integers(),
                         st.text().filter(lambda t: t not in events.CHANNELS)),
    "confirmed": st.one_of(st.none(), st.integers(), st.text(), st.lists(st.booleans())),
}
MUTATIONS = ([(PAYMENTS, REPAYMENT, name) for name in [*REQUIRED[PAYMENTS], "loan_id",
                                                       "borrower"]]
             + [(LOAN_DISBURSALS, DISBURSAL, name) for name in REQUIRED[LOAN_DISBURSALS]]
             + [(LABELS, ENTITY_LABEL, name) for name in [*REQUIRED[LABELS], "entity"]]
             + [(LABELS, TARGET_LABEL, name) for name in ("event_id", "ts", "confirmed",
                                                          "target_event_id")])


@FUZZ
@given(case=st.sampled_from(MUTATIONS), data=st.data())
def test_one_wrong_required_field_is_refused(case: tuple[str, dict[str, Any], str],
                                             data: st.DataObject) -> None:
    kind, valid, name = case
    value = data.draw(WRONG_VALUE[name], label=name)
    with pytest.raises(InvalidEvent) as caught:
        events.from_dict(kind, {**valid, name: value})
    assert caught.value.reason


@pytest.mark.parametrize("pattern", ["bank_robbery", "", "ROLLOVER_LOAN", 7])
def test_label_pattern_must_be_a_known_pattern(pattern: object) -> None:
    data = {"event_id": "l1", "ts": "2026-01-05T10:00:00+08:00", "entity": "a",
            "entity_type": "account", "pattern": pattern, "confirmed": True}
    with pytest.raises(InvalidEvent, match="'pattern' must be one of"):
        from_dict(LABELS, data)


_STAMP_PARTS = st.tuples(
    st.sampled_from([1, 1970, 2000, 2024, 2026, 2038, 9999]), st.integers(0, 13),
    st.integers(0, 32), st.sampled_from("Tt :"), st.integers(0, 25), st.integers(0, 61),
    st.integers(0, 61), st.sampled_from(["", ".5", ".123456", ".123456789"]),
    st.sampled_from(["Z", "z", "+08:00", "-05:30", "+23:59", "+24:00", "+08:60", ":08:00",
                     "+00:00", "-00:00"]),
    st.sampled_from(["", "", "+1", "1 ", "\u0663" "4", "5x"]),
)


@given(_STAMP_PARTS)
@settings(max_examples=400)
def test_timestamp_equals_fromisoformat_whether_or_not_its_hour_is_cached(
        parts: tuple[Any, ...]) -> None:
    year, month, day, sep, hour, minute, second, fraction, offset, junk = parts
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}"
    text = f"{text}{fraction}{offset}"
    if junk:  # a malformed minute: digits the hour cache must not take on trust
        text = text[:14] + junk + text[16:]
    expected: float | None = None
    if events._RFC3339.match(text):
        try:
            expected = datetime.fromisoformat(text.replace("z", "Z")).timestamp()
        except ValueError:
            expected = None
    for _ in range(2):  # the first call may fill the hour cache, the second uses it
        try:
            got: float | None = events._timestamp({"ts": text})[0]
        except InvalidEvent:
            got = None
        assert repr(got) == repr(expected)
