"""``fraudmon webhook-receiver``: verification, deduplication, the store, Alertmanager auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from monitor.outputs.webhooks.receiver import Receiver
from monitor.outputs.webhooks.signing import generate_secret, parse_secret, sign

SECRET = generate_secret()
NOW = 1_800_000_000
BODY = orjson.dumps({"type": "alert.created", "data": {
    "alert_id": "al_1", "pattern": "mule_account", "severity": "high", "entity": "a-1",
    "entity_type": "account", "score": 0.93}})


def signed(msg_id: str = "al_1", ts: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(parse_secret(SECRET), msg_id, ts, body)}


@asynccontextmanager
async def client(receiver: Receiver) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(receiver.app())) as test_client:
        yield test_client


def receiver(tmp_path: Path | None = None, **options: object) -> tuple[Receiver, list[str]]:
    printed: list[str] = []
    store = tmp_path / "got.jsonl" if tmp_path is not None else None
    return Receiver([parse_secret(SECRET)], store=store, echo=printed.append,
                    clock=lambda: NOW, **options), printed  # type: ignore[arg-type]


async def test_accepts_a_signed_webhook_once_and_stores_it(tmp_path: Path) -> None:
    got, printed = receiver(tmp_path)
    async with client(got) as http:
        first = await http.post("/", data=BODY, headers=signed())
        again = await http.post("/", data=BODY, headers=signed(ts=NOW + 5))
        assert first.status == 200 and await first.json() == {"accepted": True}
        assert again.status == 200 and await again.json() == {"duplicate": True}
        health = await (await http.get("/healthz")).json()
    assert health["accepted"] == 1 and health["duplicate"] == 1
    lines = (tmp_path / "got.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["webhook_id"] for line in lines] == ["al_1"]
    assert orjson.loads(lines[0])["payload"] == orjson.loads(BODY)
    assert len(printed) == 1 and "mule_account" in printed[0] and "a-1" in printed[0]


async def test_remembers_ids_across_a_restart(tmp_path: Path) -> None:
    first, _ = receiver(tmp_path)
    async with client(first) as http:
        assert (await http.post("/", data=BODY, headers=signed())).status == 200
    second, printed = receiver(tmp_path)
    async with client(second) as http:
        answer = await http.post("/", data=BODY, headers=signed())
        assert await answer.json() == {"duplicate": True}
    assert printed == []


async def test_rejects_forgeries_and_stale_messages() -> None:
    got, printed = receiver()
    async with client(got) as http:
        tampered = BODY.replace(b"0.93", b"0.13")
        cases = [
            (tampered, signed()),
            (BODY, signed(ts=NOW - 301)),
            (BODY, signed(ts=NOW + 301)),
            (BODY, {**signed(), "webhook-id": "al_2"}),
            (BODY, {k: v for k, v in signed().items() if k != "webhook-signature"}),
            (BODY, {**signed(), "webhook-signature": "v1,AAAA"}),
        ]
        for body, headers in cases:
            answer = await http.post("/", data=body, headers=headers)
            assert answer.status == 401, headers
        assert (await (await http.get("/healthz")).json())["rejected"] == len(cases)
    assert printed == []


async def test_a_wider_tolerance_accepts_older_messages() -> None:
    got, _ = receiver(tolerance=3600)
    async with client(got) as http:
        assert (await http.post("/", data=BODY, headers=signed(ts=NOW - 600))).status == 200


async def test_alertmanager_notifications_need_the_token(tmp_path: Path) -> None:
    got, printed = receiver(tmp_path, alertmanager_token=SecretStr("am-secret"))
    notification = {"version": "4", "status": "firing", "groupKey": "{}:{}",
                    "alerts": [{"labels": {"alertname": "FraudmonWorkerDown"}}]}
    async with client(got) as http:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            answer = await http.post("/alertmanager", json=notification, headers=headers)
            assert answer.status == 401
        answer = await http.post("/alertmanager", json=notification,
                                 headers={"Authorization": "Bearer am-secret"})
        assert answer.status == 200
    record = orjson.loads((tmp_path / "got.jsonl").read_bytes())
    assert record["kind"] == "alertmanager" and record["payload"] == notification
    assert printed == ["ALERTMANAGER firing FraudmonWorkerDown"]
