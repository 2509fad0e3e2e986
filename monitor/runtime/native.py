"""The hot path compiled to C with mypyc, and the guard that never runs it stale.

The per-event code (entity state, windows, sketch, routing, shard, policy, scoring, the
replay loop, the worker's per-view loop, routed envelopes, per-decision metric counts)
is plain, strictly typed Python. ``fraudmon native build`` (run by ``make``)
compiles those modules with mypyc into extension modules next to their sources; the
import system then prefers them to the ``.py`` files, for about twice the throughput.
Behaviour is the same: the suite runs against the compiled build, and a test replays
the same traffic with and without it and compares every decision. One difference to
keep in mind: a compiled function checks its arguments' types at run time, so a value
the annotations do not allow raises ``TypeError`` where the source might have gone on;
code that reads untrusted input checks types before it passes them on.

A build records the SHA-256 of every source it compiled. When ``monitor`` is imported,
:func:`install_guard` compares them with the sources on disk: if any changed since (or
``FRAUDMON_PURE=1`` is set) none of the compiled modules is used and the sources run
instead, with one warning. Compiled modules call each other directly, so it is all of
them or none. Without a C compiler the build reports why and everything runs as pure
Python, only slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # monitor/, above runtime/
ROOT = PACKAGE_DIR.parent
MANIFEST = PACKAGE_DIR / "native.json"
GROUP = "monitor.native_core"
"""The shared library every compiled module links to (``monitor/native_core__mypyc*``)."""
PURE_ENV = "FRAUDMON_PURE"

MODULES: tuple[str, ...] = (
    "monitor.contract.events",
    "monitor.detection.features.windows",
    "monitor.detection.features.sketch",
    "monitor.detection.features.scaling",
    "monitor.detection.models.halfspace",
    "monitor.detection.models.anomaly",
    "monitor.detection.entities.base",
    "monitor.detection.entities.account",
    "monitor.detection.entities.borrower",
    "monitor.detection.entities.lender",
    "monitor.detection.entities.device",
    "monitor.routing.partitioner",
    "monitor.routing.views",
    "monitor.contract.records",
    "monitor.detection.policy",
    "monitor.state.dedup",
    "monitor.state.snapshot",
    "monitor.state.shard",
    "monitor.processing.engine",
    "monitor.tools.replay",
    "monitor.routing.envelope",
    "monitor.processing.tally",
    "monitor.processing.folding",
)
"""Compiled modules. Each must type-check under mypy strict, and its pickled classes
must use :mod:`monitor.runtime.slotstate` so checkpoints read the same either way."""

_MYPY_CONFIG = """\
[mypy]
follow_imports = skip
ignore_missing_imports = True

[mypy-monitor.*]
follow_imports = silent
"""
"""Third-party packages are not analysed (their types are ``Any`` to the compiler): a
full analysis of pydantic and river takes minutes and buys nothing here. Type errors
are the linter's job (``mypy`` strict in ``make lint``), not the build's."""


def source_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _artifacts() -> list[Path]:
    """Every compiled extension module under the package, built by us or not."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [p for p in PACKAGE_DIR.rglob("*") if p.name.endswith(suffixes)]


def status() -> tuple[bool, str]:
    """Whether the compiled build is present and matches the sources, and why not."""
    if not MANIFEST.exists():
        return False, "no compiled build (run `make native`)"
    try:
        recorded = json.loads(MANIFEST.read_text())["sources"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"unreadable {MANIFEST.name}: {exc}"
    for module in MODULES:
        path = source_of(module)
        if recorded.get(module) != (_digest(path) if path.exists() else None):
            return False, f"{path.relative_to(ROOT)} changed since the compiled build"
    if set(recorded) != set(MODULES):
        return False, "the list of compiled modules changed since the build"
    return True, "compiled build matches the sources"


class _PreferSources(importlib.abc.MetaPathFinder):
    """Resolves the compiled modules to their ``.py`` sources, ahead of the extensions."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def install_guard() -> bool:
    """Use the compiled modules only when they are fresh; returns whether they are used."""
    if not _artifacts():
        return False
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        reason = f"{PURE_ENV} is set"
    else:
        fresh, reason = status()
        if fresh:
            return True
        warnings.warn(f"fraud-monitor runs as pure Python (slower): {reason}; rebuild with "
                      "`make native` or `fraudmon native build`",
                      RuntimeWarning, stacklevel=2)
    if not any(isinstance(finder, _PreferSources) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PreferSources())
    logger.debug("compiled modules not used: %s", reason)
    return False


def compiled() -> bool:
    """Whether the hot path in this process runs compiled (for reports and benchmarks)."""
    module = sys.modules.get("monitor.state.shard")
    return module is not None and not str(getattr(module, "__file__", "")).endswith(".py")


def clean() -> None:
    """Remove the compiled build: the sources run as they are."""
    for path in _artifacts():
        path.unlink(missing_ok=True)
    MANIFEST.unlink(missing_ok=True)


def build(*, force: bool = False) -> bool:
    """Compile :data:`MODULES` in place unless the build is fresh; False when it failed."""
    if not force and status()[0] and _artifacts():
        print("native build: up to date")
        return True
    clean()
    sources = {module: _digest(source_of(module)) for module in MODULES}
    with tempfile.TemporaryDirectory(prefix="fraudmon-native-") as work:
        config = Path(work) / "mypy.ini"
        config.write_text(_MYPY_CONFIG)
        try:
            _compile(Path(work), config)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - no compiler, a type error, ...
            clean()
            print(f"native build failed, running as pure Python: {exc}", file=sys.stderr)
            return False
    if sources != {module: _digest(source_of(module)) for module in MODULES}:
        clean()  # a source changed while it was being compiled
        print("native build skipped: sources changed during the build", file=sys.stderr)
        return False
    MANIFEST.write_text(json.dumps({"sources": sources}, indent=1) + "\n")
    print(f"native build: {len(MODULES)} modules compiled")
    return True


def _compile(work: Path, config: Path) -> None:
    from mypyc.build import mypycify  # a build-time dependency (the dev extra's mypy)
    from setuptools import Distribution  # type: ignore[import-untyped]

    paths = [str(source_of(module).relative_to(ROOT)) for module in MODULES]
    with contextlib.chdir(ROOT):
        extensions = mypycify([f"--config-file={config}", *paths], opt_level="3",
                              group_name=GROUP, target_dir=str(work / "c"))
        dist = Distribution({"name": "fraud-monitor-native", "ext_modules": extensions})
        dist.verbose = 0
        command = dist.get_command_obj("build_ext")
        command.inplace = True
        command.build_temp = str(work / "temp")
        command.build_lib = str(work / "lib")
        dist.run_command("build_ext")
