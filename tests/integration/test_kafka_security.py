"""The worker over a secured broker: SASL_SSL with SCRAM-SHA-512 and mutual TLS end to end
(produce, score, alerts, webhooks, the labels API, GET /alerts from the alert store, an
entity lookup), and each misconfiguration a one-line
error and a non-zero exit within 30 s.

The broker is the project's own (:class:`streams.devtools.broker.LocalBroker` with
``secure=True``): a CA and certificates made here with openssl, SCRAM credentials written
at format time. The test reads outputs through the broker's plaintext listener, so that
only the worker's and the producer's clients travel the secured ones.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from monitor.config import Settings, load_settings
from monitor.outputs.webhooks.signing import generate_secret
from monitor.tools.samplefile import write_sample
from streams.devtools.broker import LocalBroker, free_port
from streams.devtools.produce import produce_file
from tests.integration.harness import TopicReader, Worker, make_config, until, wait_for
from tests.integration.peers import WebhookReceiver, http_json

pytestmark = pytest.mark.integration

PASSWORD_ENV = "IT_KAFKA_PASSWORD"
TOKEN = "it-api-token"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(tmp_path_factory.mktemp("kafka-secure"), port=free_port(),
                         controller_port=free_port(), sasl_ssl_port=free_port(),
                         ssl_port=free_port(), secure=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def password(secure_broker: LocalBroker, monkeypatch: pytest.MonkeyPatch) -> str:
    """The SASL password, in the environment variable the configs name."""
    monkeypatch.setenv(PASSWORD_ENV, secure_broker.credentials.password)
    return secure_broker.credentials.password


def sasl_ssl(broker: LocalBroker, **changes: Any) -> dict[str, Any]:
    return {"bootstrap_servers": f"127.0.0.1:{broker.sasl_ssl_port}",
            "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "fraudmon", "sasl_password_env": PASSWORD_ENV,
            "ssl_cafile": str(broker.credentials.ca), **changes}


def mutual_tls(broker: LocalBroker, **changes: Any) -> dict[str, Any]:
    made = broker.credentials
    return {"bootstrap_servers": f"127.0.0.1:{broker.ssl_port}", "security_protocol": "SSL",
            "ssl_cafile": str(made.ca), "ssl_certfile": str(made.client_cert),
            "ssl_keyfile": str(made.client_key), **changes}


def secured_config(tmp_path: Path, broker: LocalBroker, security: dict[str, Any],
                   sections: dict[str, Any] | None = None) -> tuple[Path, Settings, Settings]:
    """A worker config over ``security``; and the same topics over plaintext, to observe."""
    path, plain = make_config(tmp_path, broker.bootstrap, sections=sections)
    data = yaml.safe_load(path.read_text())
    data["kafka"].update(security)
    path.write_text(yaml.safe_dump(data))
    return path, load_settings(path), plain


async def score_sample(tmp_path: Path, settings: Settings, plain: Settings,
                       worker: Worker) -> dict[str, dict[str, Any]]:
    """Produce the sample over the secured listener; every alert, once all is decided."""
    sample = tmp_path / "sample.jsonl"
    write_sample(sample)
    sent, _ = await produce_file(settings, sample)
    decisions, alerts = plain.kafka.topic("decisions"), plain.kafka.topic("alerts")
    async with TopicReader(plain.kafka.bootstrap_servers, [decisions, alerts]) as reader:
        await reader.until(lambda: len({d["event_id"] for d in reader.records[decisions]})
                           >= sent, 90, "a decision for every event")
        await reader.drain()
    assert worker.ready()
    return {alert["alert_id"]: alert for alert in reader.records[alerts]}


async def test_worker_over_sasl_ssl_scram_sha_512_end_to_end(
        tmp_path: Path, secure_broker: LocalBroker, password: str) -> None:
    secret = generate_secret()
    receiver = WebhookReceiver(tmp_path, secret).ready()
    config, settings, plain = secured_config(tmp_path, secure_broker, sasl_ssl(secure_broker), {
        "webhooks": {"allow_loopback_targets": True, "backoff_initial_seconds": 0.2,
                     "receivers": [{"name": "risk", "url": receiver.url + "/",
                                    "secret_env": "IT_SECRET"}]}})
    worker = Worker(config, settings, tmp_path / "worker.log",
                    env={"IT_SECRET": secret, PASSWORD_ENV: password,
                         "FRAUDMON_API_TOKEN": TOKEN})
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        alerts = await score_sample(tmp_path, settings, plain, worker)
        assert len(alerts) >= 3
        # The alert store's feeder reads the alerts topic over SASL_SSL too: GET /alerts
        # pages through every alert, and an entity of one of them answers.
        api = f"http://127.0.0.1:{settings.web.port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}

        def stored() -> set[str]:
            status, page = http_json(f"{api}/alerts?limit=500", headers=auth)
            assert status == 200, page
            return {alert["alert_id"] for alert in page["alerts"]}
        await asyncio.to_thread(wait_for, lambda: stored() == set(alerts), 60,
                                "every alert in the store")
        some = next(iter(alerts.values()))
        status, entity = await asyncio.to_thread(
            http_json, f"{api}/entities/{some['entity']}?entity_type={some['entity_type']}",
            None, auth)
        assert status == 200 and entity["entity"] == some["entity"], entity
        assert entity["answered_by"] == api
        # The webhook lane's consumer and producer are secured clients too.
        await until(lambda: {r["webhook_id"] for r in receiver.records("webhook")}
                    >= set(alerts), 60, "every alert at the webhook receiver")
        # faust's producer (the labels API) carries the credentials.
        label = {"event_id": "it-sec-lbl", "ts": "2026-02-20T08:00:00+08:00",
                 "entity": "mule-7731", "entity_type": "account",
                 "pattern": "mule_account", "confirmed": True}
        status, _ = await asyncio.to_thread(
            http_json, f"http://127.0.0.1:{settings.web.port}/labels", orjson.dumps(label),
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert status == 202
        topics = [plain.kafka.topic(name) for name in ("labels", "decisions", "dead_letter")]
        async with TopicReader(plain.kafka.bootstrap_servers, topics) as reader:
            # On the labels topic (faust's producer), then decided by the worker.
            await reader.until(lambda: any(r.get("event_id") == "it-sec-lbl"
                                           for r in reader.records[topics[1]]), 30,
                               "a decision for the posted label")
        assert any(r.get("event_id") == "it-sec-lbl" for r in reader.records[topics[0]])
    finally:
        worker.stop()
        receiver.stop()
    assert "Unable connect" not in worker.tail()


async def test_worker_over_mutual_tls_end_to_end(
        tmp_path: Path, secure_broker: LocalBroker) -> None:
    config, settings, plain = secured_config(tmp_path, secure_broker,
                                             mutual_tls(secure_broker))
    worker = Worker(config, settings, tmp_path / "worker.log")
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        alerts = await score_sample(tmp_path, settings, plain, worker)
        assert len(alerts) >= 3
    finally:
        worker.stop()


MISCONFIGURED = {
    "wrong password": (lambda b: sasl_ssl(b), {PASSWORD_ENV: "not-the-password"},
                       "SASL authentication failed for user 'fraudmon'"),
    "untrusted certificate": (lambda b: sasl_ssl(b, ssl_cafile=str(b.credentials.other_ca)),
                              None, "TLS certificate not trusted"),
    "wrong host name": (lambda b: sasl_ssl(b, bootstrap_servers=f"localhost:{b.sasl_ssl_port}"),
                        None, "TLS host name check failed"),
    "no client certificate": (lambda b: mutual_tls(b, ssl_certfile=None, ssl_keyfile=None),
                              None, "TLS handshake failed"),
    "plaintext to a TLS listener": (
        lambda b: {"bootstrap_servers": f"127.0.0.1:{b.sasl_ssl_port}"}, None,
        "the broker closed the connection"),
    "password variable unset": (lambda b: sasl_ssl(b, sasl_password_env="IT_UNSET_VARIABLE"),
                                None, "kafka.sasl_password_env: environment variable"),
}


@pytest.mark.parametrize("case", sorted(MISCONFIGURED))
def test_a_misconfiguration_is_one_line_and_a_fast_exit(
        case: str, tmp_path: Path, secure_broker: LocalBroker, password: str) -> None:
    security, env, expected = MISCONFIGURED[case]
    config, _, _ = secured_config(tmp_path, secure_broker, security(secure_broker))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker", "--config", str(config)],
        env={**os.environ, PASSWORD_ENV: password, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert elapsed < 30, f"{case}: took {elapsed:.0f} s"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert lines and expected in lines[-1], done.stderr[-2000:]
    assert lines[-1].startswith("fraudmon: error: "), lines[-1]
