"""``GET /entities/{id}`` and ``GET /entities/{id}/movements`` from any worker: answered
here for the shards this worker owns, sent on to the owner for the others.

The owner of each shard and its API address come with the group's assignment
(:mod:`streams.web.owners`). A lookup sent on carries the caller's ``Authorization``
header and ``X-Fraudmon-Forwarded``; a worker never sends on a lookup that carries it (one
hop: if ownership moved meanwhile, it answers 503 and the caller asks again). The answer
says who answered: ``"answered_by"`` in the body and ``X-Fraudmon-Answered-By``. While the
group rebalances, or while the owning shard is being restored, the answer is 503 with
``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
import httpx
import orjson
from faust import web

from monitor.contract.events import ENTITY_TYPES
from monitor.contract.vocabulary import LOOKUP_TYPES
from monitor.interfaces.movements import DEFAULT_LIMIT, MAX_LIMIT, movements
from monitor.routing.views import View, shard_of
from streams.web.auth import answer

if TYPE_CHECKING:
    import faust

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from monitor.state.shard import Shard
    from streams.pipeline.loop import Pipeline
    from streams.state.shards import ShardManager
    from streams.web.owners import AdvertisingAssignor

logger = logging.getLogger(__name__)

FORWARDED = "X-Fraudmon-Forwarded"
ANSWERED_BY = "X-Fraudmon-Answered-By"
MAX_ANSWER_BYTES = 1 << 20

Local = Callable[["Shard", str], "dict[str, Any] | None"]
"""What a route answers from an owned shard for one entity type (``None``: not there)."""


class Forwarder:
    """The shared HTTP client that sends lookups on to their owners (opened at start-up,
    closed at shutdown)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.timeout = settings.web.forward_timeout_seconds
        self.metrics = metrics
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout),
                                        follow_redirects=False, trust_env=False)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def send(self, owner: str, path: str, params: dict[str, str],
                   authorization: str | None, me: str) -> tuple[int, Any]:
        """(status, decoded body) of the owner's answer to ``GET path?params``; 502/504
        with a reason when it cannot be had."""
        if self.client is None:  # a lookup before start-up finished
            await self.start()
        assert self.client is not None  # noqa: S101 - just made
        headers = {FORWARDED: me}
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            async with self.client.stream("GET", f"{owner}{path}", params=params,
                                          headers=headers) as response:
                body = await _read_bounded(response)
                status = response.status_code
            decoded = orjson.loads(body) if body else None
        except httpx.TimeoutException:
            self.metrics.entity_forwards.labels("timeout").inc()
            return 504, {"error": f"the owner {owner} did not answer within "
                                  f"{self.timeout:g} s"}
        except (httpx.HTTPError, ValueError):  # orjson's error is a ValueError
            self.metrics.entity_forwards.labels("unreachable").inc()
            return 502, {"error": f"the owner {owner} could not be reached or answered "
                                  "garbage"}
        self.metrics.entity_forwards.labels("answered").inc()
        return status, decoded


async def _read_bounded(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
    return bytes(body)


def _quote(entity: str) -> str:
    from urllib.parse import quote

    return quote(entity, safe="")


def _limit(text: str | None) -> int | None:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        return None
    return int(text)


def register_entities(app: faust.App, settings: Settings, manager: ShardManager,
                      pipeline: Pipeline, assignor: AdvertisingAssignor,
                      forwarder: Forwarder) -> None:
    """``GET /entities/{entity}`` and ``GET /entities/{entity}/movements`` on the worker's
    web server."""
    partitions = settings.kafka.partitions
    me = assignor.url
    retry = {"Retry-After": str(settings.web.retry_after_seconds)}

    def busy(reason: str) -> web.Response:
        forwarder.metrics.entity_forwards.labels("rebalancing").inc()
        return cast(web.Response, answer({"error": reason, "answered_by": me}, 503, retry))

    def here(body: dict[str, Any], status: int = 200) -> web.Response:
        return cast(web.Response, answer({**body, "answered_by": me}, status,
                                         {ANSWERED_BY: me}))

    async def lookup(req: aiohttp.web.Request, entity: str, suffix: str,
                     params: dict[str, str], local: Local) -> web.Response:
        """``local``'s answer from the shard that owns ``entity`` (of the wanted type, or
        the first of :data:`LOOKUP_TYPES` found), here or from its owner at
        ``/entities/{entity}{suffix}?params``."""
        wanted = req.query.get("entity_type")
        if wanted is not None and wanted not in ENTITY_TYPES:
            return cast(web.Response, answer(
                {"error": "'entity_type' must be one of " + ", ".join(sorted(ENTITY_TYPES))},
                400))
        forwarded = req.headers.get(FORWARDED) is not None
        if pipeline.rebalancing:
            return busy("the group is rebalancing; ask again")
        types = (wanted,) if wanted is not None else LOOKUP_TYPES
        for entity_type in types:
            shard_id = shard_of(View("lookup", entity_type, entity, True), partitions)
            if shard_id in pipeline.owned:
                shard = manager.shards.get(shard_id)
                if shard is None:
                    return busy(f"shard {shard_id} is being restored here; ask again")
                found = local(shard, entity_type)
                if found is not None:
                    return here(found)
                continue
            if forwarded:  # one hop: ownership moved since the sender looked
                return busy(f"shard {shard_id} is not owned here any more; ask again")
            owner = assignor.owners.get(shard_id)
            if owner is None or owner == me:
                return busy(f"the owner of shard {shard_id} is not known yet; ask again")
            status, body = await forwarder.send(
                owner, f"/entities/{_quote(entity)}{suffix}",
                {**params, "entity_type": entity_type}, req.headers.get("Authorization"), me)
            if status == 404:
                continue
            if isinstance(body, dict):
                body.setdefault("answered_by", owner)
            headers = {ANSWERED_BY: owner} if status < 500 or status == 503 else {}
            if status == 503:
                headers.update(retry)
            return cast(web.Response, answer(body, status, headers))
        owner_shard = shard_of(View("lookup", types[0], entity, True), partitions)
        return here({"error": "not found", "shard": owner_shard,
                     "owned": owner_shard in pipeline.owned}, 404)

    class Entity(web.View):
        async def get(self, request: web.Request, entity: str) -> web.Response:
            return await lookup(cast(aiohttp.web.Request, request), entity, "", {},
                                lambda shard, entity_type: shard.describe(entity_type, entity))

    class Movements(web.View):
        """The graph the console draws (:mod:`monitor.interfaces.movements`): read from
        the owner's state, changing nothing."""

        async def get(self, request: web.Request, entity: str) -> web.Response:
            req = cast(aiohttp.web.Request, request)
            limit = _limit(req.query.get("limit"))
            if limit is None:
                return cast(web.Response, answer(
                    {"error": f"'limit' must be in 1..{MAX_LIMIT}"}, 400))

            def local(shard: Shard, entity_type: str) -> dict[str, Any] | None:
                state = shard.entities.get(f"{entity_type}:{entity}")
                if state is None:
                    return None
                return {**movements(state, entity_type, entity, limit),
                        "shard": shard.shard_id}

            return await lookup(req, entity, "/movements", {"limit": str(limit)}, local)

    app.page("/entities/{entity}")(Entity)
    app.page("/entities/{entity}/movements")(Movements)
