"""Helm for the tests: the binary `make helm` builds, `helm template` of the chart, and
the rendered objects (tests/unit/test_helm_chart.py, tests/integration/test_helm_worker.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "fraud-monitor"
RELEASE, NAMESPACE = "fraudmon", "fraud-monitor"


def helm_binary() -> Path:
    version = re.search(r"^HELM_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert version is not None, "the Makefile names no HELM_VERSION"
    path = Path.home() / ".cache" / "fraud-monitor" / f"helm-{version[1]}" / "helm"
    assert path.is_file(), f"{path} is missing: run `make helm`"
    return path


def kubecheck_binary() -> Path:
    path = Path(sys.executable).parent / "kubecheck"
    assert path.is_file(), f"{path} is missing: run `make kubecheck`"
    return path


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=60)


def template(values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += [arg for path in values for arg in ("--values", str(path))]
    args += [arg for item in sets for arg in ("--set", item)]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def only(rendered: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [o for o in rendered if o["kind"] == kind
             and o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{len(found)} {kind} objects named *{suffix}"
    return found[0]


def kinds(rendered: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in rendered)


def worker(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = only(rendered, "StatefulSet")["spec"]["template"]["spec"][
        "containers"][0]
    return container
