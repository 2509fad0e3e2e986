"""The domain package never imports Faust: checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Imports the named packages and every submodule under them, then reports what it
# imported and which faust modules ended up in sys.modules.
PROBE = """
import importlib, json, pkgutil, sys
imported = []
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
faust = sorted(m for m in sys.modules if m == "faust" or m.startswith("faust."))
print(json.dumps({"imported": imported, "faust": faust}))
"""


def probe(*packages: str) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FRAUDMON_")}
    done = subprocess.run([sys.executable, "-c", PROBE, *packages], capture_output=True,
                          text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_monitor_and_all_its_submodules_do_not_import_faust() -> None:
    result = probe("monitor")
    assert {"monitor", "monitor.contract.events", "monitor.state.shard", "monitor.tools.replay",
            "monitor.detection.entities", "monitor.detection.entities.borrower",
            } <= set(result["imported"])
    assert result["faust"] == []


def test_the_probe_does_see_faust_when_it_is_imported() -> None:
    # Control: the Faust app module imports Faust, and the probe notices.
    result = probe("streams.app")
    assert "faust" in result["faust"]
