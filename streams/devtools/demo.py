"""``fraudmon demo``: a local broker, a worker, a webhook receiver, the sample, and alerts
printed as they land (from Kafka, and as the receiver verified them)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer

from monitor.config import Settings, load_settings
from monitor.outputs.webhooks.signing import generate_secret
from monitor.tools.samplefile import write_sample
from streams.connection import client_options
from streams.devtools.broker import LocalBroker, free_port
from streams.devtools.produce import produce_file
from streams.topics import ensure_topics


def _alert_line(alert: dict[str, Any]) -> str:
    reasons = ", ".join(f"{r['signal']}={r['value']:g} ({r['typical']})"
                        for r in alert["reasons"][:3])
    return (f"ALERT {alert['severity']:<6} {alert['pattern']:<16} {alert['entity_type']} "
            f"{alert['entity']}  score={alert['score']:.2f}  at {alert['ts']}\n"
            f"      {reasons}")


SECRET_ENV = "FRAUDMON_DEMO_WEBHOOK_SECRET"  # noqa: S105 - a variable name


def _demo_settings(base: Settings, workdir: Path, bootstrap: str,
                   receiver_port: int) -> tuple[Path, Settings]:
    run = f"demo-{int(time.time())}"
    data = base.model_dump(mode="json")
    data["kafka"].update(bootstrap_servers=bootstrap, topic_prefix=f"{run}.", app_id=run)
    data["processing"]["state_dir"] = str(workdir / "state")
    data["web"]["port"] = free_port()
    data["webhooks"].update(allow_loopback_targets=True, backoff_initial_seconds=1.0, receivers=[
        {"name": "demo", "url": f"http://127.0.0.1:{receiver_port}/", "secret_env": SECRET_ENV}])
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, load_settings(path)


def _ready(port: int, path: str = "/readyz") -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _received(store: Path, printed: int) -> int:
    """Print the webhooks the demo receiver verified since the last call."""
    lines = store.read_bytes().splitlines() if store.exists() else []
    for line in lines[printed:]:
        record = orjson.loads(line)
        if record["kind"] == "webhook":
            alert = record["payload"]["data"]
            print(f"WEBHOOK {alert['alert_id']} ({alert['pattern']}) delivered, signature "
                  f"verified by the demo receiver", flush=True)
    return len(lines)


async def _watch(settings: Settings, worker: subprocess.Popen[bytes], expected: int,
                 once: bool, store: Path) -> None:
    decisions, alerts, dead = (settings.kafka.topic(name)
                               for name in ("decisions", "alerts", "dead_letter"))
    consumer = AIOKafkaConsumer(decisions, alerts, dead,
                                **client_options(settings.kafka),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    counts = {decisions: 0, alerts: 0, dead: 0}
    alert_ids: set[str] = set()
    announced = False
    webhooks = 0
    done_at = 0.0
    try:
        while True:
            if worker.poll() is not None:
                raise SystemExit("the worker stopped; see its log")
            webhooks = _received(store, webhooks)
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                counts[tp.topic] += len(messages)
                if tp.topic == alerts:
                    for message in messages:
                        alert = orjson.loads(message.value)
                        alert_ids.add(alert["alert_id"])
                        print(_alert_line(alert), flush=True)
                elif tp.topic == dead:
                    for message in messages:
                        print(f"DEAD-LETTER  {orjson.loads(message.value)['reason']}", flush=True)
            if counts[decisions] >= expected and not announced:
                announced = True
                done_at = time.monotonic()
                print(f"\n{counts[decisions]} decisions, {counts[alerts]} alerts, "
                      f"{counts[dead]} dead letters. ", end="")
                if not once:
                    print("Watching for more; Ctrl-C stops everything.", flush=True)
            # --once ends when the receiver has every alert (or gave up waiting for it).
            if once and announced and (webhooks >= len(alert_ids)
                                       or time.monotonic() - done_at > 30):
                print(f"\n{webhooks} webhooks delivered.")
                return
    finally:
        await consumer.stop()


def run_demo(base: Settings, workdir: Path, port: int = 9092, once: bool = False) -> int:
    """Run the demo until Ctrl-C (or, with ``once``, until every decision is out)."""
    workdir = workdir.resolve()
    if (workdir / "state").exists():
        shutil.rmtree(workdir / "state")
    workdir.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(workdir / "kafka", port=port)
    started_broker = not broker.answers(timeout=2.0)
    print(f"starting Kafka at {broker.bootstrap} ..." if started_broker
          else f"using the Kafka broker already at {broker.bootstrap}", flush=True)
    broker.start()
    receiver_port = free_port()
    config, settings = _demo_settings(base, workdir, broker.bootstrap, receiver_port)
    asyncio.run(ensure_topics(settings))
    sample = workdir / "sample.jsonl"
    total = write_sample(sample, invalid=True)
    valid = sum(1 for line in sample.read_bytes().splitlines() if b'"value"' in line)
    token = os.environ.get(settings.api.token_env) or secrets.token_urlsafe(18)
    # The console's history names who decided: the demo's token is named.
    env = {key: value for key, value in os.environ.items() if key != settings.api.token_env}
    env.update({SECRET_ENV: generate_secret(),
                settings.api.analyst_tokens_env: f"demo-analyst:{token}"})
    store = workdir / "received.jsonl"
    store.unlink(missing_ok=True)
    log = (workdir / "worker.log").open("ab")
    receiver_log = (workdir / "receiver.log").open("ab")
    receiver = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "streams.cli", "webhook-receiver", "--port", str(receiver_port),
         "--secret-env", SECRET_ENV, "--store", str(store)],
        stdout=receiver_log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    command = [sys.executable, "-m", "streams.cli", "worker", "--config",
               str(config)]
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                              start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 90
        while not (_ready(settings.web.port) and _ready(receiver_port, "/healthz")):
            if (worker.poll() is not None or receiver.poll() is not None
                    or time.monotonic() > deadline):
                print(f"the worker or the receiver did not start; see {workdir}/*.log")
                return 1
            time.sleep(0.2)  # polling /readyz
        web = f"http://127.0.0.1:{settings.web.port}"
        print(f"worker ready: {web}/readyz  (log {workdir / 'worker.log'})\n"
              f"  console:  {web}/ui  (sign in with the token {token})\n"
              f"  metrics:  {web}/metrics\n"
              f"  API:      curl -H 'Authorization: Bearer {token}' {web}/alerts\n"
              f"            (also /cases, /entities/<id>, POST /labels, /openapi.json)\n"
              f"  webhooks: signed deliveries to the demo receiver at "
              f"http://127.0.0.1:{receiver_port}/ (log {workdir / 'receiver.log'}, "
              f"store {store})")
        sent, _ = asyncio.run(produce_file(settings, sample))
        print(f"sent {sent} events ({valid} valid, {total - valid} malformed) to topics "
              f"'{settings.kafka.topic('payments')}', '{settings.kafka.topic('loan_disbursals')}'"
              f", '{settings.kafka.topic('labels')}'\n", flush=True)
        asyncio.run(_watch(settings, worker, valid, once, store))
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        for process in (worker, receiver):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        log.close()
        receiver_log.close()
        if started_broker:
            broker.stop()
        print("stopped.")
    return 0
