"""Authentication and roles on the worker's web server: one aiohttp middleware.

Every request passes here before its handler. The route's template decides the role it
needs (:func:`monitor.interfaces.roles.required_role`, the one table of routes and
roles); a missing or unknown token is a bare 401, a known token without the role a 403
with one line naming the role needed and the token's name. A handler finds who called
in ``request["principal"]`` (:func:`principal_of`), a
:class:`~monitor.interfaces.roles.Principal`: the name and the role, never the token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
import orjson

from monitor.interfaces.roles import (
    Principal,
    TokenTable,
    forbidden_reason,
    required_role,
)

if TYPE_CHECKING:
    import faust

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics

logger = logging.getLogger(__name__)

PRINCIPAL = "principal"
Handler = Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.StreamResponse]]


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None,
           ) -> aiohttp.web.Response:
    """A JSON answer."""
    return aiohttp.web.Response(body=orjson.dumps(body), status=status,
                                content_type="application/json", headers=headers)


def unauthorized() -> aiohttp.web.Response:
    return answer({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})


def principal_of(request: Any) -> Principal:
    """Who made ``request`` (set by the middleware before any guarded handler runs)."""
    principal = cast(aiohttp.web.Request, request).get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise TypeError("the role middleware did not run for this route")
    return principal


def route_of(request: aiohttp.web.Request) -> str:
    """The route template a request matched (``/entities/{entity}``), or its path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def tokens_from_env(settings: Settings) -> TokenTable:
    """The API's tokens, from the variables the settings name (``ConfigError`` if bad)."""
    table = TokenTable.from_env(settings.api, os.environ)
    if not len(table):
        logger.warning("none of %s, %s, %s is set: the HTTP API answers 401 to everyone",
                       settings.api.analyst_tokens_env, settings.api.admin_tokens_env,
                       settings.api.token_env)
    else:
        counts = table.counts()
        logger.info("HTTP API: %d analyst and %d admin tokens", counts["analyst"],
                    counts["admin"])
    for name in table.weak:
        logger.warning("API token '%s' is shorter than 16 characters", name)
    return table


def install(app: faust.App, tokens: TokenTable, metrics: Metrics) -> None:
    """Put the role check in front of every route of ``app``'s web server."""

    @aiohttp.web.middleware
    async def roles(request: aiohttp.web.Request, handler: Handler,
                    ) -> aiohttp.web.StreamResponse:
        route = route_of(request)
        # No route matched: the 404 (or 405) follows, to anybody; it says nothing more
        # than a port scan would.
        if request.match_info.route.resource is None:
            return await handler(request)
        needed = required_role(request.method, route)
        if needed is None:
            return await handler(request)
        principal = tokens.authenticate(request.headers.get("Authorization"))
        if principal is None:
            metrics.api_denied.labels("401").inc()
            return unauthorized()
        if not principal.may(needed):
            metrics.api_denied.labels("403").inc()
            logger.info("403: %s %s by '%s' (%s)", request.method, route, principal.name,
                        principal.role)
            return answer({"error": forbidden_reason(principal, request.method, route,
                                                     needed)}, 403)
        request[PRINCIPAL] = principal
        return await handler(request)

    web_app = cast(Any, app.web).web_app
    web_app.middlewares.append(roles)
