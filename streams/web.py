"""The worker's HTTP endpoints: ``/healthz`` (alive) and ``/readyz`` (shards assigned)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust import web

if TYPE_CHECKING:
    import faust

    from streams.shards import ShardManager


def register_views(app: faust.App, manager: ShardManager) -> None:
    class Healthz(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json({"status": "alive"})

    class Readyz(web.View):
        async def get(self, request: web.Request) -> web.Response:
            assignment: Any = app.consumer.assignment() if app.consumer else set()
            ready = bool(assignment) and not app.rebalancing
            body = {"ready": ready, "partitions": len(assignment),
                    "shards_loaded": len(manager.shards), "checkpoints": manager.checkpoints}
            return self.json(body, status=200 if ready else 503)

    app.page("/healthz")(Healthz)
    app.page("/readyz")(Readyz)
