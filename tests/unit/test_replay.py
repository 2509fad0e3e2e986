"""Offline replay (monitor.tools.replay, ``fraudmon replay``): deterministic, complete, robust."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.config import Settings
from monitor.processing.engine import Engine
from monitor.tools.replay import replay
from monitor.tools.samplefile import write_sample
from streams.cli import main

WALL_CLOCK = ("processed_at", "created_at", "dead_lettered_at")
OUTPUTS = ("decisions.jsonl", "alerts.jsonl", "dead-letter.jsonl")
SUMMARY = re.compile(r"replay: (\d+) events, (\d+) decisions, (\d+) alerts, "
                     r"(\d+) dead letters, [\d,]+ events/s")
TS = "2026-01-05T10:00:00+08:00"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("FRAUDMON_")}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FRAUDMON_"):
            monkeypatch.delenv(name)


def records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def comparable(out_dir: Path) -> dict[str, list[bytes]]:
    """Each output file as JSON lines with the wall-clock fields dropped."""
    found = {}
    for name in OUTPUTS:
        lines = []
        for record in records(out_dir / name):
            for key in WALL_CLOCK:
                record.pop(key, None)
            lines.append(orjson.dumps(record))
        found[name] = lines
    return found


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo sample with contract violations, replayed once through the CLI."""
    base = tmp_path_factory.mktemp("demo")
    sample = base / "sample.jsonl"
    write_sample(sample, invalid=True)
    out_dir = base / "out"
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper().startswith("FRAUDMON_"):
                patch.delenv(name)
        code, stdout, stderr = run_cli(["replay", str(sample), "--out", str(out_dir)])
    lines = [(number, line) for number, line in
             enumerate(sample.read_bytes().splitlines(), start=1) if line.strip()]
    return {"sample": sample, "out": out_dir, "code": code, "stdout": stdout,
            "stderr": stderr, "lines": [(n, orjson.loads(line), line) for n, line in lines]}


# --- the demo sample ----------------------------------------------------------------


def test_demo_replay_succeeds_and_prints_the_summary(demo: dict[str, Any]) -> None:
    assert demo["code"] == 0
    assert demo["stderr"] == ""
    printed = demo["stdout"].strip().splitlines()
    assert len(printed) == 1
    match = SUMMARY.fullmatch(printed[0])
    assert match, printed[0]
    events, decisions, alerts, dead = map(int, match.groups())
    assert events == len(demo["lines"])
    assert decisions == len(records(demo["out"] / "decisions.jsonl"))
    assert alerts == len(records(demo["out"] / "alerts.jsonl"))
    assert dead == len(records(demo["out"] / "dead-letter.jsonl"))


def test_one_decision_per_valid_event_in_input_order(demo: dict[str, Any]) -> None:
    expected = [record["value"]["event_id"] for _, record, _ in demo["lines"]
                if "value" in record]
    decisions = records(demo["out"] / "decisions.jsonl")
    assert [d["event_id"] for d in decisions] == expected
    assert len(expected) > 700
    topics = {record["value"]["event_id"]: record["topic"] for _, record, _ in demo["lines"]
              if "value" in record}
    for decision in decisions:
        assert decision["topic"] == topics[decision["event_id"]]
        assert decision["model_version"].startswith("fm1-")
        assert decision["processed_at"].endswith("Z")


EXPECTED_REASON = {  # a piece of each invalid message -> a word its reason must contain
    "not json at all": "JSON",
    '["an", "array"]': "object",
    "yesterday": "'ts'",
    '"amount": -5': "amount",
    "telepathy": "channel",
}


def test_invalid_lines_are_dead_lettered_with_reason_and_line(demo: dict[str, Any]) -> None:
    invalid = [(number, record, line) for number, record, line in demo["lines"]
               if "raw" in record]
    dead = records(demo["out"] / "dead-letter.jsonl")
    assert len(invalid) == len(EXPECTED_REASON)
    assert [d["source"]["offset"] for d in dead] == [number for number, _, _ in invalid]
    for letter, (_, record, line) in zip(dead, invalid, strict=True):
        assert letter["original"] == line.decode()
        assert letter["original_encoding"] == "utf-8"
        assert letter["source"]["topic"] == str(demo["sample"])
        assert "\n" not in letter["reason"]
        word = next(word for piece, word in EXPECTED_REASON.items() if piece in record["raw"])
        assert word in letter["reason"], (record["raw"], letter["reason"])


@pytest.mark.parametrize(("pattern", "entity"), [("rollover_loan", "borrower-0042"),
                                                 ("mule_account", "mule-7731"),
                                                 ("structuring", "acct-smurf-01")])
def test_demo_raises_the_planted_alerts(demo: dict[str, Any], pattern: str,
                                        entity: str) -> None:
    alerts = records(demo["out"] / "alerts.jsonl")
    found = [a for a in alerts if a["pattern"] == pattern and a["entity"] == entity]
    assert found, f"no {pattern} alert for {entity}"
    for alert in found:
        assert alert["score"] >= Settings().detection.alert_threshold
        assert alert["severity"] in {"low", "medium", "high"}
        assert alert["reasons"]
        assert alert["evidence"]


def test_alerts_are_unique_and_decisions_point_at_them(demo: dict[str, Any]) -> None:
    alerts = records(demo["out"] / "alerts.jsonl")
    ids = [a["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids))
    referenced = {i for d in records(demo["out"] / "decisions.jsonl") for i in d["alert_ids"]}
    assert referenced
    assert referenced <= set(ids)


def test_ordinary_traffic_raises_no_alerts(demo: dict[str, Any]) -> None:
    ordinary = re.compile(r"(acct-person-|merchant-|employer-|person-)\d+")
    flagged = {a["entity"] for a in records(demo["out"] / "alerts.jsonl")}
    assert not {entity for entity in flagged if ordinary.fullmatch(entity)}


# --- determinism --------------------------------------------------------------------


def test_replay_function_gives_the_same_output_as_the_cli(demo: dict[str, Any],
                                                         tmp_path: Path) -> None:
    summary = replay(demo["sample"], tmp_path, Engine(Settings()))
    assert comparable(tmp_path) == comparable(demo["out"])
    assert summary.dead_letters == len(EXPECTED_REASON)
    assert summary.events == len(demo["lines"])


def test_replay_in_another_process_is_byte_identical(demo: dict[str, Any],
                                                    tmp_path: Path) -> None:
    # Another interpreter with another hash seed: nothing may depend on set or dict order.
    env = {**clean_env(), "PYTHONHASHSEED": "4242"}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", str(demo["sample"]), "--out",
         str(tmp_path)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    again = comparable(tmp_path)
    first = comparable(demo["out"])
    assert again == first
    assert all(first[name] for name in OUTPUTS)


def test_rerun_into_the_same_directory_replaces_the_output(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(r) for r in small_batch()[:2]) + b"\n")
    out_dir = tmp_path / "out"
    replay(source, out_dir, Engine(Settings()))
    first = comparable(out_dir)
    replay(source, out_dir, Engine(Settings()))
    assert comparable(out_dir) == first
    assert len(first["decisions.jsonl"]) == 2


# --- bad input ----------------------------------------------------------------------


def payment(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "ts": TS, "payer": "a", "payee": "b", "amount": 10,
            "channel": "card", **extra}


def small_batch() -> list[Any]:
    return [
        {"topic": "payments", "key": "a", "value": payment("p1")},
        {"topic": "payments", "key": "a", "value": payment("p2")},
    ]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    raw_ok = orjson.dumps(payment("p3")).decode()
    return write_lines(tmp_path / "messy.jsonl", [
        orjson.dumps({"topic": "payments", "key": "a", "value": payment("p1")}),   # 1
        b"this is not json",                                                        # 2
        orjson.dumps({"topic": "transfers", "value": payment("x1")}),               # 3
        b"",                                                                        # 4
        orjson.dumps({"topic": "payments", "value": payment("p2")}),                # 5
        orjson.dumps({"value": payment("x2")}),                                     # 6
        b"[1, 2]",                                                                  # 7
        orjson.dumps({"topic": "payments", "raw": raw_ok}),                         # 8
        orjson.dumps({"topic": "labels", "value": "just text"}),                    # 9
        b"\xff\xfe{}",                                                              # 10
        orjson.dumps({"topic": "payments", "value": payment("x3", amount=0)}),      # 11
        b"   ",                                                                     # 12
        orjson.dumps({"topic": "loan-disbursals", "value": {"event_id": "x4"}}),    # 13
    ])


def test_bad_lines_are_dead_lettered_and_replay_goes_on(messy: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    summary = replay(messy, out_dir, Engine(Settings()))
    decisions = records(out_dir / "decisions.jsonl")
    assert [d["event_id"] for d in decisions] == ["p1", "p2", "p3"]
    dead = records(out_dir / "dead-letter.jsonl")
    assert [d["source"]["offset"] for d in dead] == [2, 3, 6, 7, 9, 10, 11, 13]
    reasons = {d["source"]["offset"]: d["reason"] for d in dead}
    assert "JSON" in reasons[2]
    assert "transfers" in reasons[3]
    assert "None" in reasons[6]
    assert "object" in reasons[7]
    assert "object" in reasons[9]
    assert "UTF-8" in reasons[10]
    assert "amount" in reasons[11]
    assert "missing field" in reasons[13]
    binary = next(d for d in dead if d["source"]["offset"] == 10)
    assert binary["original_encoding"] == "hex"
    assert bytes.fromhex(binary["original"]) == b"\xff\xfe{}"
    assert (summary.events, summary.decisions, summary.dead_letters) == (11, 3, 8)


def test_cli_summary_counts_the_messy_file(messy: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(messy), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    match = SUMMARY.fullmatch(captured.out.strip())
    assert match, captured.out
    assert tuple(map(int, match.groups())) == (11, 3, 0, 8)


def test_oversize_line_is_dead_lettered(tmp_path: Path) -> None:
    big = orjson.dumps({"topic": "payments", "value": payment("big", note="x" * 600)})
    small = orjson.dumps({"topic": "payments", "value": payment("small")})
    source = write_lines(tmp_path / "in.jsonl", [big, small])
    summary = replay(source, tmp_path / "out", Engine(Settings()), max_bytes=400)
    dead = records(tmp_path / "out" / "dead-letter.jsonl")
    assert [d["source"]["offset"] for d in dead] == [1]
    assert "400" in dead[0]["reason"]
    assert summary.decisions == 1


def test_missing_input_file_is_a_one_line_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.jsonl"
    assert main(["replay", str(missing), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fraudmon: error: ")
    assert str(missing) in lines[0]
    assert "replay:" not in captured.out


def test_bad_config_stops_replay_with_a_one_line_error(
        messy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("kafka:\n  partitions: 0\n", encoding="utf-8")
    code = main(["replay", str(messy), "--out", str(tmp_path / "out"), "--config", str(config)])
    assert code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "kafka.partitions" in lines[0]


def test_unusable_output_directory_is_a_one_line_error(
        messy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_directory = tmp_path / "taken"
    not_a_directory.write_text("a file, not a directory", encoding="utf-8")
    assert main(["replay", str(messy), "--out", str(not_a_directory)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert str(not_a_directory) in lines[0]

