"""The risk team's HTTP API on the worker: ``/alerts``, ``/entities/{id}``, ``/labels`` and
``/openapi.json``, all behind ``Authorization: Bearer <token>`` (the token comes from the
environment variable ``api.token_env`` names). A wrong or missing token is a bare 401."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
import orjson
from faust import web

from monitor.config import Settings, secret_from_env
from monitor.contract.events import ENTITY_TYPES, parse, partition_key
from monitor.contract.vocabulary import LOOKUP_TYPES
from monitor.errors import InvalidEvent
from monitor.interfaces.api import BadQuery, alert_query, authorized
from monitor.interfaces.openapi import document
from monitor.routing.views import View, shard_of

if TYPE_CHECKING:
    import faust

    from monitor.outputs.alertstore import AlertStore
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = aiohttp.web.Response(body=orjson.dumps(body), status=status,
                                    content_type="application/json", headers=headers)
    return cast(web.Response, response)


def _unauthorized() -> web.Response:
    return _json({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})


async def _read_limited(request: aiohttp.web.Request, limit: int) -> bytes | None:
    """The request body, or ``None`` when it is longer than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def register_api(app: faust.App, settings: Settings, manager: ShardManager,
                 store: AlertStore) -> None:
    """Add the API's pages to the worker's web server."""
    token = secret_from_env(settings.api.token_env)
    if token is None:
        logger.warning("%s is not set: the HTTP API answers 401 to everyone",
                       settings.api.token_env)
    labels_topic = settings.kafka.topic("labels")
    max_bytes = settings.processing.max_event_bytes
    limits, rule = settings.processing.limits(), settings.processing.time_rule()
    openapi = document(settings.api.page_size, settings.api.max_page_size)

    def allowed(request: web.Request) -> bool:
        return authorized(cast(Any, request).headers.get("Authorization"), token)

    class OpenApi(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return _json(openapi) if allowed(request) else _unauthorized()

    class Alerts(web.View):
        async def get(self, request: web.Request) -> web.Response:
            if not allowed(request):
                return _unauthorized()
            try:
                query = alert_query(cast(Any, request).query, settings.api)
            except BadQuery as exc:
                return _json({"error": str(exc)}, 400)
            page = store.query(query)
            return _json({"alerts": page.alerts, "next_cursor": page.next_cursor})

    class Entity(web.View):
        async def get(self, request: web.Request, entity: str) -> web.Response:
            if not allowed(request):
                return _unauthorized()
            wanted = cast(Any, request).query.get("entity_type")
            if wanted is not None and wanted not in ENTITY_TYPES:
                return _json({"error": "'entity_type' must be one of "
                              + ", ".join(sorted(ENTITY_TYPES))}, 400)
            types = (wanted,) if wanted is not None else LOOKUP_TYPES
            for entity_type in types:
                for shard in list(manager.shards.values()):
                    found = shard.describe(entity_type, entity)
                    if found is not None:
                        return _json(found)
            owner = shard_of(View("lookup", types[0], entity, True), settings.kafka.partitions)
            return _json({"error": "not found", "shard": owner,
                          "owned": owner in manager.shards}, 404)

    class Labels(web.View):
        async def post(self, request: web.Request) -> web.Response:
            if not allowed(request):
                return _unauthorized()
            body = await _read_limited(cast(aiohttp.web.Request, request), max_bytes)
            if body is None:
                return _json({"error": f"a label is at most {max_bytes} bytes"}, 413)
            try:
                label = parse("labels", body, max_bytes=max_bytes, limits=limits)
                rule.check(label.ts, time.time())  # the worker would dead-letter it
            except InvalidEvent as exc:
                return _json({"error": exc.reason}, 400)
            key = partition_key(label)
            await app.producer.send_and_wait(labels_topic, key.encode(), body, None, None, None)
            return _json({"event_id": label.event_id, "topic": labels_topic, "key": key}, 202)

    app.page("/openapi.json")(OpenApi)
    app.page("/alerts")(Alerts)
    app.page("/entities/{entity}")(Entity)
    app.page("/labels")(Labels)
