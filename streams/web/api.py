"""The risk team's HTTP API on the worker: ``/alerts`` (from the deployment's alert
store), ``/labels``, ``/whoami``, ``/settings`` and ``/openapi.json``; ``/entities/{id}``
is :mod:`streams.web.entities`. Who may call what is decided before any handler runs
(:mod:`streams.web.auth`, the roles of :mod:`monitor.interfaces.roles`)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
from faust import web

from monitor.contract.events import parse, partition_key
from monitor.errors import InvalidEvent, StoreUnavailable
from monitor.interfaces.api import BadQuery, alert_query
from monitor.interfaces.openapi import document
from streams.web.auth import answer, principal_of

if TYPE_CHECKING:
    import faust

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from monitor.outputs.store import AlertStore

logger = logging.getLogger(__name__)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return cast(web.Response, answer(body, status, headers))


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


def register_api(app: faust.App, settings: Settings, store: AlertStore,
                 metrics: Metrics) -> None:
    """Add the API's pages to the worker's web server."""
    labels_topic = settings.kafka.topic("labels")
    max_bytes = settings.processing.max_event_bytes
    limits, rule = settings.processing.limits(), settings.processing.time_rule()
    openapi = document(settings.api.page_size, settings.api.max_page_size)
    retry = {"Retry-After": str(settings.web.retry_after_seconds)}

    class OpenApi(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return _json(openapi)

    class WhoAmI(web.View):
        async def get(self, request: web.Request) -> web.Response:
            principal = principal_of(request)
            return _json({"name": principal.name, "role": principal.role})

    class SettingsView(web.View):
        async def get(self, request: web.Request) -> web.Response:
            # Variable names only: no secret is ever held in Settings.
            return _json(settings.model_dump(mode="json"))

    class Alerts(web.View):
        async def get(self, request: web.Request) -> web.Response:
            try:
                query = alert_query(cast(Any, request).query, settings.api)
            except BadQuery as exc:
                return _json({"error": str(exc)}, 400)
            started = time.perf_counter()
            try:
                page = await store.query(query)
            except StoreUnavailable as exc:
                metrics.store_failures.labels("query").inc()
                logger.warning("GET /alerts: %s", exc)
                return _json({"error": "the alert store is unavailable; ask again"}, 503,
                             retry)
            metrics.store_query_seconds.observe(time.perf_counter() - started)
            return _json({"alerts": page.alerts, "next_cursor": page.next_cursor})

    class Labels(web.View):
        async def post(self, request: web.Request) -> web.Response:
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
            logger.info("label %s posted by '%s'", label.event_id, principal_of(request).name)
            return _json({"event_id": label.event_id, "topic": labels_topic, "key": key}, 202)

    app.page("/openapi.json")(OpenApi)
    app.page("/whoami")(WhoAmI)
    app.page("/settings")(SettingsView)
    app.page("/alerts")(Alerts)
    app.page("/labels")(Labels)
