"""The OpenAPI description of the console's routes: cases (``GET /cases``, ``GET`` and
``POST /cases/{alert_id}``) and ``/ui`` itself, and the schema of an entity's movements
(its route is described beside ``/entities/{entity}``, forwarded the same way).
:mod:`monitor.interfaces.openapi` merges these into the worker's document."""

from __future__ import annotations

from typing import Any

from monitor.contract.vocabulary import PATTERNS, SEVERITIES
from monitor.interfaces.cases import MAX_NOTE_CHARS, MAX_REQUEST_BYTES, STATUSES, TRANSITIONS

_JSON = "application/json"
_TIME = {"type": "string", "format": "date-time"}
_UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
_RETRY = {"Retry-After": {"schema": {"type": "integer"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_STATUS = {"type": "string", "enum": list(STATUSES)}
_FLOW = "; ".join(f"{status} -> {', '.join(targets)}" for status, targets in TRANSITIONS.items())

SCHEMAS: dict[str, Any] = {
    "Case": {"type": "object",
             "required": ["alert_id", "status", "assignee", "version", "decisions",
                          "allowed", "alert"],
             "properties": {
                 "alert_id": {"type": "string"},
                 "status": _STATUS,
                 "assignee": {"type": ["string", "null"]},
                 "version": {"type": "integer", "description": "Transitions made so far."},
                 "decisions": {"type": "integer",
                               "description": "Confirmations and dismissals made so far."},
                 "updated_at": {"type": ["string", "null"], "format": "date-time"},
                 "allowed": {"type": "array", "items": _STATUS,
                             "description": "Statuses the case may move to now."},
                 "alert": _ref("Alert"),
                 "history": {"type": "array", "items": _ref("CaseEntry"),
                             "description": "Oldest first (GET /cases/{alert_id} only)."}}},
    "CaseEntry": {"type": "object", "required": ["at", "by", "action"], "properties": {
        "at": _TIME, "by": {"type": "string", "description": "The token's name."},
        "action": {"type": "string", "enum": ["transition", "assign", "note"]},
        "from": _STATUS, "to": _STATUS, "assignee": {"type": ["string", "null"]},
        "note": {"type": ["string", "null"]}, "version": {"type": "integer"},
        "decision": {"type": ["integer", "null"]},
        "label_event_id": {"type": ["string", "null"],
                           "description": "The label this decision wrote."}}},
    "CasePage": {"type": "object", "required": ["cases", "next_cursor", "counts"],
                 "properties": {
                     "cases": {"type": "array", "items": _ref("Case")},
                     "next_cursor": {"type": ["string", "null"]},
                     "counts": {"type": "object",
                                "description": "Cases per status under the other filters.",
                                "properties": {s: {"type": "integer"} for s in STATUSES}}}},
    "CaseRequest": {
        "type": "object", "additionalProperties": False,
        "description": f"A transition ({_FLOW}), a note, or both.",
        "properties": {
            "status": _STATUS,
            "assignee": {"type": "string", "maxLength": 64,
                         "description": "With status investigating; default: the caller."},
            "note": {"type": "string", "maxLength": MAX_NOTE_CHARS},
            "version": {"type": "integer", "minimum": 0,
                        "description": "The case's version as last read: refused (409) if "
                                       "it moved on, unless this very request made it."}}},
    "CaseConflict": {"type": "object", "required": ["error", "allowed"], "properties": {
        "error": {"type": "string"}, "allowed": {"type": "array", "items": _STATUS}}},
    "Movements": {"type": "object", "required": ["entity", "entity_type", "nodes", "edges"],
                  "properties": {
                      "entity": {"type": "string"}, "entity_type": {"type": "string"},
                      "shard": {"type": "integer"},
                      "held": {"type": "string", "description": "What this family's state "
                                                                "keeps, so what can show."},
                      "nodes": {"type": "array", "items": {"type": "object", "properties": {
                          "id": {"type": "string", "description": "entity_type:entity"},
                          "entity": {"type": "string"}, "entity_type": {"type": "string"}}}},
                      "edges": {"type": "array", "items": {"type": "object", "properties": {
                          "kind": {"type": "string",
                                   "enum": ["payment", "loan", "repayment", "device"]},
                          "source": {"type": "string"}, "target": {"type": "string"},
                          "amount": {"type": ["number", "null"]}, "ts": _TIME}}},
                      "omitted": {"type": "integer",
                                  "description": "Older movements left out by `limit`."}}},
}


def paths(page_size: int, max_page_size: int) -> dict[str, Any]:
    """The console's paths."""
    alert_id = {"name": "alert_id", "in": "path", "required": True,
                "schema": {"type": "string", "maxLength": 128}}
    return {
        "/cases": {"get": {
            "summary": "The case queue: every stored alert is a case, newest first",
            "parameters": [
                _query("status", "Only this status.", _STATUS),
                _query("pattern", "Only this pattern.",
                       {"type": "string", "enum": list(PATTERNS)}),
                _query("severity", "Only this severity.",
                       {"type": "string", "enum": list(SEVERITIES)}),
                _query("assignee", "Only cases assigned to this name.", {"type": "string"}),
                _query("since", "Event time at or after (RFC 3339 with offset).", _TIME),
                _query("until", "Event time before (RFC 3339 with offset).", _TIME),
                _query("limit", "Page size.", {"type": "integer", "minimum": 1,
                                               "maximum": max_page_size,
                                               "default": page_size}),
                _query("cursor", "`next_cursor` of the previous page.", {"type": "string"})],
            "responses": {"200": _answer("One page and the counts.", _ref("CasePage")),
                          "400": _answer("A bad filter.", _ref("Error")),
                          "401": _UNAUTHORIZED,
                          "503": {**_answer("The store is unavailable.", _ref("Error")),
                                  "headers": _RETRY}}}},
        "/cases/{alert_id}": {
            "get": {"summary": "One case with its history", "parameters": [alert_id],
                    "responses": {"200": _answer("The case.", _ref("Case")),
                                  "401": _UNAUTHORIZED,
                                  "404": _answer("No such alert.", _ref("Error")),
                                  "503": {**_answer("The store is unavailable.",
                                                    _ref("Error")), "headers": _RETRY}}},
            "post": {
                "summary": "A transition or a note; confirming or dismissing writes the "
                           "label (once per decision, however often the request is sent)",
                "parameters": [alert_id],
                "requestBody": {"required": True,
                                "content": {_JSON: {"schema": _ref("CaseRequest")}}},
                "responses": {"200": _answer("The case after the request.", _ref("Case")),
                              "400": _answer("Not a transition or a note.", _ref("Error")),
                              "401": _UNAUTHORIZED,
                              "404": _answer("No such alert.", _ref("Error")),
                              "409": _answer("Not allowed from the case's status (or the "
                                             "case moved on): names the allowed ones.",
                                             _ref("CaseConflict")),
                              "413": _answer(f"Larger than {MAX_REQUEST_BYTES} bytes.",
                                             _ref("Error")),
                              "422": _answer("The alert cannot be labelled (its stored "
                                             "record breaks the label contract).",
                                             _ref("Error")),
                              "503": {**_answer("The store or Kafka is unavailable; the "
                                                "request may be sent again.", _ref("Error")),
                                      "headers": _RETRY}}}},
        "/ui": {"get": {"summary": "The analysts' console (sign in there with a token)",
                        "security": [],
                        "responses": {"200": _answer("An HTML page.")}}},
    }
