"""The compiled hot path (monitor.runtime.native): used when fresh, identical to the sources.

``make test`` builds it first, so these tests check the build the suite itself ran on,
that it decides exactly as the pure-Python sources do, and that checkpoints written by
either build restore in the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

import monitor.state.shard
from monitor.runtime import native
from monitor.tools.simulator import SimParams, simulate
from monitor.tools.simulator.log import write_jsonl

RUNNER = Path(__file__).with_name("native_run.py")
WALL_CLOCK = ("processed_at", "created_at")


def run(events: Path, out: Path, *extra: str, pure: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDMON_")}
    if pure:
        env[native.PURE_ENV] = "1"
    result = subprocess.run([sys.executable, str(RUNNER), str(events), str(out), *extra],
                            env=env, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"compiled={not pure}" in result.stdout, result.stdout + result.stderr


def outputs(*dirs: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for name in ("decisions.jsonl", "alerts.jsonl"):
        records = found.setdefault(name, [])
        for directory in dirs:
            for line in (directory / name).read_bytes().splitlines():
                record = orjson.loads(line)
                for key in WALL_CLOCK:
                    record.pop(key, None)
                records.append(record)
    return found


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("native") / "events.jsonl"
    write_jsonl(simulate(SimParams(seed=11, days=60, people=500)).records, path)
    return path


def test_the_suite_runs_on_a_fresh_compiled_build() -> None:
    fresh, reason = native.status()
    assert fresh, f"{reason}: `make test` builds it first (`make native`)"
    assert native.compiled()
    assert not monitor.state.shard.__file__.endswith(".py")


def test_compiled_and_pure_builds_decide_alike(traffic: Path, tmp_path: Path) -> None:
    run(traffic, tmp_path / "compiled", pure=False)
    run(traffic, tmp_path / "pure", pure=True)
    compiled, pure = outputs(tmp_path / "compiled"), outputs(tmp_path / "pure")
    assert len(compiled["decisions.jsonl"]) > 10_000
    assert compiled["alerts.jsonl"], "the traffic should raise alerts"
    assert compiled == pure


@pytest.mark.parametrize("writer_pure", [True, False], ids=["pure-to-compiled",
                                                            "compiled-to-pure"])
def test_a_checkpoint_of_one_build_restores_in_the_other(traffic: Path, tmp_path: Path,
                                                         writer_pure: bool) -> None:
    split = str(len(traffic.read_bytes().splitlines()) // 2)
    run(traffic, tmp_path / "whole", pure=not writer_pure)
    run(traffic, tmp_path / "first", "--split", split, "--save", str(tmp_path / "ckpt"),
        pure=writer_pure)
    run(traffic, tmp_path / "rest", "--split", split, "--restore", str(tmp_path / "ckpt"),
        pure=not writer_pure)
    assert outputs(tmp_path / "first", tmp_path / "rest") == outputs(tmp_path / "whole")


def test_a_changed_source_makes_the_build_stale(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "native.json"
    recorded = json.loads(native.MANIFEST.read_text()) if native.MANIFEST.exists() else {}
    sources = dict(recorded.get("sources", {}))
    sources["monitor.detection.features.windows"] = "0" * 64
    manifest.write_text(json.dumps({"sources": sources}))
    monkeypatch.setattr(native, "MANIFEST", manifest)
    fresh, reason = native.status()
    assert not fresh
    assert "monitor/detection/features/windows.py changed" in reason


def test_stale_or_disabled_builds_resolve_to_the_sources() -> None:
    spec = native._PreferSources().find_spec("monitor.state.shard", None)
    assert spec is not None and spec.origin == str(native.source_of("monitor.state.shard"))
    assert native._PreferSources().find_spec("monitor.config", None) is None
