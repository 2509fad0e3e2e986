"""The evaluator: recall, precision, delay and look-alike figures on hand-made cases."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.errors import ReplayInputError
from monitor.tools.evaluate import (
    add_arguments,
    as_json,
    evaluate,
    load_alerts,
    load_truth,
    main_evaluate,
    parse_truth,
    table,
)
from monitor.tools.simulator import SimParams, simulate
from monitor.tools.simulator.truth import write_truth

T0 = "2026-02-01T00:00:00+08:00"


def truth_doc() -> dict[str, Any]:
    def entity(entity_type: str, entity: str, start: str | None = T0) -> dict[str, Any]:
        return {"entity_type": entity_type, "entity": entity, "start": start, "params": {}}

    return {
        "format": "fraudmon-truth/1",
        "patterns": {
            "mule_account": {"positives": [entity("account", "m1"), entity("account", "m2"),
                                           entity("account", "m3"), entity("account", "m4")]},
            "rollover_loan": {"positives": [
                entity("borrower", "b1", "2026-02-02T00:00:00+08:00")]},
            "structuring": {"positives": []},
        },
        "lookalikes": {"merchant": [{"entity_type": "account", "entity": "shop1"},
                                    {"entity_type": "account", "entity": "shop2"}],
                       "household_device": [{"entity_type": "device", "entity": "tablet"}]},
        "entities": {"account": 1500, "borrower": 400, "device": 100},
    }


def alert(pattern: str, entity_type: str, entity: str, ts: str) -> dict[str, Any]:
    return {"alert_id": f"al_{pattern}_{entity}_{ts}", "pattern": pattern,
            "entity_type": entity_type, "entity": entity, "ts": ts, "score": 0.9}


ALERTS = [
    alert("mule_account", "account", "m1", "2026-02-01T02:00:00+08:00"),   # 2 h
    alert("mule_account", "account", "m1", "2026-02-01T01:00:00+08:00"),   # earlier: 1 h
    alert("mule_account", "account", "m2", "2026-02-01T05:00:00Z"),        # 13 h
    alert("mule_account", "account", "m3", "2026-02-02T00:00:00+08:00"),   # 24 h
    alert("mule_account", "account", "shop1", "2026-02-01T09:00:00+08:00"),  # false alarm
    alert("mule_account", "device", "m4", "2026-02-01T09:00:00+08:00"),    # wrong type
    alert("rollover_loan", "borrower", "m1", "2026-02-03T00:00:00+08:00"),  # wrong pattern
    alert("rollover_loan", "borrower", "b1", "2026-02-01T12:00:00+08:00"),  # before start
    alert("fake_account", "device", "tablet", "2026-02-05T00:00:00+08:00"),
]


def write(tmp_path: Path, truth: dict[str, Any], alerts: list[dict[str, Any]]) -> tuple[Path, Path]:
    truth_path, alerts_path = tmp_path / "truth.json", tmp_path / "alerts.jsonl"
    truth_path.write_bytes(orjson.dumps(truth))
    alerts_path.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    return truth_path, alerts_path


def figures(tmp_path: Path, alerts: list[dict[str, Any]] = ALERTS) -> dict[str, Any]:
    truth_path, alerts_path = write(tmp_path, truth_doc(), alerts)
    return as_json(evaluate(load_truth(truth_path), load_alerts(alerts_path)))


def test_recall_precision_and_median_delay_per_pattern(tmp_path: Path) -> None:
    mule = figures(tmp_path)["patterns"]["mule_account"]
    assert mule["positives"] == 4 and mule["detected"] == 3 and mule["recall"] == 0.75
    # m1, m2, m3, shop1 (account) and m4 (device) were alerted: 3 of 5 are right.
    assert mule["alerted"] == 5 and mule["precision"] == 0.6
    assert mule["median_delay_hours"] == 13.0        # of 1, 13 and 24 h: first alerts count
    assert mule["alerts"] == 6
    assert mule["alerts_per_1000_entities"] == 3.0   # 6 alerts over 2,000 entities


def test_a_pattern_hit_counts_only_for_its_own_pattern(tmp_path: Path) -> None:
    result = figures(tmp_path)
    rollover = result["patterns"]["rollover_loan"]
    assert rollover["detected"] == 1 and rollover["precision"] == 0.5
    assert rollover["median_delay_hours"] == -12.0   # alerted before the start: negative
    structuring = result["patterns"]["structuring"]
    assert structuring["recall"] is None and structuring["precision"] is None
    fake = result["patterns"]["fake_account"]        # in the alerts only
    assert fake["positives"] == 0 and fake["precision"] == 0.0
    everything = result["all"]
    assert everything["positives"] == 5 and everything["detected"] == 4
    assert everything["alerted"] == 8 and everything["precision"] == 0.5
    assert everything["alerts"] == len(ALERTS)


def test_lookalikes_alerted_by_any_pattern(tmp_path: Path) -> None:
    lookalikes = figures(tmp_path)["lookalikes"]
    assert (lookalikes["alerted"], lookalikes["total"]) == (2, 3)
    assert lookalikes["by_kind"]["merchant"] == {"alerted": 1, "total": 2, "share": 0.5}
    assert lookalikes["by_kind"]["household_device"]["share"] == 1.0


def test_no_alerts_means_zero_recall_and_no_precision(tmp_path: Path) -> None:
    result = figures(tmp_path, [])
    assert result["patterns"]["mule_account"]["recall"] == 0.0
    assert result["patterns"]["mule_account"]["precision"] is None
    assert result["lookalikes"]["share"] == 0.0


def test_the_command_prints_a_table_and_one_json_line(tmp_path: Path) -> None:
    truth_path, alerts_path = write(tmp_path, truth_doc(), ALERTS)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main_evaluate(parser.parse_args(["--truth", str(truth_path),
                                                "--alerts", str(alerts_path)])) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["pattern", "positives", "detected", "recall"]
    assert any(line.startswith("mule_account") and "75.0%" in line and "60.0%" in line
               for line in lines)
    assert any("merchant" in line and "50.0%" in line for line in lines)
    assert orjson.loads(lines[-1]) == figures(tmp_path)


@pytest.mark.parametrize(("line", "message"), [
    (b"{not json", "not JSON"),
    (b'{"pattern": "structuring", "entity": "a"}', "needs pattern"),
    (b'{"pattern": "structuring", "entity": "a", "entity_type": "account", "ts": "soon"}',
     "not an RFC 3339"),
    (b'{"pattern": "structuring", "entity": "a", "entity_type": "account",'
     b' "ts": "2026-01-01T00:00:00"}', "no UTC offset"),
])
def test_bad_alert_lines_are_one_line_errors_with_their_line_number(
        tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(orjson.dumps(ALERTS[0]) + b"\n\n" + line + b"\n")
    with pytest.raises(ReplayInputError, match=message) as caught:
        load_alerts(path)
    assert str(caught.value).startswith(f"{path}:3")


def test_bad_truth_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayInputError, match="cannot read"):
        load_truth(tmp_path / "missing.json")
    with pytest.raises(ReplayInputError, match="not a truth document"):
        parse_truth({"lookalikes": {}})
    with pytest.raises(ReplayInputError, match="entity_type"):
        parse_truth({"patterns": {"structuring": {"positives": [{"entity": "a"}]}}})


def test_simulator_truth_reads_back(tmp_path: Path) -> None:
    run = simulate(SimParams(seed=4, days=40, people=200))
    write_truth(run.truth, tmp_path / "truth.json")
    truth = load_truth(tmp_path / "truth.json")
    for pattern, body in run.truth["patterns"].items():
        assert len(truth.positives[pattern]) == len(body["positives"])
    assert truth.entity_total == sum(run.truth["entities"].values())
    report = evaluate(truth, [])
    assert "entities:" in table(report) and report.lookalikes_total > 0
