"""The layout's rules (docs/architecture.md), checked over every module's imports.

Imports are read from the source with :mod:`ast`, including those inside functions, so a
lazy import cannot hide a dependency. Each room of ``monitor`` may import only the rooms
below it; ``monitor`` never imports ``streams``, Faust or aiokafka; inside ``streams``
only the command line imports the development tooling.
"""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

from monitor.contract.vocabulary import ENTITY_TYPES, PATTERNS

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("monitor.errors", "monitor.runtime"),
    ("monitor.contract",),
    ("monitor.config",),
    ("monitor.routing",),
    ("monitor.detection",),
    ("monitor.state",),
    ("monitor.processing",),
    ("monitor.outputs",),
    ("monitor.interfaces",),
    ("monitor.tools",),
)
"""The rooms of ``monitor``, lowest first: a room imports only rooms of lower layers."""
THIRD_PARTY_ADAPTERS = ("faust", "mode", "aiokafka", "kafka")


def room(module: str) -> str:
    """The room a dotted module name belongs to (``monitor.state.shard`` ->
    ``monitor.state``; ``streams.devtools.bench`` -> ``streams.devtools``)."""
    parts = module.split(".")
    if parts[0] == "streams":
        return "streams." + parts[1] if len(parts) > 1 and parts[1] in ("devtools", "cli") \
            else "streams"
    return ".".join(parts[:2])


def layer(module: str) -> int:
    for index, rooms in enumerate(LAYERS):
        if room(module) in rooms:
            return index
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted([*ROOT.joinpath("monitor").rglob("*.py"),
                        *ROOT.joinpath("streams").rglob("*.py")]):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    """Every absolute module a file imports, ``from a import b`` counted as ``a`` and
    ``a.b`` (b may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations() -> list[str]:
    known = modules()
    found = []
    for name, path in known.items():
        for target in sorted(imports(path)):
            top = target.split(".")[0]
            if name == "monitor" or name.startswith("monitor."):
                if top == "streams" or top in THIRD_PARTY_ADAPTERS:
                    found.append(f"{name} imports {target}: the domain never imports adapters")
                elif top == "monitor" and target != "monitor" and name != "monitor" and (
                        room(target) != room(name) and layer(target) >= layer(name)):
                    found.append(f"{name} imports {target}: a room imports only lower layers")
            elif top == "streams" and room(target) in ("streams.devtools", "streams.cli") and (
                    room(name) == "streams"):
                found.append(f"{name} imports {target}: only the command line uses devtools")
    return found


def test_every_module_keeps_the_import_rules() -> None:
    assert violations() == []


def test_every_room_of_monitor_has_a_layer() -> None:
    for name in modules():
        if name.startswith("monitor."):
            layer(name)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    # Control: an import the rules forbid is reported.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from streams.app import create_app\n")
    assert "streams.app" in imports(bad)
    assert layer("monitor.contract.events") < layer("monitor.state.shard")


def test_one_entity_family_per_entity_type_and_patterns_from_one_vocabulary() -> None:
    from monitor.detection.entities import FAMILIES
    from monitor.tools.simulator import truth

    assert sorted(FAMILIES) == sorted(ENTITY_TYPES)
    assert truth.PATTERNS is PATTERNS
    assert {truth.ROLLOVER, truth.PREDATORY, truth.MULE, truth.STRUCTURING,
            truth.FAKE} == set(PATTERNS)


DOCTESTED = sorted(name for name, path in modules().items() if ">>>" in path.read_text())


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name: str) -> None:
    """The ``>>>`` examples of a module, run in its namespace (compiled or not)."""
    module = importlib.import_module(name)
    path = modules()[name]
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=True)
            if text and ">>>" in text:
                test = parser.get_doctest(text, dict(vars(module)), name, str(path),
                                          getattr(node, "lineno", 0))
                examples += len(test.examples)
                runner.run(test)
    assert examples
    assert runner.failures == 0, f"{runner.failures} example(s) of {name} failed"
