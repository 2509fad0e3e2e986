"""The case workflow's rules, apart from storage and the web server: which transitions a
case may make, what a request to change one means, and the label a decision writes.

Every alert is a case. It starts ``open``; an analyst takes it (``investigating``,
assigned to them or to whom they name) and decides it (``confirmed`` or ``dismissed``);
any of the three goes back to ``open``, and a case being investigated may be handed to
someone else. Each decision is numbered (the case's first, second, ... confirmation or
dismissal) and writes one label to the ``labels`` topic whose ``event_id`` is derived
from the alert id and that number, so the label of one decision is the same record
however often it is written, and the shard that learns it drops a repeat by its id.

``version`` counts a case's transitions. A request may name the version it was made
against: if the case has moved on since, it is refused (409), unless the move is the
request itself, retried (the same transition by the same principal), which then answers
as the first time did and changes nothing. A transition to the state the case is
already in changes nothing either. So a retried request never decides twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from monitor.config import ApiSettings
from monitor.contract.vocabulary import PATTERNS, SEVERITIES
from monitor.errors import BadCaseRequest, CaseConflict
from monitor.interfaces.api import BadQuery, _choice, _cursor, _integer, parse_time
from monitor.outputs.store.cases import CaseQuery

STATUSES: Final = ("open", "investigating", "confirmed", "dismissed")
TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "open": ("investigating",),
    "investigating": ("confirmed", "dismissed", "open"),
    "confirmed": ("open",),
    "dismissed": ("open",),
}
"""From each status, the statuses a case may move to."""
DECISIONS: Final = {"confirmed": True, "dismissed": False}
"""The statuses that decide a case, and the label's ``confirmed`` each writes."""
MAX_NOTE_CHARS: Final = 2000
MAX_REQUEST_BYTES: Final = 8192
NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
"""An assignee's name: what a token's name may be (``monitor.interfaces.roles``)."""
_CONTROL: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
MAX_EVENT_ID: Final = 128


@dataclass(frozen=True, slots=True)
class CaseState:
    """Where a case stands: its status, assignee, transitions made (``version``) and
    decisions made (``decisions``, the number of the last label)."""

    status: str = "open"
    assignee: str | None = None
    version: int = 0
    decisions: int = 0

    @property
    def allowed(self) -> tuple[str, ...]:
        return TRANSITIONS[self.status]


@dataclass(frozen=True, slots=True)
class CaseRequest:
    """What one ``POST /cases/{alert_id}`` asks: a transition (``status``, maybe with an
    ``assignee``), a note, or both; ``version`` as the client last saw the case."""

    status: str | None = None
    note: str | None = None
    assignee: str | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What a request does to a case: its new state, the history entry to append and the
    label to write (a decision only). ``entry`` is ``None`` when nothing changes."""

    state: CaseState
    entry: dict[str, Any] | None
    label: dict[str, Any] | None


def parse_request(body: bytes) -> CaseRequest:
    """A request body as a :class:`CaseRequest`; :class:`BadCaseRequest` says why not.

    >>> parse_request(b'{"status": "investigating", "version": 0}')
    CaseRequest(status='investigating', note=None, assignee=None, version=0)
    >>> parse_request(b'{"state": "confirmed"}')
    Traceback (most recent call last):
    ...
    monitor.errors.BadCaseRequest: unknown field 'state'
    """
    if len(body) > MAX_REQUEST_BYTES:
        raise BadCaseRequest(f"a case request is at most {MAX_REQUEST_BYTES} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadCaseRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadCaseRequest("the body must be a JSON object")
    unknown = sorted(set(data) - {"status", "note", "assignee", "version"})
    if unknown:
        raise BadCaseRequest(f"unknown field '{unknown[0]}'")
    status, note = data.get("status"), data.get("note")
    assignee, version = data.get("assignee"), data.get("version")
    if status is not None and status not in STATUSES:
        raise BadCaseRequest(f"'status' must be one of {', '.join(STATUSES)}")
    if note is not None:
        if not isinstance(note, str) or not note.strip():
            raise BadCaseRequest("'note' must be a non-empty string")
        if len(note) > MAX_NOTE_CHARS:
            raise BadCaseRequest(f"'note' is at most {MAX_NOTE_CHARS} characters")
        if _CONTROL.search(note):
            raise BadCaseRequest("'note' may not hold control or invisible formatting "
                                 "characters")
        note = note.strip()
    if assignee is not None:
        if not isinstance(assignee, str) or not NAME.match(assignee):
            raise BadCaseRequest("'assignee' must be 1-64 letters, digits, '_', '.', '@' "
                                 "or '-'")
        if status != "investigating":
            raise BadCaseRequest("'assignee' goes with status 'investigating'")
    if version is not None and (type(version) is not int or not 0 <= version < 2**53):
        raise BadCaseRequest("'version' must be a non-negative integer")
    if status is None and note is None:
        raise BadCaseRequest("give a 'status' (a transition), a 'note', or both")
    return CaseRequest(status, note, assignee, version)


def time_text(ts: float) -> str:
    """Wall-clock time as RFC 3339 UTC with milliseconds.

    >>> time_text(1767571200.5)
    '2026-01-05T00:00:00.500Z'
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def label_event_id(alert_id: str, decision: int) -> str:
    """The label ``event_id`` of a case's ``decision``-th decision (at most 128 chars).

    >>> label_event_id("al_0123abcd", 2)
    'case-al_0123abcd-2'
    """
    event_id = f"case-{alert_id}-{decision}"
    if len(event_id) <= MAX_EVENT_ID:
        return event_id
    return f"case-{hashlib.sha256(alert_id.encode()).hexdigest()[:40]}-{decision}"


def label_for(alert: dict[str, Any], decision: int, confirmed: bool, by: str,
              decided_at: float) -> dict[str, Any]:
    """The entity label a decision writes to the ``labels`` topic.

    Its ``ts`` is the alert's event time: the label judges the entity as it was when it
    alerted (the shard scores and learns from what it decided then), and a decision
    made long after never moves a shard's event-time watermark. ``alert_id``,
    ``decided_at`` and ``decided_by`` ride along as extra fields (the contract keeps
    them and ignores them).
    """
    return {
        "event_id": label_event_id(str(alert["alert_id"]), decision),
        "ts": alert["ts"],
        "entity": alert["entity"],
        "entity_type": alert["entity_type"],
        "pattern": alert["pattern"],
        "confirmed": confirmed,
        "alert_id": alert["alert_id"],
        "decided_at": time_text(decided_at),
        "decided_by": by,
    }


def _retried(request: CaseRequest, by: str, last: dict[str, Any] | None) -> bool:
    """Whether ``last`` (the case's latest transition) is ``request`` by ``by``, made
    against the version the request names."""
    return (last is not None and request.version is not None
            and last.get("version") == request.version + 1 and last.get("by") == by
            and last.get("to") == request.status)


def plan(state: CaseState, request: CaseRequest, alert: dict[str, Any], by: str,
         now: float, last_transition: dict[str, Any] | None = None,
         last_entry: dict[str, Any] | None = None) -> Change:
    """What ``request`` by ``by`` does to a case in ``state`` (:class:`CaseConflict` if
    it cannot). ``last_transition`` and ``last_entry`` are the newest history entries
    (to recognise a retried request)."""
    unchanged = Change(state, None, None)
    base = {"at": time_text(now), "by": by}
    if request.status is None:
        note = request.note
        if (last_entry is not None and last_entry.get("action") == "note"
                and last_entry.get("by") == by and last_entry.get("note") == note):
            return unchanged  # the same note again: a retry
        return Change(state, {**base, "action": "note", "note": note,
                              "version": state.version}, None)
    wanted = request.status
    if request.version is not None and request.version != state.version:
        if _retried(request, by, last_transition):
            return unchanged
        raise CaseConflict(f"the case is at version {state.version}, not "
                           f"{request.version}: it changed since; reload it", state.allowed)
    if wanted == state.status:
        if wanted == "investigating" and request.assignee not in (None, state.assignee):
            after = replace(state, assignee=request.assignee, version=state.version + 1)
            return Change(after, {**base, "action": "assign", "from": wanted, "to": wanted,
                                  "assignee": request.assignee, "note": request.note,
                                  "version": after.version}, None)
        return unchanged
    if wanted not in state.allowed:
        raise CaseConflict(f"a case that is {state.status} cannot become {wanted}; "
                           f"allowed: {', '.join(state.allowed)}", state.allowed)
    assignee = ((request.assignee or by) if wanted == "investigating"
                else None if wanted == "open" else state.assignee)
    confirmed = DECISIONS.get(wanted)
    decisions = state.decisions + (confirmed is not None)
    after = CaseState(wanted, assignee, state.version + 1, decisions)
    label = (label_for(alert, decisions, confirmed, by, now) if confirmed is not None
             else None)
    entry = {**base, "action": "transition", "from": state.status, "to": wanted,
             "assignee": assignee, "note": request.note, "version": after.version,
             "decision": decisions if label is not None else None,
             "label_event_id": label["event_id"] if label is not None else None}
    return Change(after, entry, label)


def view(alert_id: str, alert: dict[str, Any], state: CaseState, updated_at: str | None,
         history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A case as the API answers it (``history`` only for one case)."""
    body: dict[str, Any] = {
        "alert_id": alert_id, "status": state.status, "assignee": state.assignee,
        "version": state.version, "decisions": state.decisions, "updated_at": updated_at,
        "allowed": list(state.allowed), "alert": alert,
    }
    if history is not None:
        body["history"] = history
    return body


def case_query(params: Mapping[str, str], settings: ApiSettings) -> CaseQuery:
    """``GET /cases`` query parameters as a :class:`CaseQuery`; ``BadQuery`` if invalid."""
    known = {"status", "pattern", "severity", "assignee", "since", "until", "limit", "cursor"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadQuery(f"unknown parameter '{unknown[0]}'")
    assignee = params.get("assignee")
    if assignee is not None and not NAME.match(assignee):
        raise BadQuery("'assignee' must be 1-64 letters, digits, '_', '.', '@' or '-'")
    severity = _choice(params, "severity", SEVERITIES)
    since, until = params.get("since"), params.get("until")
    limit = _integer(params, "limit", settings.page_size, 1, settings.max_page_size)
    return CaseQuery(
        status=_choice(params, "status", STATUSES),
        pattern=_choice(params, "pattern", PATTERNS),
        severity=SEVERITIES.index(severity) if severity is not None else None,
        assignee=assignee,
        since_us=round(parse_time("since", since) * 1e6) if since is not None else None,
        until_us=round(parse_time("until", until) * 1e6) if until is not None else None,
        limit=limit if limit is not None else settings.page_size,
        cursor=_cursor(params.get("cursor")),
    )

