"""The hostile-input corpus: malformed and malicious input messages, each with the reason
it must be dead-lettered for.

Run through replay (tests/unit/test_hostile_corpus.py) and through a live worker on a
real broker (tests/integration/test_hostile.py). Each case is one input message's bytes
on one input topic, as an attacker or a broken upstream system would write it; ``ANCHORS``
are valid events sent first (a conflicting copy of one is a case).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from monitor.contract.events import LABELS, LOAN_DISBURSALS, PAYMENTS

TS = "2026-01-05T09:00:00+08:00"


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    payload: bytes
    reason: str
    """A fragment of the dead letter's reason."""


def payment(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "h-p", "ts": TS, "payer": "hostile-payer",
                            "payee": "hostile-payee", "amount": 10.0, "channel": "transfer"}
    base.update(fields)
    return {name: value for name, value in base.items() if value is not DROP}


def disbursal(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "h-d", "ts": TS, "loan_id": "loan-h",
                            "borrower": "borrower-h", "lender": "lender-h",
                            "principal": 1500.0, "fee": 150.0, "term_days": 7,
                            "account": "acct-h"}
    base.update(fields)
    return {name: value for name, value in base.items() if value is not DROP}


def label(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "h-l", "ts": TS, "entity": "hostile-payer",
                            "entity_type": "account", "pattern": "mule_account",
                            "confirmed": True}
    base.update(fields)
    return {name: value for name, value in base.items() if value is not DROP}


DROP = object()
"""A field value meaning: leave the field out."""


def _json(data: Any) -> bytes:
    return orjson.dumps(data)


def _nested(depth: int) -> bytes:
    inner = b"[" * depth + b"]" * depth
    return _json(payment(event_id="h-deep"))[:-1] + b',"extra":' + inner + b"}"


def _future(days: float) -> str:
    moment = datetime.now(UTC) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


ANCHORS: list[tuple[str, bytes]] = [
    (PAYMENTS, _json(payment(event_id="anchor-1", payer="anchor-payer"))),
    (LOAN_DISBURSALS, _json(disbursal(event_id="anchor-2"))),
]
"""Valid events sent before the cases: each must be decided."""


def _id_cases(field: str, make: Any, kind: str) -> list[Case]:
    bad = {
        "NUL": "id\x00x", "newline": "id\nx", "tab": "id\tx", "escape": "id\x1b[31m",
        "DEL": "id\x7f", "C1 control": "id\x85x", "bidi override U+202E": "id\u202ex",
        "zero-width space": "id\u200bx", "zero-width joiner": "id\u200dx",
        "byte-order mark": "\ufeffid", "soft hyphen": "id\u00adx",
        "private use": "id\ue000", "unassigned": "id\u0378",
        "line separator": "id\u2028x", "no-break space": "id\u00a0x",
        "ideographic space": "id\u3000x",
    }
    cases = [Case(f"{kind} {field} with {what}", kind, _json(make(**{field: value})),
                  "control, format, private-use or unassigned")
             for what, value in bad.items()]
    cases += [
        Case(f"{kind} {field} with a leading space", kind, _json(make(**{field: " id"})),
             "leading or trailing space"),
        Case(f"{kind} {field} empty", kind, _json(make(**{field: ""})), "1-128 characters"),
        Case(f"{kind} {field} of 129 characters", kind, _json(make(**{field: "x" * 129})),
             "1-128 characters"),
        Case(f"{kind} {field} a number", kind, _json(make(**{field: 7})), "must be a string"),
        Case(f"{kind} {field} missing", kind, _json(make(**{field: DROP})),
             f"missing field '{field}'"),
    ]
    return cases


def cases() -> list[Case]:
    """Every case (times relative to now are computed at the call)."""
    raw = _json(payment())
    found = [
        # Not a JSON object at all.
        Case("empty message", PAYMENTS, b"", "JSON"),
        Case("plain text", PAYMENTS, b"this is not json", "JSON"),
        Case("invalid UTF-8", PAYMENTS, b"\xff\xfe\x00{" * 64, "UTF-8"),
        Case("truncated JSON", PAYMENTS, raw[:-10], "JSON"),
        Case("a JSON array", PAYMENTS, b"[1, 2]", "object"),
        Case("a JSON string", LABELS, b'"just text"', "object"),
        Case("a JSON number", LOAN_DISBURSALS, b"42", "object"),
        Case("JSON null", PAYMENTS, b"null", "object"),
        Case("NaN literal", PAYMENTS, raw.replace(b'"amount":10.0', b'"amount":NaN'), "JSON"),
        Case("Infinity literal", PAYMENTS, raw.replace(b'"amount":10.0', b'"amount":Infinity'),
             "JSON"),
        Case("a lone surrogate", PAYMENTS, raw.replace(b'"hostile-payer"', b'"\\ud800"'),
             "JSON"),
        Case("a byte-order mark before the object", PAYMENTS, b"\xef\xbb\xbf" + raw, "JSON"),
        Case("over the size limit", PAYMENTS, _json(payment(note="x" * 70_000)), "bytes"),
        Case("nested 40 deep", PAYMENTS, _nested(40), "nested more than 32 deep"),
        # Keys given twice: decoders disagree on which one wins.
        Case("amount given twice", PAYMENTS,
             raw.replace(b'"amount":10.0', b'"amount":-5,"amount":5'),
             "a JSON key appears more than once"),
        Case("payer given twice, one escaped", PAYMENTS,
             raw.replace(b'"payer":', b'"pay\\u0065r":"other","payer":'),
             "a JSON key appears more than once"),
        Case("a key twice in a nested object", PAYMENTS,
             raw[:-1] + b',"meta":{"a":1,"a":2}}', "a JSON key appears more than once"),
        # Amounts.
        Case("amount 1e-300", PAYMENTS, _json(payment(amount=1e-300)), "below 0.01"),
        Case("amount 0.001", PAYMENTS, _json(payment(amount=0.001)), "below 0.01"),
        Case("amount zero", PAYMENTS, _json(payment(amount=0)), "positive"),
        Case("amount negative", PAYMENTS, _json(payment(amount=-10)), "positive"),
        Case("amount over 1e12", PAYMENTS, _json(payment(amount=2e12)), "amount"),
        Case("amount 1e400 (infinite)", PAYMENTS,
             raw.replace(b'"amount":10.0', b'"amount":1e400'), "infinity"),
        Case("amount as text", PAYMENTS, _json(payment(amount="10")), "must be a number"),
        Case("amount true", PAYMENTS, _json(payment(amount=True)), "must be a number"),
        Case("amount missing", PAYMENTS, _json(payment(amount=DROP)), "missing field 'amount'"),
        # Currency and channel.
        Case("currency ZZZ", PAYMENTS, _json(payment(currency="ZZZ")), "currency"),
        Case("currency XXX (no currency)", PAYMENTS, _json(payment(currency="XXX")),
             "currency"),
        Case("currency lower case", PAYMENTS, _json(payment(currency="cny")), "currency"),
        Case("currency a number", PAYMENTS, _json(payment(currency=156)), "currency"),
        Case("channel unknown", PAYMENTS, _json(payment(channel="teleport")),
             "field 'channel' must be one of"),
        Case("channel missing", PAYMENTS, _json(payment(channel=DROP)),
             "missing field 'channel'"),
        Case("loan repayment without loan_id", PAYMENTS,
             _json(payment(channel="loan_repayment", borrower="b")), "missing field 'loan_id'"),
        # Times.
        Case("ts in the year 9999", PAYMENTS, _json(payment(ts="9999-12-31T23:59:59Z")),
             "ahead of the clock"),
        Case("ts in the year 0001", PAYMENTS, _json(payment(ts="0001-01-01T00:00:00Z")),
             "before 2000-01-01"),
        Case("ts in 1970", PAYMENTS, _json(payment(ts="1970-01-01T00:00:00Z")),
             "before 2000-01-01"),
        Case("ts two days ahead", PAYMENTS, _json(payment(ts=_future(2))),
             "ahead of the clock"),
        Case("ts without an offset", PAYMENTS, _json(payment(ts="2026-01-05T09:00:00")),
             "ts"),
        Case("ts 30 February", PAYMENTS, _json(payment(ts="2026-02-30T09:00:00Z")), "ts"),
        Case("ts as epoch seconds", PAYMENTS, _json(payment(ts=1767574800)), "ts"),
        Case("ts in words", PAYMENTS, _json(payment(ts="yesterday")), "ts"),
        # Loan disbursals.
        Case("fee 1e12 on a principal of 1", LOAN_DISBURSALS,
             _json(disbursal(principal=1.0, fee=1e12)), "exceeds 10 times the principal"),
        Case("principal negative", LOAN_DISBURSALS, _json(disbursal(principal=-1500)),
             "positive"),
        Case("term of 0 days", LOAN_DISBURSALS, _json(disbursal(term_days=0)), "term_days"),
        Case("term of 100 years", LOAN_DISBURSALS, _json(disbursal(term_days=36_501)),
             "term_days"),
        Case("disbursal dated 9999", LOAN_DISBURSALS,
             _json(disbursal(ts="9999-01-01T00:00:00Z")), "ahead of the clock"),
        # Labels.
        Case("label dated 9999", LABELS, _json(label(ts="9999-12-31T00:00:00Z")),
             "ahead of the clock"),
        Case("label of an unknown pattern", LABELS, _json(label(pattern="pyramid")),
             "field 'pattern' must be one of"),
        Case("label of an unknown entity type", LABELS, _json(label(entity_type="planet")),
             "field 'entity_type' must be one of"),
        Case("label confirmed as text", LABELS, _json(label(confirmed="yes")),
             "field 'confirmed' must be true or false"),
        Case("label naming nothing", LABELS, _json(label(entity=DROP)),
             "a label needs 'entity' or 'target_event_id'"),
        # One event id, two contents.
        Case("an anchor's event_id with other content", PAYMENTS,
             _json(payment(event_id="anchor-1", payer="anchor-payer", amount=99_999.0)),
             "was seen with other content"),
    ]
    found += _id_cases("payer", payment, PAYMENTS)
    found += _id_cases("event_id", payment, PAYMENTS)[-4:]  # the shapes, not every char again
    found += _id_cases("lender", disbursal, LOAN_DISBURSALS)[:3]
    found += [Case("payment device_id with bidi override", PAYMENTS,
                   _json(payment(device_id="dev\u202e1")), "control, format"),
              Case("label entity with zero-width space", LABELS,
                   _json(label(entity="hostile\u200bpayer")), "control, format")]
    names = [case.name for case in found]
    assert len(names) == len(set(names)), "case names must be unique"
    return found
