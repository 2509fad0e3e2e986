"""CSV importers: column mappings, time conversion, bad rows, and truth from labels."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contract.events import from_dict
from monitor.errors import ConfigError, ReplayInputError
from monitor.tools.importers import (
    Mapping,
    RowError,
    add_arguments,
    iter_csv_events,
    load_mapping,
    main_import_csv,
    read_csv,
    truth_document,
)

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "configs" / "mappings"
SHARED = ROOT.parent / "shared" / "data"
PAYSIM_HEADER = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig",
                 "nameDest", "oldbalanceDest", "newbalanceDest", "isFraud", "isFlaggedFraud"]


def paysim_row(step: Any, kind: str, amount: Any, orig: str, dest: str,
               fraud: str = "0.0") -> list[str]:
    return [str(step), kind, str(amount), orig, "0.0", "0.0", dest, "0.0", "0.0", fraud, "0.0"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def paysim_csv(tmp_path: Path) -> Path:
    rows = [
        paysim_row(3, "PAYMENT", 12.5, "C1", "M1"),                       # line 2
        paysim_row(1, "TRANSFER", 900, "C2", "C3", "1.0"),                # line 3
        paysim_row(2, "CASH_OUT", 900, "C4", "C5", "1.0"),                # line 4
        paysim_row(1, "CASH_IN", 40, "C6", "C7"),                         # line 5
        paysim_row(2, "BOGUS", 10, "C8", "C9"),                           # line 6: channel
        paysim_row(2, "DEBIT", "abc", "C8", "C9"),                        # line 7: amount
        paysim_row(2, "DEBIT", -5, "C8", "C9"),                           # line 8: negative
        paysim_row(2, "DEBIT", 5, "C8", ""),                              # line 9: no payee
        paysim_row("x", "DEBIT", 5, "C8", "C9"),                          # line 10: time
        [*paysim_row(1, "DEBIT", 7, "C10", "C11"), "extra"],              # line 11: width
        paysim_row(1, "DEBIT", 7, "C12", "C13"),                          # line 12
    ]
    return write_csv(tmp_path / "paysim.csv", PAYSIM_HEADER, rows)


def test_shipped_mappings_load() -> None:
    paysim = load_mapping(MAPPINGS / "paysim.yaml")
    amlsim = load_mapping(MAPPINGS / "amlsim.yaml")
    assert paysim.channels == {"TRANSFER": "transfer", "CASH_OUT": "cash_out",
                               "PAYMENT": "card", "DEBIT": "card", "CASH_IN": "transfer"}
    assert paysim.labels is not None and paysim.labels.column == "isFraud"
    assert amlsim.labels is not None and amlsim.labels.column == "is_sar"


def test_paysim_rows_become_sorted_valid_payments(paysim_csv: Path) -> None:
    result = read_csv(paysim_csv, load_mapping(MAPPINGS / "paysim.yaml"))
    values = [record["value"] for record in result.records]
    assert [v["event_id"] for v in values] == [
        "paysim-2", "paysim-4", "paysim-11", "paysim-3", "paysim-1"]
    assert [v["ts"] for v in values] == [
        "2026-01-01T01:00:00+08:00", "2026-01-01T01:00:00+08:00", "2026-01-01T01:00:00+08:00",
        "2026-01-01T02:00:00+08:00", "2026-01-01T03:00:00+08:00"]
    assert [v["channel"] for v in values] == ["transfer", "transfer", "card", "cash_out", "card"]
    first = values[0]
    assert (first["payer"], first["payee"], first["amount"], first["currency"]) == \
        ("C2", "C3", 900.0, "CNY")
    for record in result.records:
        assert record["topic"] == "payments" and record["key"] == record["value"]["payer"]
        from_dict("payments", record["value"])
    assert result.rows == 11


def test_bad_rows_are_reported_with_line_numbers_not_fatal(paysim_csv: Path) -> None:
    errors = read_csv(paysim_csv, load_mapping(MAPPINGS / "paysim.yaml")).errors
    reasons = {error.line: error.reason for error in errors}
    assert sorted(reasons) == [6, 7, 8, 9, 10, 11]
    assert "'BOGUS' has no mapping" in reasons[6]
    assert "'abc' is not a number" in reasons[7]
    assert "positive" in reasons[8]
    assert "nameDest" in reasons[9]
    assert "cannot be read" in reasons[10]
    assert "more fields" in reasons[11]


def test_truth_from_the_label_column_follows_the_roles(paysim_csv: Path) -> None:
    mapping = load_mapping(MAPPINGS / "paysim.yaml")
    result = read_csv(paysim_csv, mapping)
    truth = truth_document(result, mapping, "paysim.csv")
    mule = truth["patterns"]["mule_account"]
    # Fraud TRANSFER: the receiving account; fraud CASH_OUT: the paying one.
    assert [(p["entity"], p["start"]) for p in mule["positives"]] == [
        ("C3", "2026-01-01T01:00:00+08:00"), ("C4", "2026-01-01T02:00:00+08:00")]
    assert truth["labelled_events"] == ["paysim-2", "paysim-3"]   # data rows 2 and 3
    assert truth["source"]["invalid_rows"] == 6
    assert truth["entities"]["account"] == 10


def amlsim_mapping(**time: Any) -> Mapping:
    base = load_mapping(MAPPINGS / "amlsim.yaml").model_dump()
    base["time"].update(time)
    return Mapping.model_validate(base)


AML_HEADER = ["tran_id", "orig_acct", "bene_acct", "tx_type", "base_amt", "tran_timestamp",
              "is_sar", "alert_id"]


def test_amlsim_times_keep_their_instant_or_shift_onto_a_base(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tx.csv", AML_HEADER, [
        ["7", "50", "62", "WIRE", "234.08", "2011-01-02T00:00:00Z", "True", "0"],
        ["8", "80", "77", "DEPOSIT", "979.21", "2011-01-01T00:00:00Z", "False", "-1"],
    ])
    kept = [r["value"] for r in iter_csv_events(path, MAPPINGS / "amlsim.yaml")]
    assert [(v["event_id"], v["ts"]) for v in kept] == [
        ("amlsim-8", "2011-01-01T08:00:00+08:00"), ("amlsim-7", "2011-01-02T08:00:00+08:00")]
    assert (kept[0]["payer"], kept[0]["currency"], kept[0]["channel"]) == \
        ("aml-80", "USD", "transfer")
    shifted = amlsim_mapping(origin="2011-01-01T00:00:00Z", base="2026-01-01T00:00:00+08:00")
    assert [r["value"]["ts"] for r in iter_csv_events(path, shifted)] == [
        "2026-01-01T00:00:00+08:00", "2026-01-02T00:00:00+08:00"]


def test_dates_and_formats_use_the_mapping_timezone(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tx.csv", AML_HEADER, [
        ["1", "1", "2", "WIRE", "10", "03/01/2011", "False", "-1"]])
    dated = amlsim_mapping(kind="date", format="%d/%m/%Y", timezone="+00:00")
    assert next(iter_csv_events(path, dated))["value"]["ts"] == "2011-01-03T08:00:00+08:00"
    errors: list[RowError] = []
    assert list(iter_csv_events(path, amlsim_mapping(), errors)) == []
    assert errors == [RowError(2, "time '03/01/2011' cannot be read (datetime)")]


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\ncolumns: {ts: a, payer: b, payee: c, amount: d}\ntime: {kind: step}\n"
     "colour: red\n", "colour"),
    ("name: x\ncolumns: {ts: a, payer: b, payee: c, amount: d}\ntime: {kind: step}\n"
     "channels: {X: loan_repayment}\n", "channels.X"),
    ("name: x\ncolumns: {ts: a, payer: b, payee: c}\ntime: {kind: step}\n", "columns.amount"),
    ("name: x\ncolumns: {ts: a, payer: b, payee: c, amount: d}\n"
     "time: {kind: step, timezone: CST}\n", "time.timezone"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_bad_mappings_are_one_line_config_errors(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_mapping(path)


def test_a_csv_without_a_mapped_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", ["a", "b"], [["1", "2"]])
    with pytest.raises(ReplayInputError, match="no column 'step'"):
        read_csv(path, load_mapping(MAPPINGS / "paysim.yaml"))
    with pytest.raises(ReplayInputError, match="cannot read"):
        read_csv(tmp_path / "missing.csv", load_mapping(MAPPINGS / "paysim.yaml"))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12),
                                st.sampled_from(["PAYMENT", "TRANSFER", "?", ""])),
                      min_size=1, max_size=8))
def test_any_cell_text_gives_an_event_or_a_row_error(tmp_path: Path,
                                                     cells: list[tuple[str, str, str]]) -> None:
    rows = [paysim_row(step, kind, amount, "C1", "C2") for step, amount, kind in cells]
    path = write_csv(tmp_path / "fuzz.csv", PAYSIM_HEADER, rows)
    result = read_csv(path, load_mapping(MAPPINGS / "paysim.yaml"))
    assert len(result.records) + len(result.errors) == result.rows == len(rows)
    for record in result.records:
        from_dict("payments", record["value"])


def test_the_command_writes_events_and_truth(paysim_csv: Path, tmp_path: Path) -> None:
    out, truth = tmp_path / "out" / "events.jsonl", tmp_path / "truth.json"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main_import_csv(parser.parse_args([str(paysim_csv), "--mapping",
                                           str(MAPPINGS / "paysim.yaml"), "--out", str(out),
                                           "--truth", str(truth)]))
    assert len(out.read_bytes().splitlines()) == 5
    assert orjson.loads(truth.read_bytes())["labels"] == {"labelled_rows": 2}
    text = printed.getvalue()
    assert text.startswith("import-csv: 11 rows, 5 events, 6 invalid rows; 2 rows with isFraud")
    assert "line 6: channel 'BOGUS' has no mapping" in text


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/data checkout")


@needs_shared
def test_the_shared_paysim_sample_converts_completely() -> None:
    mapping = load_mapping(MAPPINGS / "paysim.yaml")
    result = read_csv(SHARED / "paysim_sample" / "paysim_sample.csv", mapping)
    assert (result.rows, len(result.records), result.errors) == (51_392, 51_392, [])
    assert len(result.labelled) == 1_392
    truth = truth_document(result, mapping, "paysim_sample.csv")
    assert len(truth["patterns"]["mule_account"]["positives"]) == 1_392
    times = [record["value"]["ts"] for record in result.records]
    assert times == sorted(times)


@needs_shared
def test_the_shared_amlsim_run_converts_and_its_sar_accounts_match() -> None:
    mapping = load_mapping(MAPPINGS / "amlsim.yaml")
    folder = SHARED / "amlsim_exports_v2"
    result = read_csv(folder / "transactions.csv", mapping)
    assert (result.rows, len(result.records), result.errors) == (10_333, 10_333, [])
    assert len(result.labelled) == 51
    truth = truth_document(result, mapping, "transactions.csv")
    with (folder / "alert_accounts.csv").open(newline="") as handle:
        flagged = {f"aml-{row['acct_id']}" for row in csv.DictReader(handle)}
    assert {p["entity"] for p in truth["patterns"]["mule_account"]["positives"]} == flagged
