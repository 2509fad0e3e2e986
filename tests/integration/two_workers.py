"""Two workers of one deployment (same topics and group, each its own state directory and
web port), with API tokens of both roles: shared by the alert store, entity lookup and
roles tests."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.config import Settings, load_settings
from tests.integration.harness import Worker, free_port, make_config, wait_for
from tests.integration.peers import http_json

ANALYST = "analyst-token-0123456789"
ADMIN = "admin-token-0123456789ab"
LEGACY = "legacy-token-0123456789"
TOKENS = {"FRAUDMON_ANALYST_TOKENS": f"ana:{ANALYST}", "FRAUDMON_ADMIN_TOKENS": f"boss:{ADMIN}",
          "FRAUDMON_API_TOKEN": LEGACY}


def deployment(tmp_path: Path, bootstrap: str, sections: dict[str, Any] | None = None,
               env: dict[str, str] | None = None, **kafka: Any) -> tuple[Worker, Worker]:
    """Two workers, not started; ``sections`` and ``kafka`` change both configs."""
    workers = []
    first: dict[str, Any] | None = None
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        if first is None:
            path, _ = make_config(home, bootstrap, sections=sections)
            first = yaml.safe_load(path.read_text())
            first["kafka"].update(kafka)
        data = {**first, "processing": {**first["processing"],
                                        "state_dir": str(home / "state")},
                "web": {**first["web"], "port": free_port()}}
        path = home / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        workers.append(Worker(path, load_settings(path), home / "worker.log",
                              env={**TOKENS, **(env or {})}))
    return workers[0], workers[1]


def base(worker: Worker) -> str:
    return f"http://127.0.0.1:{worker.settings.web.port}"


def get(worker: Worker, path: str, token: str | None = ANALYST,
        **params: Any) -> tuple[int, Any]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http_json(base(worker) + path + query, headers=headers)


def post(worker: Worker, path: str, body: dict[str, Any], token: str = ANALYST,
         ) -> tuple[int, Any]:
    return http_json(base(worker) + path, orjson.dumps(body),
                     {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                     "POST")


async def labels_with(settings: Settings, event_id: str) -> list[dict[str, Any]]:
    """Every record on the labels topic whose ``event_id`` is ``event_id`` (read to its
    end once one is there)."""
    from tests.integration.harness import TopicReader

    topic = settings.kafka.topic("labels")
    async with TopicReader(settings.kafka.bootstrap_servers, [topic]) as reader:
        await reader.until(lambda: any(r.get("event_id") == event_id
                                       for r in reader.records[topic]), 30, event_id)
        await reader.drain()
    return [r for r in reader.records[topic] if r.get("event_id") == event_id]


def all_alerts(worker: Worker, token: str = ANALYST) -> list[dict[str, Any]]:
    """Every alert ``GET /alerts`` pages through on ``worker``, newest first."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        status, page = get(worker, "/alerts", token, **params)
        assert status == 200, page
        seen.extend(page["alerts"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def store_holds(worker: Worker, ids: set[str], timeout: float = 60) -> None:
    """Wait until ``GET /alerts`` on ``worker`` pages through exactly ``ids``, once each."""
    def holds() -> bool:
        found = [alert["alert_id"] for alert in all_alerts(worker)]
        assert len(found) == len(set(found)), "an alert is stored twice"
        return set(found) == ids
    await asyncio.to_thread(wait_for, holds, timeout, f"{len(ids)} alerts on {base(worker)}")


def started(*workers: Worker) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready(90)


def spread_sample(path: Path, partitions: int, accounts: int = 8) -> list[str]:
    """The demo sample's structuring account, copied onto ``accounts`` accounts that
    cover every shard (so that every worker raises alerts), written to ``path``; the
    accounts' ids."""
    from monitor.routing.views import View, shard_of
    from monitor.tools.samplefile import write_sample

    write_sample(path)
    smurf = [orjson.loads(line) for line in path.read_bytes().splitlines()
             if b'"acct-smurf-01"' in line]
    names, shards, n = [], set(), 0
    while len(names) < accounts or len(shards) < partitions:
        name = f"acct-smurf-{n:02d}"
        shards.add(shard_of(View("lookup", "account", name, True), partitions))
        names.append(name)
        n += 1
    lines = []
    for name in names:
        for record in smurf:
            value = {**record["value"], "payer": name,
                     "event_id": f"{record['value']['event_id']}-{name}"}
            lines.append(orjson.dumps({**record, "key": name, "value": value}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return names


async def spread_alerts(settings: Settings, path: Path, partitions: int,
                        ) -> dict[str, dict[str, Any]]:
    """Send :func:`spread_sample` to running workers; every alert once all is scored."""
    from streams.devtools.produce import produce_file
    from tests.integration.harness import TopicReader, input_topics, wait_caught_up

    names = spread_sample(path, partitions)
    await produce_file(settings, path)
    alerts = settings.kafka.topic("alerts")
    async with TopicReader(settings.kafka.bootstrap_servers, [alerts]) as reader:
        await reader.until(lambda: {a["entity"] for a in reader.records[alerts]}
                           >= set(names), 90, "an alert on every account")
        await wait_caught_up(settings, input_topics(settings), 90)
        await reader.drain()
    return {alert["alert_id"]: alert for alert in reader.records[alerts]}


async def topic_ends(worker: Worker) -> dict[int, int]:
    topic = worker.settings.kafka.topic("alerts")
    consumer = AIOKafkaConsumer(bootstrap_servers=worker.settings.kafka.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(worker.settings.kafka.partitions)]
        return {tp.partition: offset
                for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()
