"""The OpenAPI description of the worker's HTTP API, built from the same vocabularies the
API validates against. ``fraudmon openapi`` writes it; ``docs/openapi.json`` is that output,
and a test checks the served, the built and the committed documents agree."""

from __future__ import annotations

from typing import Any

from monitor.contract.events import ENTITY_TYPES
from monitor.contract.vocabulary import LOOKUP_TYPES, PATTERNS, SEVERITIES

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
        "next_cursor": {"type": ["integer", "null"],
                        "description": "Pass as `cursor` for the next (older) page."}}},
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
        "model_version": {"type": "string"}}},
    "NotHere": {"type": "object", "required": ["error", "shard", "owned"], "properties": {
        "error": {"type": "string"},
        "shard": {"type": "integer", "description": "The shard that owns the entity."},
        "owned": {"type": "boolean",
                  "description": "Whether this worker owns that shard right now."}}},
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
    """The OpenAPI 3.1 document of the worker's API."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "fraud-monitor worker API", "version": "1",
                 "description": "Recent alerts, entity state and analyst labels of one "
                                "worker. Every path but /healthz, /readyz and /metrics "
                                "needs `Authorization: Bearer <token>`."},
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
            "/alerts": {"get": {
                "summary": "Recent alerts this worker emitted, newest first",
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
                    _query("cursor", "`next_cursor` of the previous page.",
                           {"type": "integer", "minimum": 1})],
                "responses": {"200": _answer("One page.", _ref("AlertPage")),
                              "400": _answer("A bad filter.", _ref("Error")),
                              "401": _UNAUTHORIZED}}},
            "/entities/{entity}": {"get": {
                "summary": "Current features, scores and reasons of an entity",
                "parameters": [
                    {"name": "entity", "in": "path", "required": True,
                     "schema": {"type": "string", "maxLength": 128}},
                    _query("entity_type", "Without it: " + ", ".join(LOOKUP_TYPES)
                           + ", first found.",
                           {"type": "string", "enum": sorted(ENTITY_TYPES)})],
                "responses": {"200": _answer("The entity.", _ref("Entity")),
                              "400": _answer("A bad entity type.", _ref("Error")),
                              "401": _UNAUTHORIZED,
                              "404": _answer("Not in the state of this worker.",
                                             _ref("NotHere"))}}},
            "/labels": {"post": {
                "summary": "Send an analyst's label to the labels topic (the models learn it)",
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("Label")}}},
                "responses": {"202": _answer("Written to Kafka.", _ref("LabelAccepted")),
                              "400": _answer("Breaks the label contract.", _ref("Error")),
                              "401": _UNAUTHORIZED,
                              "413": _answer("Too large.", _ref("Error"))}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Unauthorized": _answer("Missing or wrong token.", _ref("Error"))},
            "schemas": _SCHEMAS,
        },
    }
