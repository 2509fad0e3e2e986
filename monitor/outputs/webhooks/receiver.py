"""``fraudmon webhook-receiver``: a small receiver that verifies what the monitor sends.

``POST /`` takes the monitor's signed webhooks: it verifies the signature with the
receiver's ``whsec_`` secret(s) and the timestamp against a tolerance, drops repeats by
``webhook-id``, then prints the alert and appends it to a JSONL store. ``POST
/alertmanager`` takes Alertmanager's (unsigned) notifications behind a bearer token.
``GET /healthz`` answers while it runs. For the demo, the tests and anyone who wants to
see the payload; a production receiver does the same checks (see the README).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

from monitor.errors import SignatureError
from monitor.outputs.webhooks.signing import TOLERANCE_SECONDS, verify

logger = logging.getLogger(__name__)
REMEMBERED_IDS = 100_000
MAX_BODY_BYTES = 1 << 20


class Receiver:
    """The receiver's state: keys, the ids it has seen, its store."""

    def __init__(self, keys: list[bytes], store: Path | None = None,
                 tolerance: float = TOLERANCE_SECONDS,
                 alertmanager_token: SecretStr | None = None,
                 echo: Callable[[str], None] | None = print,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.store = store
        self.tolerance = tolerance
        self.alertmanager_token = alertmanager_token
        self.echo = echo
        self.clock = clock
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "alertmanager": 0}
        self.lock = asyncio.Lock()
        if store is not None and store.exists():
            for line in store.read_bytes().splitlines():
                record = orjson.loads(line)
                if record.get("kind") == "webhook":
                    self._remember(record["webhook_id"])

    def _remember(self, msg_id: str) -> None:
        self.seen[msg_id] = None
        if len(self.seen) > REMEMBERED_IDS:
            self.seen.popitem(last=False)

    async def _keep(self, record: dict[str, Any], line: str) -> None:
        if self.store is not None:
            data = orjson.dumps(record) + b"\n"
            async with self.lock:
                await asyncio.to_thread(_append, self.store, data)
        if self.echo is not None:
            self.echo(line)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.keys, request.headers, body, now=self.clock(), tolerance=self.tolerance)
            payload = orjson.loads(body)
        except SignatureError as exc:
            self.counts["rejected"] += 1
            logger.warning("rejected a webhook: %s", exc)
            return web.json_response({"error": str(exc)}, status=401)
        except orjson.JSONDecodeError:
            self.counts["rejected"] += 1
            return web.json_response({"error": "body is not JSON"}, status=400)
        msg_id = request.headers["webhook-id"]
        if msg_id in self.seen:
            self.counts["duplicate"] += 1
            return web.json_response({"duplicate": True})
        self._remember(msg_id)
        self.counts["accepted"] += 1
        record = {"kind": "webhook", "webhook_id": msg_id, "received_at": self.clock(),
                  "payload": payload}
        await self._keep(record, _describe(payload))
        return web.json_response({"accepted": True})

    async def alertmanager(self, request: web.Request) -> web.Response:
        if self.alertmanager_token is not None:
            given = request.headers.get("authorization", "")
            wanted = f"Bearer {self.alertmanager_token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), wanted.encode()):
                self.counts["rejected"] += 1
                return web.json_response({"error": "unauthorized"}, status=401)
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        self.counts["alertmanager"] += 1
        names = sorted({str(a.get("labels", {}).get("alertname")) for a in
                        payload.get("alerts", [])}) if isinstance(payload, dict) else []
        status = payload.get("status") if isinstance(payload, dict) else None
        await self._keep({"kind": "alertmanager", "received_at": self.clock(),
                          "payload": payload},
                         f"ALERTMANAGER {status} {', '.join(names)}")
        return web.json_response({"accepted": True})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", **self.counts})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self.webhook)
        app.router.add_post("/alertmanager", self.alertmanager)
        app.router.add_get("/healthz", self.healthz)
        return app


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def _describe(payload: Any) -> str:
    alert = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(alert, dict):
        return f"WEBHOOK {str(payload)[:120]}"
    return (f"WEBHOOK {alert.get('severity', '?'):<6} {alert.get('pattern', '?'):<16} "
            f"{alert.get('entity_type', '?')} {alert.get('entity', '?')}  "
            f"score={alert.get('score', 0):.2f}  id={alert.get('alert_id')}")


def serve(receiver: Receiver, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    print(f"webhook receiver on http://{host}:{port}/ (Alertmanager: /alertmanager)",
          flush=True)
    web.run_app(receiver.app(), host=host, port=port, print=None, access_log=None)
