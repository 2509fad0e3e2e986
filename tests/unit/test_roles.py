"""Roles: tokens from the environment with names, constant-time matching of every token,
and the one table that says which role each route needs."""

from __future__ import annotations

import hmac

import pytest

from monitor.config import ApiSettings
from monitor.errors import ConfigError
from monitor.interfaces import roles
from monitor.interfaces.roles import Principal, TokenTable, forbidden_reason, required_role

API = ApiSettings()
ENV = {API.analyst_tokens_env: "alice:analyst-token-aaaa  analyst-token-bbbb",
       API.admin_tokens_env: "root:admin-token-cccccccc",
       API.token_env: "legacy-token-dddddddd"}


def table(env: dict[str, str] | None = None) -> TokenTable:
    return TokenTable.from_env(API, ENV if env is None else env)


@pytest.mark.parametrize(("header", "principal"), [
    ("Bearer analyst-token-aaaa", Principal("alice", "analyst")),
    ("bearer  analyst-token-bbbb ", Principal("analyst-2", "analyst")),
    ("Bearer admin-token-cccccccc", Principal("root", "admin")),
    ("Bearer legacy-token-dddddddd", Principal("legacy-1", "analyst")),
    ("Bearer admin-token-ccccccc", None), ("Bearer alice:analyst-token-aaaa", None),
    ("Basic admin-token-cccccccc", None), ("Bearer ", None), ("", None), (None, None),
])
def test_a_header_names_its_principal(header: str | None, principal: Principal | None) -> None:
    assert table().authenticate(header) == principal


def test_no_tokens_let_nobody_in() -> None:
    empty = table({})
    assert len(empty) == 0 and empty.authenticate("Bearer anything") is None


def test_every_token_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(roles.hmac, "compare_digest", counting)
    tokens = table()
    for header in ("Bearer analyst-token-aaaa", "Bearer legacy-token-dddddddd", "Bearer x"):
        calls.clear()
        tokens.authenticate(header)
        assert len(calls) == len(tokens) == 4


@pytest.mark.parametrize(("env", "message"), [
    ({API.analyst_tokens_env: "a:one-token-xxxxxxxx a:two-token-xxxxxxxx"}, "'a' is used twice"),
    ({API.analyst_tokens_env: "same-token-xxxxxxx", API.admin_tokens_env: "same-token-xxxxxxx"},
     "the same token is configured twice"),
    ({API.admin_tokens_env: "bad!name:token-xxxxxxxx"}, "FRAUDMON_ADMIN_TOKENS: entry 1"),
    ({API.admin_tokens_env: "ok-token-xxxxxxxxx bob:"}, "entry 2: 'bob:' has no token"),
])
def test_malformed_variables_are_refused_without_echoing_tokens(
        env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        table(env)
    assert "token-xxxx" not in str(caught.value)


def test_short_tokens_are_named_as_weak() -> None:
    assert table({API.admin_tokens_env: "boss:short"}).weak == ["boss"]


@pytest.mark.parametrize(("method", "route", "role"), [
    ("GET", "/alerts", "analyst"), ("HEAD", "/alerts", "analyst"),
    ("GET", "/entities/{entity}", "analyst"), ("POST", "/labels", "analyst"),
    ("GET", "/openapi.json", "analyst"), ("GET", "/whoami", "analyst"),
    ("GET", "/settings", "admin"), ("PUT", "/rules", "admin"),
    ("DELETE", "/alerts", "admin"), ("GET", "/anything-new", "admin"),
    ("GET", "/healthz", None), ("GET", "/readyz", None), ("GET", "/metrics", None),
    ("GET", "/cases", "analyst"), ("GET", "/cases/{alert_id}", "analyst"),
    ("POST", "/cases/{alert_id}", "analyst"), ("DELETE", "/cases/{alert_id}", "admin"),
    ("GET", "/entities/{entity}/movements", "analyst"), ("GET", "/rules", "analyst"),
    ("GET", "/ui", None), ("GET", "/ui/{name}", None), ("POST", "/ui", None),
])
def test_the_route_table(method: str, route: str, role: str | None) -> None:
    assert required_role(method, route) == role


def test_an_admin_may_do_what_an_analyst_may_and_not_the_reverse() -> None:
    admin, analyst = Principal("root", "admin"), Principal("alice", "analyst")
    assert admin.may("analyst") and admin.may("admin")
    assert analyst.may("analyst") and not analyst.may("admin")
    assert forbidden_reason(analyst, "put", "/rules", "admin") == (
        "forbidden: PUT /rules needs the admin role; token 'alice' is analyst")
