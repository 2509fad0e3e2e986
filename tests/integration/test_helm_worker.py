"""A worker started from the settings file the Helm chart renders answers the pod's probes.

The chart's default values are rendered with this suite's broker; the ConfigMap's
settings file runs a real `fraudmon worker`, changed only where the pod's filesystem and
network differ from this machine (state directory, bind address, both through the
environment). The startup, liveness and readiness probes of the rendered StatefulSet and
the ServiceMonitor's /metrics then answer 200 on the container port they name, and the
worker stops cleanly on SIGTERM within the pod's termination grace period.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from functools import partial
from pathlib import Path

import pytest
import yaml

from monitor.config import load_settings
from tests.helmchart import objects, only, template, worker
from tests.integration.harness import Worker, free_port, wait_for

pytestmark = pytest.mark.integration


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_a_worker_from_the_rendered_settings_answers_the_pods_probes(
        bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex[:8]
    docs = objects(template(sets=[
        f"kafka.bootstrapServers={bootstrap}", f"web.port={free_port()}",
        f"config.kafka.topic_prefix=helm-{tag}.", f"config.kafka.app_id=helm-{tag}",
        "config.kafka.replication_factor=1", "config.kafka.partitions=2"]))
    config = tmp_path / "config.yaml"
    config.write_text(only(docs, "ConfigMap", "-config")["data"]["config.yaml"])
    # Where this machine is not the pod: the pod's state volume and all-interfaces bind.
    monkeypatch.setenv("FRAUDMON_PROCESSING__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FRAUDMON_WEB__HOST", "127.0.0.1")
    settings = load_settings(config)
    container = worker(docs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    process = Worker(config, settings, tmp_path / "worker.log").start()

    def alive_and_answers(url: str) -> bool:
        assert process.proc is not None
        if process.proc.poll() is not None:
            raise AssertionError(f"worker exited; log:\n{process.tail()}")
        return answers(url)

    try:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            url = f"http://127.0.0.1:{ports[get['port']]}{get['path']}"
            wait_for(partial(alive_and_answers, url), 90, f"{probe} {url}")
        assert answers(f"http://127.0.0.1:{ports['http']}/metrics")
    finally:
        grace = only(docs, "StatefulSet")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"]
        code = process.stop(timeout=grace)
    assert code == 0, process.tail()
    assert yaml.safe_load(config.read_text())["web"]["host"] == "0.0.0.0"  # noqa: S104
