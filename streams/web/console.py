"""The analysts' console at ``/ui``: its static files, served by the worker (the graph
it draws reads ``GET /entities/{entity}/movements``, :mod:`streams.web.entities`).

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
from typing import TYPE_CHECKING, Final, cast

import aiohttp.web
from faust import web

from streams.web.auth import answer

if TYPE_CHECKING:
    import faust

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


def register_console(app: faust.App) -> None:
    """``/ui`` and its files on the worker."""
    assets = load_assets()

    def asset(name: str) -> web.Response:
        found = assets.get(name)
        if found is None:
            return cast(web.Response, answer({"error": "not found"}, 404))
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

    app.page("/ui")(Console)
    app.page("/ui/{name}")(ConsoleAsset)
