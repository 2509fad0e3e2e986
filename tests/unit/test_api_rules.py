"""The HTTP API's rules: the metrics bearer token and ``GET /alerts`` query parameters."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from monitor.config import ApiSettings
from monitor.interfaces.api import BadQuery, alert_query, authorized, parse_time
from monitor.outputs.store.query import Position

TOKEN = SecretStr("s3cret-token")


@pytest.mark.parametrize(("header", "ok"), [
    ("Bearer s3cret-token", True), ("bearer s3cret-token", True),
    ("Bearer  s3cret-token ", True), ("Bearer s3cret-tokeN", False), ("Bearer", False),
    ("Basic s3cret-token", False), ("s3cret-token", False), ("", False), (None, False),
])
def test_bearer_token(header: str | None, ok: bool) -> None:
    assert authorized(header, TOKEN) is ok


def test_no_configured_token_lets_nobody_in() -> None:
    assert not authorized("Bearer ", None)
    assert not authorized("Bearer anything", None)


def test_query_defaults_and_values() -> None:
    settings = ApiSettings(page_size=20, max_page_size=100)
    assert alert_query({}, settings).limit == 20
    query = alert_query({"pattern": "structuring", "severity": "high", "entity": "a-1",
                         "since": "2026-01-05T00:00:00Z", "until": "2026-01-06T08:00:00+08:00",
                         "limit": "100", "cursor": Position(7, "al_7").encode()}, settings)
    assert (query.pattern, query.severity, query.entity, query.limit, query.cursor) == (
        "structuring", "high", "a-1", 100, Position(7, "al_7"))
    assert query.since == 1767571200.0 and query.until == 1767657600.0


def test_an_unencoded_plus_in_a_time_is_read_back() -> None:
    assert parse_time("since", "2026-01-05T08:00:00 08:00") == 1767571200.0


@pytest.mark.parametrize(("params", "message"), [
    ({"pattern": "bank_robbery"}, "'pattern' must be one of"),
    ({"severity": "critical"}, "'severity' must be one of"),
    ({"min_severity": "HIGH"}, "'min_severity' must be one of"),
    ({"limit": "0"}, "'limit' must be in 1..500"),
    ({"limit": "501"}, "'limit' must be in 1..500"),
    ({"limit": "ten"}, "'limit' must be an integer"),
    ({"cursor": "-1"}, "'cursor' is not one this API handed out"),
    ({"cursor": "7"}, "'cursor' is not one this API handed out"),
    ({"cursor": "x" * 201}, "'cursor' is not one this API handed out"),
    ({"since": "2026-01-05"}, "'since' must carry a UTC offset"),
    ({"until": "last week"}, "'until' must be an RFC 3339 time"),
    ({"entity": "x" * 129}, "'entity' must be 1-128"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
])
def test_bad_queries_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        alert_query(params, ApiSettings())
