"""Helpers for integration tests: config files, worker processes, Kafka reads.

Every wait here polls a condition with a deadline; none is a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitor.config import Settings, load_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_config(tmp_path: Path, bootstrap: str, partitions: int = 4,
                sections: dict[str, Any] | None = None,
                **processing: Any) -> tuple[Path, Settings]:
    """A config file with its own topic prefix, group, state dir and web port.

    ``sections`` adds whole settings sections (``webhooks``, ``api``, ...).
    """
    tag = uuid.uuid4().hex[:8]
    data = {
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": f"it-{tag}.",
                  "app_id": f"it-{tag}", "partitions": partitions},
        "processing": {"state_dir": str(tmp_path / "state"),
                       "checkpoint_interval_seconds": 0.5, **processing},
        "web": {"port": free_port()},
        **(sections or {}),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, load_settings(path)


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)  # polling a condition, not standing in for readiness
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Worker:
    """A ``fraudmon worker`` subprocess; ``env`` adds environment variables (secrets)."""

    def __init__(self, config: Path, settings: Settings, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.config, self.settings, self.log_path = config, settings, log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        handle = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--config", str(self.config)],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        handle.close()
        return self

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"worker exited; log:\n{self.tail()}")
        url = f"http://127.0.0.1:{self.settings.web.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> dict[str, float]:
        """The worker's /metrics samples, ``name{labels}`` -> value."""
        url = f"http://127.0.0.1:{self.settings.web.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def wait_ready(self, timeout: float = 60) -> Worker:
        wait_for(self.ready, timeout, "worker /readyz")
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"worker ignored SIGTERM; log:\n{self.tail()}") from None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` on the event loop (peers on the same loop keep answering)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)  # polling a condition


class TopicReader:
    """Reads output topics from the beginning, accumulating decoded records."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap, self.topics = bootstrap, topics
        self.records: dict[str, list[dict[str, Any]]] = {topic: [] for topic in topics}
        self.consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self.consumer = AIOKafkaConsumer(
            *self.topics, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None)
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.consumer is not None
        await self.consumer.stop()

    async def poll(self) -> None:
        assert self.consumer is not None
        batch = await self.consumer.getmany(timeout_ms=200)
        for tp, messages in batch.items():
            self.records[tp.topic].extend(orjson.loads(m.value) for m in messages)

    async def drain(self, timeout: float = 30) -> None:
        """Read until this reader has every record the topics hold right now."""
        assert self.consumer is not None
        deadline = time.monotonic() + timeout
        while True:
            assignment = self.consumer.assignment()
            if assignment:
                ends = await self.consumer.end_offsets(list(assignment))
                positions = {tp: await self.consumer.position(tp) for tp in assignment}
                if all(positions[tp] >= ends[tp] for tp in assignment):
                    return
            if time.monotonic() > deadline:
                raise AssertionError("could not read the topics to their end")
            await self.poll()

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                counts = {topic: len(records) for topic, records in self.records.items()}
                raise AssertionError(f"timed out waiting for {what}; have {counts}")
            await self.poll()


async def caught_up(settings: Settings, topics: list[str]) -> bool:
    """Whether the worker's group has committed up to the end of every partition of topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.kafka.app_id)
        partitions = [TopicPartition(topic, p) for topic in topics
                      for p in (consumer.partitions_for_topic(topic) or
                                await _partitions(consumer, topic))]
        ends = await consumer.end_offsets(partitions)
        return all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp])
                   for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def wait_caught_up(settings: Settings, topics: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await caught_up(settings, topics):
        if time.monotonic() > deadline:
            raise AssertionError("worker never committed up to the end of its input")
        await asyncio.sleep(0.2)  # polling the committed offsets


def input_topics(settings: Settings) -> list[str]:
    """The topics the worker's group consumes: the inputs and the routed topic."""
    return [settings.kafka.topic(name)
            for name in ("payments", "loan_disbursals", "labels", "routed")]


async def sample_alerts(settings: Settings, path: Path, at_least: int = 3,
                        timeout: float = 60) -> dict[str, dict[str, Any]]:
    """Send the demo sample to a running worker; once it has scored everything, every
    alert on the alerts topic by ``alert_id``."""
    from monitor.tools.samplefile import write_sample
    from streams.devtools.produce import produce_file

    write_sample(path)
    await produce_file(settings, path)
    alerts = settings.kafka.topic("alerts")
    async with TopicReader(settings.kafka.bootstrap_servers, [alerts]) as reader:
        await reader.until(lambda: len(reader.records[alerts]) >= at_least, timeout, "alerts")
        await wait_caught_up(settings, input_topics(settings), timeout)
        await reader.drain()
    return {alert["alert_id"]: alert for alert in reader.records[alerts]}


def strip_wallclock(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its wall-clock stamps, for content comparisons."""
    return {k: v for k, v in record.items()
            if k not in {"processed_at", "created_at", "dead_lettered_at"}}
