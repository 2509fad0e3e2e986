"""The worker's HTTP endpoints: ``/healthz``, ``/readyz`` (shards restored), ``/metrics``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.config import secret_from_env
from monitor.interfaces.api import authorized

if TYPE_CHECKING:
    import faust

    from monitor.outputs.metrics import Metrics
    from streams.pipeline.loop import Pipeline
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)


def register_views(app: faust.App, manager: ShardManager, metrics: Metrics,
                   pipeline: Pipeline, metrics_token_env: str | None = None) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` on the worker's web server; ``/metrics``
    needs the bearer token in ``metrics_token_env`` when that is given."""
    guarded = metrics_token_env is not None
    token = secret_from_env(metrics_token_env) if metrics_token_env is not None else None
    if guarded and token is None:
        logger.warning("%s is not set: /metrics answers 401 to everyone", metrics_token_env)

    class Healthz(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json({"status": "alive"})

    class Readyz(web.View):
        async def get(self, request: web.Request) -> web.Response:
            assignment = pipeline.assignment()
            ready = bool(assignment) and not pipeline.rebalancing and pipeline.restored()
            body = {"ready": ready, "partitions": len(assignment),
                    "shards_loaded": len(manager.shards), "checkpoints": manager.checkpoints}
            return self.json(body, status=200 if ready else 503)

    class MetricsView(web.View):
        async def get(self, request: web.Request) -> web.Response:
            if guarded and not authorized(cast(Any, request).headers.get("Authorization"),
                                          token):
                return self.json({"error": "unauthorized"}, status=401,
                                 headers={"WWW-Authenticate": "Bearer"})
            # aiohttp refuses a charset inside content_type, so the header is set whole.
            response = aiohttp.web.Response(body=generate_latest(metrics.registry),
                                            headers={"Content-Type": CONTENT_TYPE_LATEST})
            return cast(web.Response, response)

    app.page("/healthz")(Healthz)
    app.page("/metrics")(MetricsView)
    app.page("/readyz")(Readyz)
