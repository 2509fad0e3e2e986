"""The worker's HTTP endpoints: ``/healthz``, ``/readyz`` (shards restored), ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import aiohttp.web
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    import faust

    from monitor.outputs.metrics import Metrics
    from streams.pipeline.loop import Pipeline
    from streams.state.shards import ShardManager


def register_views(app: faust.App, manager: ShardManager, metrics: Metrics,
                   pipeline: Pipeline) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` on the worker's web server."""
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
            # aiohttp refuses a charset inside content_type, so the header is set whole.
            response = aiohttp.web.Response(body=generate_latest(metrics.registry),
                                            headers={"Content-Type": CONTENT_TYPE_LATEST})
            return cast(web.Response, response)

    app.page("/healthz")(Healthz)
    app.page("/metrics")(MetricsView)
    app.page("/readyz")(Readyz)
