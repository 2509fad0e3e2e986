"""Who may call the HTTP API, and what each route needs: tokens, principals, roles.

Two roles. An **analyst** reads alerts and entities and posts labels; an **admin** may do
all that and also change what the monitor does (rules, settings). Each role's tokens come
from an environment variable the settings name (``api.analyst_tokens_env``,
``api.admin_tokens_env``), several per variable so that tokens can be rotated: entries
separated by white space, each ``name:token`` or a bare token, which is named
``<role>-<n>`` by its place in the variable. ``api.token_env`` (``FRAUDMON_API_TOKEN``,
from before roles) holds analyst tokens, named ``legacy-<n>`` when bare: those tokens
keep exactly the powers they had, and no more.

:func:`required_role` is the one place that decides which role a route needs; a route
it does not know needs admin (fail closed). A new route that changes behaviour (``PUT
/rules``) is added to :data:`ROUTE_ROLES` as admin.

Tokens are compared in constant time against every configured token (SHA-256 digests
of equal length, no early exit), and never logged or put in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from monitor.config import ApiSettings
from monitor.errors import ConfigError

Role = Literal["analyst", "admin"]
ROLES: Final = ("analyst", "admin")
_RANK: Final = {"analyst": 0, "admin": 1}

OPEN_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics", "/ui", "/ui/{name}"})
"""Routes without an API token (``/metrics`` has its own, ``api.metrics_token_env``; the
console's static files hold no data and sign in with a token)."""

ROUTE_ROLES: Final[Mapping[tuple[str, str], Role]] = {
    ("GET", "/openapi.json"): "analyst",
    ("GET", "/whoami"): "analyst",
    ("GET", "/alerts"): "analyst",
    ("GET", "/entities/{entity}"): "analyst",
    ("POST", "/labels"): "analyst",
    ("GET", "/entities/{entity}/movements"): "analyst",
    ("GET", "/cases"): "analyst",
    ("GET", "/cases/{alert_id}"): "analyst",
    ("POST", "/cases/{alert_id}"): "analyst",
    ("GET", "/rules"): "analyst",
    ("GET", "/settings"): "admin",
    ("PUT", "/rules"): "admin",
}
"""The role each route needs (method, route template). Anything else needs admin.
Analysts read and work cases (a decision writes a label, as ``POST /labels`` does) and
read the rules the console lists; changing rules or settings is an admin's."""

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_TOKEN_CHARS: Final = 16


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request came from: the token's name and role (never the token)."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this principal has ``role`` (an admin has every role)."""
        return _RANK[self.role] >= _RANK[role]


def required_role(method: str, route: str) -> Role | None:
    """The role ``method route`` needs; ``None`` for the open routes.

    >>> required_role("GET", "/alerts"), required_role("PUT", "/rules")
    ('analyst', 'admin')
    >>> required_role("DELETE", "/alerts"), required_role("GET", "/healthz")
    ('admin', None)
    """
    if route in OPEN_ROUTES:
        return None
    method = "GET" if method.upper() == "HEAD" else method.upper()
    return ROUTE_ROLES.get((method, route), "admin")


def forbidden_reason(principal: Principal, method: str, route: str, role: Role) -> str:
    """The one-line reason of a 403 (names the token's name, never the token)."""
    return (f"forbidden: {method.upper()} {route} needs the {role} role; "
            f"token '{principal.name}' is {principal.role}")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """The configured tokens: :meth:`authenticate` maps a bearer header to its principal."""

    def __init__(self, entries: list[tuple[str, Role, str]]) -> None:
        names = [name for name, _, _ in entries]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigError(f"api: token name '{twice[0]}' is used twice")
        digests = [_digest(token) for _, _, token in entries]
        if len(set(digests)) != len(digests):
            raise ConfigError("api: the same token is configured twice (in one variable "
                              "or in two roles' variables)")
        self._entries = [(digest, Principal(name, role))
                         for digest, (name, role, _) in zip(digests, entries, strict=True)]
        self.weak = [name for name, _, token in entries if len(token) < MIN_TOKEN_CHARS]

    def __len__(self) -> int:
        return len(self._entries)

    def counts(self) -> dict[str, int]:
        """Tokens per role (for the start-up log line)."""
        found = {role: 0 for role in ROLES}
        for _, principal in self._entries:
            found[principal.role] += 1
        return found

    @classmethod
    def from_env(cls, api: ApiSettings, environ: Mapping[str, str]) -> TokenTable:
        """The tokens in the variables ``api`` names; ``ConfigError`` on a malformed entry
        (the message names the variable and the entry's place, never its text)."""
        entries: list[tuple[str, Role, str]] = []
        sources: tuple[tuple[str, Role, str], ...] = (
            (api.analyst_tokens_env, "analyst", "analyst"),
            (api.admin_tokens_env, "admin", "admin"),
            (api.token_env, "analyst", "legacy"))
        for variable, role, prefix in sources:
            entries.extend(parse_tokens(environ.get(variable, ""), variable, role, prefix))
        return cls(entries)

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal of an ``Authorization: Bearer <token>`` header, or ``None``.

        Every configured token is compared, whatever matched before, so the time taken
        does not say which token (or how much of one) matched.
        """
        if not header:
            return None
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        digest = _digest(given.strip())
        found: Principal | None = None
        for candidate, principal in self._entries:
            if hmac.compare_digest(digest, candidate):
                found = principal
        return found


def parse_tokens(text: str, variable: str, role: Role, prefix: str,
                 ) -> list[tuple[str, Role, str]]:
    """``name:token`` or bare entries of one variable, separated by white space.

    >>> [(n, r) for n, r, _ in parse_tokens("alice:t0ken-a t0ken-b", "V", "admin", "admin")]
    [('alice', 'admin'), ('admin-2', 'admin')]
    """
    entries = []
    for place, entry in enumerate(text.split(), start=1):
        name, colon, token = entry.partition(":")
        if not colon:
            name, token = f"{prefix}-{place}", entry
        if not NAME.match(name):
            raise ConfigError(f"{variable}: entry {place}: a token's name is 1-64 letters, "
                              "digits, '_', '.', '@' or '-'")
        if not token:
            raise ConfigError(f"{variable}: entry {place}: '{name}:' has no token")
        entries.append((name, role, token))
    return entries
