"""Real peers for integration tests: ``fraudmon webhook-receiver``, Prometheus and
Alertmanager (Debian's binaries, installed by ``make apt-deps``), each a subprocess on
free loopback ports, configured from the repository's own files in deploy/.

Every wait polls a condition with a deadline; none is a fixed sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from monitor.outputs.webhooks.signing import verify
from tests.integration.harness import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def binary(name: str) -> str:
    """The path of a peer's binary; a clear failure when it is not installed."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: run `make apt-deps` "
                             "(Debian packages prometheus and prometheus-alertmanager)")
    return path


def http_json(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
              method: str | None = None) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, json.loads(body) if body else None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Process:
    """A subprocess with a log file, stopped by SIGTERM (then SIGKILL) on its own group."""

    def __init__(self, name: str, command: list[str], log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.command, self.log_path = name, command, log
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as handle:
            self.proc = subprocess.Popen(self.command, stdout=handle, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited; log:\n{self.tail()}")
        return True

    def start_ready(self, url: str, timeout: float = 30) -> None:
        """Start, then wait until ``url`` answers 200."""
        self.start()
        wait_for(lambda: self.alive() and answers(url), timeout, self.name)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class WebhookReceiver(Process):
    """``fraudmon webhook-receiver`` storing what it accepts in a JSONL file."""

    def __init__(self, workdir: Path, secret: str, token: str | None = None) -> None:
        self.port = free_port()
        self.store = workdir / f"received-{self.port}.jsonl"
        env = {"FRAUDMON_TEST_RECEIVER_SECRET": secret}
        command = [sys.executable, "-m", "streams.cli", "webhook-receiver",
                   "--port", str(self.port), "--secret-env", "FRAUDMON_TEST_RECEIVER_SECRET",
                   "--store", str(self.store)]
        if token is not None:
            env["FRAUDMON_TEST_AM_TOKEN"] = token
            command += ["--alertmanager-token-env", "FRAUDMON_TEST_AM_TOKEN"]
        super().__init__("webhook-receiver", command, workdir / f"receiver-{self.port}.log", env)
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> WebhookReceiver:
        self.start_ready(f"{self.url}/healthz")
        return self

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.store.exists():
            return []
        records = [json.loads(line) for line in self.store.read_bytes().splitlines()]
        return [r for r in records if kind is None or r["kind"] == kind]

    def counts(self) -> dict[str, Any]:
        status, body = http_json(f"{self.url}/healthz")
        assert status == 200
        return dict(body)


class Alertmanager(Process):
    """Alertmanager on deploy/alertmanager/alertmanager.yml, sending to ``receiver_url``
    with ``token``; only the URL, the token file and the grouping waits are changed."""

    def __init__(self, workdir: Path, receiver_url: str, token: str) -> None:
        self.port = free_port()
        config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
        token_file = workdir / "am-token"
        token_file.write_text(token)
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = receiver_url
                hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        config["route"].update(group_wait="1s", group_interval="1s")
        path = workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        super().__init__("alertmanager", [
            binary("prometheus-alertmanager"), f"--config.file={path}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
        ], workdir / "alertmanager.log")
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> Alertmanager:
        self.start_ready(f"{self.url}/-/ready")
        return self


class Prometheus(Process):
    """Prometheus on deploy/prometheus/prometheus.yml and its rules, scraping ``target``
    every second and evaluating rules every second; only addresses and intervals change."""

    def __init__(self, workdir: Path, target: str, alertmanager: str | None = None) -> None:
        self.port = free_port()
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(DEPLOY / "prometheus" / rule)
                                for rule in config["rule_files"]]
        config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
        if alertmanager is not None:
            config["alerting"]["alertmanagers"][0]["static_configs"] = [
                {"targets": [alertmanager]}]
        else:
            del config["alerting"]
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        super().__init__("prometheus", [
            binary("prometheus"), f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ], workdir / "prometheus.log")
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> Prometheus:
        self.start_ready(f"{self.url}/-/ready")
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as one sample) ``expr`` evaluates to now."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_json(url)
        assert status == 200 and body["status"] == "success", (expr, body)
        data = body["data"]
        if data["resultType"] == "vector":
            return list(data["result"])
        return [{"metric": {}, "value": data["result"]}]

    def alerts(self) -> list[dict[str, Any]]:
        status, body = http_json(f"{self.url}/api/v1/alerts")
        assert status == 200
        return list(body["data"]["alerts"])


@dataclass
class FlakyReceiver:
    """A receiver in this event loop, on a fixed port, that is down, failing (500),
    throttling (429), gone (410) or fine, on demand; it logs every request it answers."""

    port: int
    keys: list[bytes]
    mode: str = "down"
    retry_after: int = 1
    log: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        alert_id = orjson.loads(body)["data"]["alert_id"]
        entry = {"at": time.monotonic(), "mode": self.mode, "alert_id": alert_id,
                 "webhook_id": request.headers.get("webhook-id"), "path": request.path}
        self.log.append(entry)
        if self.mode == "failing":
            return web.Response(status=500)
        if self.mode == "gone":
            return web.Response(status=410)
        if self.mode == "throttling":
            return web.Response(status=429, headers={"Retry-After": str(self.retry_after)})
        try:
            verify(self.keys, request.headers, body, now=time.time())
        except Exception as exc:  # noqa: BLE001 - any failure is the answer under test
            entry["mode"] = "rejected"
            return web.json_response({"error": str(exc)}, status=401)
        return web.json_response({"accepted": True})

    async def up(self, mode: str) -> None:
        self.mode = mode
        if self.runner is None:
            app = web.Application()
            app.router.add_post("/{path:.*}", self.handle)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def seen(self, mode: str) -> int:
        return sum(1 for entry in self.log if entry["mode"] == mode)

    def calls(self, alert_id: str) -> int:
        return sum(1 for entry in self.log if entry["alert_id"] == alert_id)
