"""``fraudmon demo``: a local broker, a worker, the sample, and alerts printed as they land."""

from __future__ import annotations

import asyncio
import os
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
from monitor.samplefile import write_sample
from streams.broker import LocalBroker, free_port
from streams.produce import produce_file
from streams.topics import ensure_topics


def _alert_line(alert: dict[str, Any]) -> str:
    reasons = ", ".join(f"{r['signal']}={r['value']:g} ({r['typical']})"
                        for r in alert["reasons"][:3])
    return (f"ALERT {alert['severity']:<6} {alert['pattern']:<16} {alert['entity_type']} "
            f"{alert['entity']}  score={alert['score']:.2f}  at {alert['ts']}\n"
            f"      {reasons}")


def _demo_settings(base: Settings, workdir: Path, bootstrap: str) -> tuple[Path, Settings]:
    run = f"demo-{int(time.time())}"
    data = base.model_dump(mode="json")
    data["kafka"].update(bootstrap_servers=bootstrap, topic_prefix=f"{run}.", app_id=run)
    data["processing"]["state_dir"] = str(workdir / "state")
    data["web"]["port"] = free_port()
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, load_settings(path)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def _watch(settings: Settings, worker: subprocess.Popen[bytes], expected: int,
                 once: bool) -> None:
    decisions, alerts, dead = (settings.kafka.topic(name)
                               for name in ("decisions", "alerts", "dead_letter"))
    consumer = AIOKafkaConsumer(decisions, alerts, dead,
                                bootstrap_servers=settings.kafka.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    counts = {decisions: 0, alerts: 0, dead: 0}
    announced = False
    try:
        while True:
            if worker.poll() is not None:
                raise SystemExit("the worker stopped; see its log")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                counts[tp.topic] += len(messages)
                if tp.topic == alerts:
                    for message in messages:
                        print(_alert_line(orjson.loads(message.value)), flush=True)
                elif tp.topic == dead:
                    for message in messages:
                        print(f"DEAD-LETTER  {orjson.loads(message.value)['reason']}", flush=True)
            if counts[decisions] >= expected and not announced:
                announced = True
                print(f"\n{counts[decisions]} decisions, {counts[alerts]} alerts, "
                      f"{counts[dead]} dead letters. ", end="")
                if once:
                    print()
                    return
                print("Watching for more; Ctrl-C stops everything.", flush=True)
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
    config, settings = _demo_settings(base, workdir, broker.bootstrap)
    asyncio.run(ensure_topics(settings))
    sample = workdir / "sample.jsonl"
    total = write_sample(sample, invalid=True)
    valid = sum(1 for line in sample.read_bytes().splitlines() if b'"value"' in line)
    log = (workdir / "worker.log").open("ab")
    command = [sys.executable, "-m", "monitor.cli", "worker", "--config",
               str(config)]
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not _ready(settings.web.port):
            if worker.poll() is not None or time.monotonic() > deadline:
                print(f"the worker did not become ready; see {workdir / 'worker.log'}")
                return 1
            time.sleep(0.2)  # polling /readyz
        print(f"worker ready: http://127.0.0.1:{settings.web.port}/readyz  "
              f"(log {workdir / 'worker.log'})")
        sent, _ = asyncio.run(produce_file(settings, sample))
        print(f"sent {sent} events ({valid} valid, {total - valid} malformed) to topics "
              f"'{settings.kafka.topic('payments')}', '{settings.kafka.topic('loan_disbursals')}'"
              f", '{settings.kafka.topic('labels')}'\n", flush=True)
        asyncio.run(_watch(settings, worker, valid, once))
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        log.close()
        if started_broker:
            broker.stop()
        print("stopped.")
    return 0
