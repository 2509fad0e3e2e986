"""The HTTP API's rules, apart from the web server: who may call it and what a query means.

``streams/web/api.py`` binds these to the worker's web server.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from pydantic import SecretStr

from monitor.config import ApiSettings
from monitor.contract.vocabulary import PATTERNS, SEVERITIES
from monitor.outputs.store.query import AlertQuery, BadCursor, Position

MAX_FILTER_LENGTH = 128


class BadQuery(ValueError):
    """A query parameter is invalid; the message is one line for the 400 answer."""


def authorized(header: str | None, token: SecretStr | None) -> bool:
    """Whether an ``Authorization`` header carries the bearer token (constant time); for
    a single-token endpoint (``/metrics``; the API's roles are :mod:`.roles`).

    No token configured means nobody is authorized: the endpoint fails closed.

    >>> authorized("Bearer s3cret", SecretStr("s3cret"))
    True
    >>> authorized("Bearer s3cret", None), authorized(None, SecretStr("s3cret"))
    (False, False)
    """
    if token is None or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                               hashlib.sha256(token.get_secret_value().encode()).digest())


def parse_time(name: str, text: str) -> float:
    """An RFC 3339 time with an offset, as a unix timestamp."""
    try:
        when = datetime.fromisoformat(text.replace(" ", "+", 1) if "T" in text else text)
    except ValueError:
        raise BadQuery(f"'{name}' must be an RFC 3339 time with an offset") from None
    if when.tzinfo is None:
        raise BadQuery(f"'{name}' must carry a UTC offset")
    return when.timestamp()


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is not None and value not in allowed:
        raise BadQuery(f"'{name}' must be one of {', '.join(allowed)}")
    return value


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not 1 <= len(value) <= MAX_FILTER_LENGTH:
        raise BadQuery(f"'{name}' must be 1-{MAX_FILTER_LENGTH} characters")
    return value


def _integer(params: Mapping[str, str], name: str, default: int | None, low: int,
             high: int) -> int | None:
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadQuery(f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise BadQuery(f"'{name}' must be in {low}..{high}")
    return value


def alert_query(params: Mapping[str, str], settings: ApiSettings) -> AlertQuery:
    """``GET /alerts`` query parameters as an :class:`AlertQuery`; ``BadQuery`` if invalid."""
    known = {"pattern", "entity", "entity_type", "severity", "min_severity", "since", "until",
             "limit", "cursor"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadQuery(f"unknown parameter '{unknown[0]}'")
    since, until = params.get("since"), params.get("until")
    limit = _integer(params, "limit", settings.page_size, 1, settings.max_page_size)
    return AlertQuery(
        pattern=_choice(params, "pattern", PATTERNS),
        entity=_text(params, "entity"),
        entity_type=_text(params, "entity_type"),
        severity=_choice(params, "severity", SEVERITIES),
        min_severity=_choice(params, "min_severity", SEVERITIES),
        since=parse_time("since", since) if since is not None else None,
        until=parse_time("until", until) if until is not None else None,
        limit=limit if limit is not None else settings.page_size,
        cursor=_cursor(params.get("cursor")),
    )


def _cursor(text: str | None) -> Position | None:
    if text is None:
        return None
    try:
        return Position.decode(text)
    except BadCursor as exc:
        raise BadQuery(str(exc)) from None
