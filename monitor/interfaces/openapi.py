"""The OpenAPI description of the worker's HTTP API, built from the same vocabularies the
API validates against. ``fraudmon openapi`` writes it; ``docs/openapi.json`` is that output,
and a test checks the served, the built and the committed documents agree."""

from __future__ import annotations

from typing import Any

from monitor.contract.events import ENTITY_TYPES
from monitor.contract.vocabulary import LOOKUP_TYPES, PATTERNS, SEVERITIES
from monitor.interfaces import openapi_cases
from monitor.interfaces.movements import DEFAULT_LIMIT, MAX_LIMIT
from monitor.interfaces.roles import required_role

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
_FORBIDDEN = {"$ref": "#/components/responses/Forbidden"}
_UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}
_ANSWERED_BY = {"X-Fraudmon-Answered-By": {
    "description": "The advertised API address of the worker that answered.",
    "schema": {"type": "string", "format": "uri"}}}
_TIME = {"type": "string", "format": "date-time"}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}}},
    "Reason": {"type": "object", "properties": {
        "signal": {"type": "string"}, "value": {"type": "number"},
        "typical": {"type": "string"}}},
    "Alert": {"type": "object", "required": ["alert_id", "pattern", "entity", "entity_type",
                                             "ts", "score", "severity"],
              "properties": {
                  "alert_id": {"type": "string", "description": "Deterministic id."},
                  "pattern": {"type": "string", "enum": list(PATTERNS)},
                  "entity": {"type": "string"},
                  "entity_type": {"type": "string"},
                  "ts": {**_TIME, "description": "Event time of the triggering event."},
                  "score": {"type": "number", "minimum": 0, "maximum": 1},
                  "severity": {"type": "string", "enum": list(SEVERITIES)},
                  "reasons": {"type": "array", "items": _ref("Reason")},
                  "evidence": {"type": "array", "items": {"type": "string"}},
                  "model_version": {"type": "string"},
                  "created_at": _TIME}},
    "AlertPage": {"type": "object", "required": ["alerts", "next_cursor"], "properties": {
        "alerts": {"type": "array", "items": _ref("Alert")},
        "next_cursor": {"type": ["string", "null"],
                        "description": "Pass as `cursor` for the next (older) page, to any "
                                       "worker of the deployment; null on the last page."}}},
    "Principal": {"type": "object", "required": ["name", "role"], "properties": {
        "name": {"type": "string", "description": "The token's name (`name:token` in its "
                                                  "variable, else `<role>-<n>`)."},
        "role": {"type": "string", "enum": ["analyst", "admin"]}}},
    "Entity": {"type": "object", "properties": {
        "entity": {"type": "string"}, "entity_type": {"type": "string"},
        "shard": {"type": "integer"},
        "first_seen_ts": {"type": ["number", "null"]}, "last_seen_ts": {"type": "number"},
        "features": {"type": "object", "additionalProperties": {"type": "number"}},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "findings": {"type": "array", "items": {"type": "object", "properties": {
            "pattern": {"type": "string"}, "strength": {"type": "number"},
            "reasons": {"type": "array", "items": _ref("Reason")}}}},
        "alerted_at": {"type": "object", "additionalProperties": {"type": "number"}},
        "labels": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "recent_events": {"type": "array", "items": {"type": "string"}},
        "model_version": {"type": "string"},
        "answered_by": {"type": "string", "format": "uri",
                        "description": "The worker that owns the entity's shard."}}},
    "NotHere": {"type": "object", "required": ["error", "shard", "owned"], "properties": {
        "error": {"type": "string"},
        "shard": {"type": "integer", "description": "The shard that owns the entity."},
        "owned": {"type": "boolean",
                  "description": "Whether the answering worker owns that shard right now."},
        "answered_by": {"type": "string", "format": "uri"}}},
    "Label": {"description": "An analyst's disposition (see docs/events.md, `labels`).",
              "oneOf": [
                  {"type": "object", "title": "Entity label",
                   "required": ["event_id", "ts", "entity", "entity_type", "pattern",
                                "confirmed"],
                   "properties": {"event_id": {"type": "string", "maxLength": 128},
                                  "ts": _TIME, "entity": {"type": "string", "maxLength": 128},
                                  "entity_type": {"type": "string",
                                                  "enum": sorted(ENTITY_TYPES)},
                                  "pattern": {"type": "string"},
                                  "confirmed": {"type": "boolean"}}},
                  {"type": "object", "title": "Transaction label",
                   "required": ["event_id", "ts", "target_event_id", "confirmed"],
                   "properties": {"event_id": {"type": "string", "maxLength": 128},
                                  "ts": _TIME,
                                  "target_event_id": {"type": "string", "maxLength": 128},
                                  "confirmed": {"type": "boolean"}}}]},
    "LabelAccepted": {"type": "object", "required": ["event_id", "topic", "key"],
                      "properties": {"event_id": {"type": "string"},
                                     "topic": {"type": "string"}, "key": {"type": "string"}}},
}


def document(page_size: int = 50, max_page_size: int = 500) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the worker's API; each operation's
    ``x-fraudmon-role`` comes from the one route table (:mod:`monitor.interfaces.roles`)."""
    made = _document(page_size, max_page_size)
    for route, operations in made["paths"].items():
        for method, operation in operations.items():
            role = required_role(method.upper(), route)
            if role is not None:
                operation["x-fraudmon-role"] = role
    return made


def _entity_lookup(summary: str, parameters: list[dict[str, Any]], found: dict[str, Any],
                   bad: str) -> dict[str, Any]:
    """A ``GET /entities/{entity}...`` operation: answered by the owner of the entity's
    shard, or sent on to it (:mod:`streams.web.entities`)."""
    return {
        "summary": summary,
        "parameters": [
            {"name": "entity", "in": "path", "required": True,
             "schema": {"type": "string", "maxLength": 128}},
            _query("entity_type", "Without it: " + ", ".join(LOOKUP_TYPES) + ", first found.",
                   {"type": "string", "enum": sorted(ENTITY_TYPES)}),
            *parameters],
        "description": "Answered by the worker that owns the entity's shard: asked on "
                       "another, the lookup is sent on to the owner (one hop, with the "
                       "caller's token).",
        "responses": {"200": {**found, "headers": _ANSWERED_BY},
                      "400": _answer(bad, _ref("Error")),
                      "401": _UNAUTHORIZED,
                      "404": {**_answer("Not in the state of its owner.", _ref("NotHere")),
                              "headers": _ANSWERED_BY},
                      "502": _answer("The owner could not be reached.", _ref("Error")),
                      "503": _UNAVAILABLE,
                      "504": _answer("The owner did not answer in time.", _ref("Error"))}}


def _document(page_size: int, max_page_size: int) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "fraud-monitor worker API", "version": "2",
                 "description": "The deployment's alerts, entity state and analyst labels, "
                                "from any worker. Every path but /healthz, /readyz and "
                                "/metrics needs `Authorization: Bearer <token>`; "
                                "`x-fraudmon-role` says which role (analyst or admin: an "
                                "admin may do all an analyst may). A missing or unknown "
                                "token is 401, a token without the role 403."},
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "Alive", "security": [],
                                 "responses": {"200": _answer("The worker runs.")}}},
            "/readyz": {"get": {"summary": "Partitions assigned, not rebalancing",
                                "security": [],
                                "responses": {"200": _answer("Ready."),
                                              "503": _answer("Not ready.")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                                 "responses": {"200": _answer("Text exposition format.")}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": _answer("OpenAPI 3.1.", {"type": "object"}),
                "401": _UNAUTHORIZED}}},
            "/whoami": {"get": {"summary": "The caller's token name and role", "responses": {
                "200": _answer("Who the token belongs to.", _ref("Principal")),
                "401": _UNAUTHORIZED}}},
            "/settings": {"get": {
                "summary": "The worker's effective settings (variable names, never secrets)",
                "responses": {"200": _answer("Settings as JSON.", {"type": "object"}),
                              "401": _UNAUTHORIZED, "403": _FORBIDDEN}}},
            "/alerts": {"get": {
                "summary": "Alerts of the whole deployment (the alert store), newest first "
                           "by event time",
                "parameters": [
                    _query("pattern", "Only this pattern.",
                           {"type": "string", "enum": list(PATTERNS)}),
                    _query("entity", "Only alerts on this entity id.", {"type": "string"}),
                    _query("entity_type", "Only this entity type.", {"type": "string"}),
                    _query("severity", "Only this severity.",
                           {"type": "string", "enum": list(SEVERITIES)}),
                    _query("min_severity", "This severity or higher.",
                           {"type": "string", "enum": list(SEVERITIES)}),
                    _query("since", "Event time at or after (RFC 3339 with offset).", _TIME),
                    _query("until", "Event time before (RFC 3339 with offset).", _TIME),
                    _query("limit", "Page size.", {"type": "integer", "minimum": 1,
                                                   "maximum": max_page_size,
                                                   "default": page_size}),
                    _query("cursor", "`next_cursor` of the previous page (opaque).",
                           {"type": "string", "maxLength": 200})],
                "responses": {"200": _answer("One page.", _ref("AlertPage")),
                              "400": _answer("A bad filter or cursor.", _ref("Error")),
                              "401": _UNAUTHORIZED,
                              "503": _UNAVAILABLE}}},
            "/entities/{entity}": {"get": _entity_lookup(
                "Current features, scores and reasons of an entity", [],
                _answer("The entity.", _ref("Entity")), "A bad entity type.")},
            "/entities/{entity}/movements": {"get": _entity_lookup(
                "An entity's recent movements as a graph (what its state holds)",
                [_query("limit", "The newest movements to return.",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                         "default": DEFAULT_LIMIT})],
                _answer("Nodes and edges.", _ref("Movements")),
                "A bad entity type or limit.")},
            "/labels": {"post": {
                "summary": "Send an analyst's label to the labels topic (the models learn it)",
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("Label")}}},
                "responses": {"202": _answer("Written to Kafka.", _ref("LabelAccepted")),
                              "400": _answer("Breaks the label contract.", _ref("Error")),
                              "401": _UNAUTHORIZED,
                              "413": _answer("Too large.", _ref("Error"))}}},
            **openapi_cases.paths(page_size, max_page_size),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Unauthorized": _answer("Missing or unknown token.", _ref("Error")),
                "Forbidden": _answer("The token's role may not do this (the one-line reason "
                                     "names the role needed).", _ref("Error")),
                "Unavailable": {**_answer("The group is rebalancing, a shard is being "
                                          "restored, or the alert store is unavailable: ask "
                                          "again after Retry-After seconds.", _ref("Error")),
                                "headers": {"Retry-After": {"schema": {"type": "integer"}}}}},
            "schemas": {**_SCHEMAS, **openapi_cases.SCHEMAS},
        },
    }
