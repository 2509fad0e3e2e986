"""The case workflow's rules: transitions, requests, retries and the labels decisions write."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.contract.events import LABELS, Label, parse
from monitor.errors import BadCaseRequest, CaseConflict
from monitor.interfaces.cases import (
    STATUSES,
    TRANSITIONS,
    CaseRequest,
    CaseState,
    Change,
    label_event_id,
    parse_request,
    plan,
    view,
)

ALERT = {"alert_id": "al_5f3c0a9e2b7d41c8a6e0f1d2", "pattern": "rollover_loan",
         "entity": "borrower-0042", "entity_type": "borrower",
         "ts": "2026-02-12T18:00:00+08:00", "score": 0.87, "severity": "medium"}
NOW = 1_780_000_000.0


def step(state: CaseState, status: str | None = None, by: str = "alice",
         **request: object) -> Change:
    return plan(state, CaseRequest(status=status, **request), ALERT, by, NOW)  # type: ignore[arg-type]


def test_the_workflow_open_investigate_decide_and_reopen() -> None:
    state = CaseState()
    assert state.allowed == ("investigating",)
    taken = step(state, "investigating")
    assert taken.state == CaseState("investigating", "alice", 1, 0) and taken.label is None
    assert taken.entry is not None and taken.entry["from"] == "open"
    confirmed = step(taken.state, "confirmed", note="five lenders in a month")
    assert confirmed.state == CaseState("confirmed", "alice", 2, 1)
    assert confirmed.label is not None and confirmed.label["confirmed"] is True
    assert confirmed.entry is not None and confirmed.entry["decision"] == 1
    assert confirmed.entry["label_event_id"] == confirmed.label["event_id"]
    assert confirmed.entry["note"] == "five lenders in a month"
    reopened = step(confirmed.state, "open", by="bob")
    assert reopened.state == CaseState("open", None, 3, 1) and reopened.label is None
    again = step(step(reopened.state, "investigating", by="bob").state, "dismissed", by="bob")
    assert again.state.decisions == 2 and again.label is not None
    assert again.label["confirmed"] is False
    assert again.label["event_id"] != confirmed.label["event_id"]


@pytest.mark.parametrize(("status", "wanted"), [
    (s, w) for s in STATUSES for w in STATUSES if w != s and w not in TRANSITIONS[s]])
def test_an_invalid_transition_names_the_allowed_ones(status: str, wanted: str) -> None:
    state = CaseState(status, "alice" if status != "open" else None, 4, 1)
    with pytest.raises(CaseConflict) as caught:
        step(state, wanted)
    assert caught.value.allowed == TRANSITIONS[status]
    assert f"allowed: {', '.join(TRANSITIONS[status])}" in str(caught.value)


def test_a_retried_decision_decides_once() -> None:
    state = step(CaseState(), "investigating").state
    first = step(state, "confirmed", version=1)
    assert first.label is not None and first.entry is not None
    # The same request again, after the case moved on because of it: nothing new.
    retried = plan(first.state, CaseRequest("confirmed", version=1), ALERT, "alice", NOW,
                   last_transition=first.entry)
    assert retried == Change(first.state, None, None)
    # Without a version, becoming what the case already is changes nothing either.
    assert step(first.state, "confirmed") == Change(first.state, None, None)
    # Someone else's move in between: refused, and the client is told to reload.
    with pytest.raises(CaseConflict, match="reload"):
        plan(first.state, CaseRequest("confirmed", version=1), ALERT, "bob", NOW,
             last_transition=first.entry)
    with pytest.raises(CaseConflict, match="reload"):
        plan(first.state, CaseRequest("dismissed", version=1), ALERT, "alice", NOW,
             last_transition=first.entry)


def test_notes_and_handing_a_case_over() -> None:
    state = step(CaseState(), "investigating").state
    noted = step(state, note="called the borrower")
    assert noted.state == state and noted.label is None
    assert noted.entry is not None and noted.entry["action"] == "note"
    again = plan(state, CaseRequest(note="called the borrower"), ALERT, "alice", NOW,
                 last_entry=noted.entry)
    assert again.entry is None
    handed = step(state, "investigating", assignee="bob")
    assert handed.state.assignee == "bob" and handed.state.version == state.version + 1
    assert handed.entry is not None and handed.entry["action"] == "assign"
    assert step(CaseState(), "investigating", assignee="carol").state.assignee == "carol"


def test_a_decisions_label_meets_the_label_contract() -> None:
    state = step(CaseState(), "investigating").state
    label = step(state, "confirmed").label
    assert label is not None
    event = parse(LABELS, orjson.dumps(label))
    assert isinstance(event, Label)
    assert (event.entity, event.entity_type, event.pattern, event.confirmed) == (
        "borrower-0042", "borrower", "rollover_loan", True)
    assert event.ts_text == ALERT["ts"]
    assert event.event_id == f"case-{ALERT['alert_id']}-1"
    assert len(label_event_id("a" * 128, 12)) <= 128
    assert label_event_id("a" * 128, 1) != label_event_id("a" * 127 + "b", 1)


@pytest.mark.parametrize(("body", "reason"), [
    (b"[]", "JSON object"), (b"{", "not JSON"), (b'{"status": "closed"}', "'status'"),
    (b'{"note": ""}', "'note'"), (b'{"note": 5}', "'note'"),
    (b'{"note": "a\\u202eb"}', "control"), (b'{}', "give a 'status'"),
    (b'{"status": "confirmed", "assignee": "bob"}', "goes with"),
    (b'{"status": "investigating", "assignee": "<b>"}', "'assignee'"),
    (b'{"status": "open", "version": -1}', "'version'"),
    (b'{"status": "open", "version": true}', "'version'"),
    (b'{"status": "open", "extra": 1}', "unknown field 'extra'"),
    (b'{"note": "' + b"x" * 2001 + b'"}', "at most 2000"),
    (b'{"note": "' + b"x" * 9000 + b'"}', "bytes"),
])
def test_a_bad_request_is_refused_with_one_line(body: bytes, reason: str) -> None:
    with pytest.raises(BadCaseRequest, match=reason) as caught:
        parse_request(body)
    assert "\n" not in str(caught.value)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_request_or_a_bad_request(body: bytes) -> None:
    try:
        request = parse_request(body)
    except BadCaseRequest:
        return
    assert request.status in (None, *STATUSES)


def test_the_answer_names_the_allowed_transitions() -> None:
    answer = view(ALERT["alert_id"], ALERT, CaseState("investigating", "alice", 1, 0), None,
                  history=[])
    assert answer["allowed"] == ["confirmed", "dismissed", "open"]
    assert answer["history"] == [] and answer["alert"] is ALERT
    assert "history" not in view(ALERT["alert_id"], ALERT, CaseState(), None)
