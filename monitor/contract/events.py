"""The event contract: parse and validate one Kafka message into a typed event.

Events are UTF-8 JSON objects, one per message (see ``docs/events.md``). Anything
that breaks the contract raises :class:`~monitor.errors.InvalidEvent` with a one-line
reason; unknown extra fields are kept in ``raw`` and otherwise ignored.

The rules are strict because every field may be hostile: a key given twice (which JSON
decoders resolve differently), an identifier with a control, format (bidi override,
zero-width) or private-use character, or one that differs from another only in its
Unicode composition (identifiers are NFC-normalized, so both name one entity), an amount
below one hundredth of a unit, a currency outside ISO 4217, a fee out of proportion to
its principal. Times are checked against a clock apart from this module
(:mod:`monitor.contract.clock`): parsing depends on the message alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from monitor.contract.currencies import CURRENCIES
from monitor.contract.vocabulary import ENTITY_TYPES as ALL_ENTITY_TYPES
from monitor.contract.vocabulary import PATTERNS
from monitor.errors import InvalidEvent

PAYMENTS: Final = "payments"
LOAN_DISBURSALS: Final = "loan-disbursals"
LABELS: Final = "labels"
INPUT_KINDS: Final = (PAYMENTS, LOAN_DISBURSALS, LABELS)

CHANNELS: Final = frozenset({"transfer", "card", "qr", "wallet", "cash_out", "loan_repayment"})
ENTITY_TYPES: Final = frozenset(ALL_ENTITY_TYPES)
"""Entity types a label may name (:mod:`monitor.contract.vocabulary`)."""
MAX_AMOUNT: Final = 1e12
MIN_AMOUNT: Final = 0.01
"""The smallest amount: one hundredth of a unit (a fen, a cent)."""
MAX_ID_LENGTH: Final = 128
MAX_TERM_DAYS: Final = 36_500


@dataclass(frozen=True, slots=True)
class Limits:
    """The contract's configurable bounds (``processing`` settings)."""

    max_bytes: int = 65536
    """The largest message accepted, in bytes."""
    max_fee_ratio: float = 10.0
    """The largest ``fee`` of a loan disbursal, as a multiple of its ``principal``."""


DEFAULT_LIMITS: Final = Limits()

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z"
)


# Events are dataclasses for equality and repr, with ``__init__`` written out: a compiled
# build runs a generated ``__init__`` as interpreted Python (a frozen one at ~2 us a call),
# a written one as C. Nothing assigns to an event after it is built.
@dataclass(slots=True, init=False)
class Payment:
    event_id: str
    ts: float
    ts_text: str
    payer: str
    payee: str
    amount: float
    currency: str
    channel: str
    device_id: str | None
    ip: str | None
    loan_id: str | None
    borrower: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    def __init__(self, event_id: str, ts: float, ts_text: str, payer: str, payee: str,
                 amount: float, currency: str, channel: str, device_id: str | None = None,
                 ip: str | None = None, loan_id: str | None = None, borrower: str | None = None,
                 raw: dict[str, Any] | None = None) -> None:
        self.event_id = event_id
        self.ts = ts
        self.ts_text = ts_text
        self.payer = payer
        self.payee = payee
        self.amount = amount
        self.currency = currency
        self.channel = channel
        self.device_id = device_id
        self.ip = ip
        self.loan_id = loan_id
        self.borrower = borrower
        self.raw = raw if raw is not None else {}

    @property
    def kind(self) -> str:
        """The input topic kind."""
        return PAYMENTS


@dataclass(slots=True, init=False)
class LoanDisbursal:
    event_id: str
    ts: float
    ts_text: str
    loan_id: str
    borrower: str
    lender: str
    principal: float
    currency: str
    fee: float
    term_days: int
    account: str
    referrer: str | None
    device_id: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    def __init__(self, event_id: str, ts: float, ts_text: str, loan_id: str, borrower: str,
                 lender: str, principal: float, currency: str, fee: float, term_days: int,
                 account: str, referrer: str | None = None, device_id: str | None = None,
                 raw: dict[str, Any] | None = None) -> None:
        self.event_id = event_id
        self.ts = ts
        self.ts_text = ts_text
        self.loan_id = loan_id
        self.borrower = borrower
        self.lender = lender
        self.principal = principal
        self.currency = currency
        self.fee = fee
        self.term_days = term_days
        self.account = account
        self.referrer = referrer
        self.device_id = device_id
        self.raw = raw if raw is not None else {}

    @property
    def kind(self) -> str:
        """The input topic kind."""
        return LOAN_DISBURSALS


@dataclass(slots=True, init=False)
class Label:
    event_id: str
    ts: float
    ts_text: str
    confirmed: bool
    entity: str | None
    entity_type: str | None
    pattern: str | None
    target_event_id: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    def __init__(self, event_id: str, ts: float, ts_text: str, confirmed: bool,
                 entity: str | None = None, entity_type: str | None = None,
                 pattern: str | None = None, target_event_id: str | None = None,
                 raw: dict[str, Any] | None = None) -> None:
        self.event_id = event_id
        self.ts = ts
        self.ts_text = ts_text
        self.confirmed = confirmed
        self.entity = entity
        self.entity_type = entity_type
        self.pattern = pattern
        self.target_event_id = target_event_id
        self.raw = raw if raw is not None else {}

    @property
    def kind(self) -> str:
        """The input topic kind."""
        return LABELS


Event = Payment | LoanDisbursal | Label


def _identifier(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if (type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isascii()
            and value.isprintable() and value[0] != " " and value[-1] != " "):
        return value  # the common case, checked first
    if value is None:
        if required:
            raise InvalidEvent(f"missing field '{name}'")
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"field '{name}' must be a string")
    return _strict_identifier(value, name)


def _strict_identifier(value: str, name: str) -> str:
    """``value`` NFC-normalized, or why it cannot name anything."""
    if not value.isprintable():
        raise InvalidEvent(f"field '{name}' has a control, format, private-use or "
                           "unassigned character")
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise InvalidEvent(f"field '{name}' must be 1-{MAX_ID_LENGTH} characters")
    if value[0] == " " or value[-1] == " ":
        raise InvalidEvent(f"field '{name}' has a leading or trailing space")
    return value


def _required_id(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if (type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isascii()
            and value.isprintable() and value[0] != " " and value[-1] != " "):
        return value
    checked = _identifier(data, name)
    assert checked is not None  # noqa: S101 - _identifier raises when a required id is missing
    return checked


def _amount(data: dict[str, Any], name: str, *, default: float | None = None,
            allow_zero: bool = False) -> float:
    value = data.get(name)
    if type(value) is float and MIN_AMOUNT <= value <= MAX_AMOUNT:
        return value  # the common case, checked first
    if value is None:
        if default is not None:
            return default
        raise InvalidEvent(f"missing field '{name}'")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"field '{name}' must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEvent(f"field '{name}' must be finite")
    if number < 0 or (number == 0 and not allow_zero):
        raise InvalidEvent(f"field '{name}' must be {'>= 0' if allow_zero else 'positive'}")
    if 0 < number < MIN_AMOUNT:
        raise InvalidEvent(f"field '{name}' is below {MIN_AMOUNT} (a hundredth of a unit)")
    if number > MAX_AMOUNT:
        raise InvalidEvent(f"field '{name}' exceeds {MAX_AMOUNT:.0e}")
    return number


_HOURS: dict[str, int] = {}
"""Epoch seconds of ``YYYY-MM-DDTHH:00:00+hh:mm`` per date, hour and offset text, for times
that passed the full check once (``value[:13] + value[19:]`` of a 25-character time)."""
_HOURS_MAX = 1 << 16
_CURRENCIES: set[str] = set()
"""Currency codes already validated (a handful in practice)."""


def _timestamp(data: dict[str, Any]) -> tuple[float, str]:
    value = data.get("ts")
    if type(value) is str and len(value) == 25 and value[13] == ":" and value[16] == ":":
        # Whole seconds with a numeric offset in an hour already seen: the hour's epoch plus
        # minutes and seconds, exactly what ``fromisoformat(...).timestamp()`` gives.
        base = _HOURS.get(value[:13] + value[19:])
        # Minutes and seconds "00" to "59", read digit by digit (no slices).
        m1, m2 = ord(value[14]) - 48, ord(value[15]) - 48
        s1, s2 = ord(value[17]) - 48, ord(value[18]) - 48
        if (base is not None and 0 <= m1 <= 5 and 0 <= m2 <= 9 and 0 <= s1 <= 5
                and 0 <= s2 <= 9):
            return float(base + (m1 * 10 + m2) * 60 + s1 * 10 + s2), value
    if value is None:
        raise InvalidEvent("missing field 'ts'")
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise InvalidEvent("field 'ts' must be an RFC 3339 time with an offset")
    if len(value) == 25 and value[19] in "+-":
        _remember_hour(value[:13] + value[19:])
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidEvent("field 'ts' is not a valid date and time") from exc
    return parsed.timestamp(), value


def _remember_hour(key: str) -> None:
    """Cache the epoch of ``key``'s hour (``YYYY-MM-DDTHH+hh:mm``) when it is a valid time."""
    try:
        base = datetime.fromisoformat(f"{key[:13]}:00:00{key[13:]}").timestamp()
    except ValueError:
        return
    if len(_HOURS) >= _HOURS_MAX:
        _HOURS.clear()
    _HOURS[key] = int(base)


def _currency(data: dict[str, Any]) -> str:
    value = data.get("currency", "CNY")
    if type(value) is str and value in _CURRENCIES:
        return value
    if not isinstance(value, str) or value not in CURRENCIES:
        raise InvalidEvent("field 'currency' must be an ISO 4217 code like 'CNY'")
    if len(_CURRENCIES) < 256:
        _CURRENCIES.add(value)
    return value


def _payment(data: dict[str, Any], limits: Limits) -> Payment:
    event_id = _required_id(data, "event_id")
    ts, ts_text = _timestamp(data)
    payer = _required_id(data, "payer")
    payee = _required_id(data, "payee")
    amount = _amount(data, "amount")
    currency = _currency(data)
    channel = data.get("channel")
    if channel is None:
        raise InvalidEvent("missing field 'channel'")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise InvalidEvent("field 'channel' must be one of " + ", ".join(sorted(CHANNELS)))
    loan_id = borrower = None
    if channel == "loan_repayment":
        loan_id = _identifier(data, "loan_id")
        borrower = _identifier(data, "borrower")
    return Payment(
        event_id=event_id, ts=ts, ts_text=ts_text, payer=payer, payee=payee, amount=amount,
        currency=currency, channel=channel,
        device_id=_identifier(data, "device_id", required=False),
        ip=_identifier(data, "ip", required=False),
        loan_id=loan_id, borrower=borrower, raw=data,
    )


def _disbursal(data: dict[str, Any], limits: Limits) -> LoanDisbursal:
    event_id = _required_id(data, "event_id")
    ts, ts_text = _timestamp(data)
    term = data.get("term_days")
    if term is None:
        raise InvalidEvent("missing field 'term_days'")
    if isinstance(term, bool) or not isinstance(term, int) or not 0 < term <= MAX_TERM_DAYS:
        raise InvalidEvent(f"field 'term_days' must be an integer in 1..{MAX_TERM_DAYS}")
    principal = _amount(data, "principal")
    fee = _amount(data, "fee", default=0.0, allow_zero=True)
    if fee > principal * limits.max_fee_ratio:
        raise InvalidEvent(f"field 'fee' exceeds {limits.max_fee_ratio:g} times the principal")
    return LoanDisbursal(
        event_id=event_id, ts=ts, ts_text=ts_text,
        loan_id=_required_id(data, "loan_id"),
        borrower=_required_id(data, "borrower"),
        lender=_required_id(data, "lender"),
        principal=principal,
        currency=_currency(data),
        fee=fee,
        term_days=term,
        account=_required_id(data, "account"),
        referrer=_identifier(data, "referrer", required=False),
        device_id=_identifier(data, "device_id", required=False),
        raw=data,
    )


def _label(data: dict[str, Any], limits: Limits) -> Label:
    event_id = _required_id(data, "event_id")
    ts, ts_text = _timestamp(data)
    confirmed = data.get("confirmed")
    if not isinstance(confirmed, bool):
        raise InvalidEvent("field 'confirmed' must be true or false")
    target = _identifier(data, "target_event_id", required=False)
    if target is not None:
        return Label(event_id=event_id, ts=ts, ts_text=ts_text, confirmed=confirmed,
                     target_event_id=target, raw=data)
    entity = _identifier(data, "entity", required=False)
    if entity is None:
        raise InvalidEvent("a label needs 'entity' or 'target_event_id'")
    entity_type = data.get("entity_type")
    if not isinstance(entity_type, str) or entity_type not in ENTITY_TYPES:
        raise InvalidEvent("field 'entity_type' must be one of " + ", ".join(sorted(ENTITY_TYPES)))
    pattern = data.get("pattern")
    if not isinstance(pattern, str) or pattern not in PATTERNS:
        raise InvalidEvent("field 'pattern' must be one of " + ", ".join(PATTERNS))
    return Label(event_id=event_id, ts=ts, ts_text=ts_text, confirmed=confirmed, entity=entity,
                 entity_type=entity_type, pattern=pattern, raw=data)


_PARSERS: dict[str, Callable[[dict[str, Any], Limits], Event]] = {
    PAYMENTS: _payment, LOAN_DISBURSALS: _disbursal, LABELS: _label,
}


def from_dict(kind: str, data: Any, limits: Limits = DEFAULT_LIMITS) -> Event:
    """Validate an already-decoded JSON value as an event of ``kind``."""
    parser = _PARSERS.get(kind)
    if parser is None:
        raise InvalidEvent(f"unknown topic kind '{kind}'")
    if not isinstance(data, dict):
        raise InvalidEvent("event must be a JSON object")
    return parser(data, limits)


def parse(kind: str, payload: bytes | None, *, max_bytes: int | None = None,
          limits: Limits = DEFAULT_LIMITS) -> Event:
    """Decode one Kafka message value of topic ``kind`` into a validated event."""
    if payload is None:
        raise InvalidEvent("empty message (null value)")
    limit = limits.max_bytes if max_bytes is None else max_bytes
    if len(payload) > limit:
        raise InvalidEvent(f"message of {len(payload)} bytes exceeds the {limit}-byte limit")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not UTF-8 JSON: {str(exc).splitlines()[0]}") from exc
    if repeats_a_key(payload, data):
        raise InvalidEvent("a JSON key appears more than once")
    return from_dict(kind, data, limits)


def repeats_a_key(payload: bytes, data: Any) -> bool:
    """Whether the JSON text ``payload`` (decoded as ``data``) names a key twice in an
    object, at any depth: decoders disagree on which value wins, so it is refused.

    Without escapes the colons are counted, not parsed again: each is a key's or inside a
    string, so more colons than keys and string colons together means a repeated key.
    With escapes the text is decoded again, pair by pair.

    >>> repeats_a_key(b'{"amount": -5, "amount": 5}', {"amount": 5})
    True
    >>> repeats_a_key(b'{"ts": "10:00:00", "a": [{"b": 1}]}', {"ts": "10:00:00", "a": [{"b": 1}]})
    False
    """
    if b"\\" not in payload:
        return payload.count(b":") != _colons(data, 0)
    try:
        json.loads(payload, object_pairs_hook=_unique_pairs)
    except _RepeatedKey:
        return True
    except ValueError:  # orjson took it; the stdlib may not (a lone surrogate): no verdict
        return False
    return False


MAX_DEPTH: Final = 32
"""The deepest nesting of objects and arrays an event may have."""


def _colons(value: Any, depth: int) -> int:
    """Keys plus colons inside strings, in ``value`` and everything it holds."""
    if depth > MAX_DEPTH:
        raise InvalidEvent(f"JSON nested more than {MAX_DEPTH} deep")
    count = 0
    if type(value) is dict:
        count = len(value)
        for key, item in value.items():
            count += key.count(":")
            kind = type(item)
            if kind is str:
                count += item.count(":")
            elif kind is dict or kind is list:
                count += _colons(item, depth + 1)
    elif type(value) is list:
        for item in value:
            kind = type(item)
            if kind is str:
                count += item.count(":")
            elif kind is dict or kind is list:
                count += _colons(item, depth + 1)
    elif type(value) is str:
        count = value.count(":")
    return count


class _RepeatedKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _RepeatedKey
    return result


def content_digest(event: Event) -> str:
    """A digest of what ``event`` says, key order aside: one ``event_id`` with two
    digests is two different events under one name."""
    canonical = orjson.dumps(event.raw, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def partition_key(event: Event) -> str:
    """The contract's Kafka message key for an input event."""
    if isinstance(event, Payment):
        return event.payer
    if isinstance(event, LoanDisbursal):
        return event.borrower
    return event.entity or event.target_event_id or event.event_id
