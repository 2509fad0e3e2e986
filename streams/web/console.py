"""The analysts' console at ``/ui`` and the route its graph reads,
``GET /entities/{entity}/movements``.

The console is three static files (``streams/web/console/``: plain HTML, CSS and
JavaScript, no build step, nothing fetched from elsewhere) served by the worker itself,
read once at start. They hold no secret: the browser keeps the analyst's token for the
tab (``sessionStorage``) and sends it as ``Authorization: Bearer`` to the API routes,
which check it as they check any client's. Every answer carries a strict
Content-Security-Policy (only this origin's scripts and styles, no inline script, no
framing), and the script writes data into the page as text, never as markup, since
every identifier it shows came in on a Kafka topic.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import aiohttp.web
import orjson
from faust import web

from monitor.contract.events import ENTITY_TYPES
from monitor.contract.vocabulary import LOOKUP_TYPES
from monitor.interfaces.movements import DEFAULT_LIMIT, MAX_LIMIT, movements
from monitor.routing.views import View, shard_of

if TYPE_CHECKING:
    import faust

    from monitor.config import Settings
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)

ASSETS: Final = Path(__file__).with_name("console")
TYPES: Final = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def load_assets(folder: Path = ASSETS) -> dict[str, tuple[bytes, str]]:
    """The console's files by name, with their content type (read once, at start)."""
    found = {}
    for path in sorted(folder.iterdir()):
        kind = TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            found[path.name] = (path.read_bytes(), kind)
    if "index.html" not in found:
        raise FileNotFoundError(f"the console's index.html is missing from {folder}")
    return found


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None,
          ) -> web.Response:
    response = aiohttp.web.Response(body=orjson.dumps(body), status=status,
                                    content_type="application/json", headers=headers)
    return cast(web.Response, response)


def _limit(text: str | None) -> int | None:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        return None
    return int(text)


def register_console(app: faust.App, settings: Settings, manager: ShardManager) -> None:
    """``/ui`` (and its files) and ``GET /entities/{entity}/movements`` on the worker."""
    assets = load_assets()

    def asset(name: str) -> web.Response:
        found = assets.get(name)
        if found is None:
            return _json({"error": "not found"}, 404)
        body, kind = found
        response = aiohttp.web.Response(body=body, headers={"Content-Type": kind,
                                                            **SECURITY_HEADERS})
        return cast(web.Response, response)

    class Console(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return asset("index.html")

    class ConsoleAsset(web.View):
        async def get(self, request: web.Request, name: str) -> web.Response:
            return asset(name or "index.html")

    class Movements(web.View):
        async def get(self, request: web.Request, entity: str) -> web.Response:
            query = cast(Any, request).query
            wanted = query.get("entity_type")
            if wanted is not None and wanted not in ENTITY_TYPES:
                return _json({"error": "'entity_type' must be one of "
                              + ", ".join(sorted(ENTITY_TYPES))}, 400)
            limit = _limit(query.get("limit"))
            if limit is None:
                return _json({"error": f"'limit' must be in 1..{MAX_LIMIT}"}, 400)
            types = (wanted,) if wanted is not None else LOOKUP_TYPES
            for entity_type in types:
                for shard in list(manager.shards.values()):
                    state = shard.entities.get(f"{entity_type}:{entity}")
                    if state is not None:
                        graph = movements(state, entity_type, entity, limit)
                        return _json({**graph, "shard": shard.shard_id})
            owner = shard_of(View("lookup", types[0], entity, True), settings.kafka.partitions)
            return _json({"error": "not found", "shard": owner,
                          "owned": owner in manager.shards}, 404)

    app.page("/ui")(Console)
    app.page("/ui/{name}")(ConsoleAsset)
    app.page("/entities/{entity}/movements")(Movements)
