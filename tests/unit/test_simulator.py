"""The traffic simulator: deterministic, valid, sorted, and its truth holds in its events."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.contract.events import LoanDisbursal, Payment, from_dict
from monitor.contract.vocabulary import PATTERNS
from monitor.errors import ConfigError
from monitor.tools.simulator import SimParams, Simulation, simulate
from monitor.tools.simulator.command import add_arguments, main_simulate
from monitor.tools.simulator.truth import LOOKALIKE_KINDS, entities_in

HOUR = 3600.0
DAY = 86_400.0
SMALL = SimParams(seed=11, days=75, people=500)


@pytest.fixture(scope="module")
def run() -> Simulation:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def events(run: Simulation) -> list[Any]:
    return [from_dict(record["topic"], record["value"]) for record in run.records]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def positives(run: Simulation, pattern: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = run.truth["patterns"][pattern]["positives"]
    return found


def dump(run: Simulation) -> bytes:
    return orjson.dumps([run.records, run.truth])


def test_same_seed_same_traffic_and_truth(run: Simulation) -> None:
    assert dump(simulate(SMALL)) == dump(run)


def test_another_seed_other_traffic() -> None:
    one = simulate(SimParams(seed=1, days=20, people=200))
    two = simulate(SimParams(seed=2, days=20, people=200))
    assert dump(one) != dump(two)
    payers = [{r["value"].get("payer") for r in run.records} for run in (one, two)]
    assert len(payers[0] & payers[1]) < len(payers[0]) / 10


def test_every_event_keeps_the_contract(run: Simulation, events: list[Any]) -> None:
    assert len(events) == len(run.records) > 10_000
    assert len({e.event_id for e in events}) == len(events)
    for record, event in zip(run.records, events, strict=True):
        assert record["value"]["ts"].endswith("+08:00")
        assert record["key"] in (getattr(event, "payer", None), getattr(event, "borrower", None),
                                 getattr(event, "entity", None),
                                 getattr(event, "target_event_id", None))
    kinds = {record["topic"] for record in run.records}
    assert kinds == {"payments", "loan-disbursals", "labels"}


def test_events_are_sorted_and_inside_the_run(run: Simulation, events: list[Any]) -> None:
    times = [event.ts for event in events]
    assert times == sorted(times)
    start = ts(run.truth["source"]["start"])
    assert start <= times[0] and times[-1] < start + SMALL.days * DAY


def test_every_pattern_and_lookalike_kind_is_present(run: Simulation) -> None:
    for pattern in PATTERNS:
        assert positives(run, pattern), pattern
    for kind in LOOKALIKE_KINDS:
        assert run.truth["lookalikes"][kind], kind


def test_truth_entities_occur_in_the_events(run: Simulation) -> None:
    present = entities_in(run.records)
    for pattern in PATTERNS:
        for item in positives(run, pattern):
            assert item["entity"] in present[item["entity_type"]]
    for kind in LOOKALIKE_KINDS:
        for item in run.truth["lookalikes"][kind]:
            assert item["entity"] in present[item["entity_type"]]
    assert run.truth["entities"] == {kind: len(ids) for kind, ids in present.items()}


def test_no_entity_is_both_positive_and_lookalike(run: Simulation) -> None:
    positive = {(p["entity_type"], p["entity"]) for pattern in PATTERNS
                for p in positives(run, pattern)}
    for kind in LOOKALIKE_KINDS:
        for item in run.truth["lookalikes"][kind]:
            assert (item["entity_type"], item["entity"]) not in positive


def test_rollover_starts_with_a_repayment_funded_by_a_newer_loan(events: list[Any],
                                                                run: Simulation) -> None:
    loans: dict[str, list[LoanDisbursal]] = defaultdict(list)
    repayments: dict[str, list[Payment]] = defaultdict(list)
    for event in events:
        if isinstance(event, LoanDisbursal):
            loans[event.borrower].append(event)
        elif isinstance(event, Payment) and event.channel == "loan_repayment":
            assert event.borrower is not None
            repayments[event.borrower].append(event)
    for item in positives(run, "rollover_loan"):
        start = ts(item["start"])
        repayment = next(p for p in repayments[item["entity"]] if p.ts == start)
        funding = [loan for loan in loans[item["entity"]]
                   if start - 5 * DAY - 1 <= loan.ts < start and loan.loan_id != repayment.loan_id]
        assert funding, item
        assert repayment.payer == funding[0].account


def test_predatory_lenders_lend_short_and_refer_borrowers_on(events: list[Any],
                                                            run: Simulation) -> None:
    predatory = {p["entity"] for p in positives(run, "predatory_lender")}
    terms: dict[str, set[int]] = defaultdict(set)
    referrers = set()
    for event in events:
        if isinstance(event, LoanDisbursal):
            terms[event.lender].add(event.term_days)
            if event.referrer is not None:
                referrers.add(event.referrer)
    assert predatory and all(max(terms[lender]) <= 14 for lender in predatory)
    assert predatory & referrers
    assert len(terms) > 3 * len(predatory)          # many normal lenders too


def test_mules_pass_money_through(events: list[Any], run: Simulation) -> None:
    payments = [e for e in events if isinstance(e, Payment)]
    for item in positives(run, "mule_account"):
        start = ts(item["start"])
        assert any(p.payer == item["entity"] and p.ts == start for p in payments)
        assert any(p.payee == item["entity"] and p.ts < start for p in payments)


def test_structuring_stays_under_the_line(events: list[Any], run: Simulation) -> None:
    line = SMALL.reporting_line
    for item in positives(run, "structuring"):
        pieces = [e for e in events if isinstance(e, Payment) and e.payer == item["entity"]
                  and line * 0.5 <= e.amount < line]
        assert len(pieces) >= 3
        assert min(p.ts for p in pieces) == ts(item["start"])
        assert not any(isinstance(e, Payment) and e.payer == item["entity"]
                       and line <= e.amount < line * 1.2 for e in events)


def test_fake_accounts_come_from_few_devices(events: list[Any], run: Simulation) -> None:
    devices: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if isinstance(event, Payment) and event.device_id is not None:
            devices[event.payer].add(event.device_id)
    farms: dict[int, list[str]] = defaultdict(list)
    for item in positives(run, "fake_account"):
        if item["params"]["role"] == "farm":
            farms[item["params"]["farm"]].append(item["entity"])
    for accounts in farms.values():
        used = set().union(*(devices[a] for a in accounts))
        assert len(used) <= 4 < len(accounts)


def test_labels_arrive_after_the_behaviour(events: list[Any], run: Simulation) -> None:
    first: dict[str, float] = {}
    by_id = {}
    for event in events:
        by_id[event.event_id] = event
        for name in ("payer", "payee", "borrower", "lender", "account", "device_id"):
            entity = getattr(event, name, None)
            if entity is not None and entity not in first:
                first[entity] = event.ts
    starts = {p["entity"]: ts(p["start"]) for pattern in PATTERNS
              for p in positives(run, pattern)}
    lookalikes = {item["entity"] for kind in LOOKALIKE_KINDS
                  for item in run.truth["lookalikes"][kind]}
    labels = [e for e in events if e.kind == "labels"]
    assert labels
    for label in labels:
        if label.target_event_id is not None:
            assert by_id[label.target_event_id].ts + DAY <= label.ts
            continue
        assert label.ts >= first[label.entity] + 2 * DAY
        if label.confirmed:
            assert label.ts >= starts[label.entity] + 2 * DAY
        else:
            assert label.entity in lookalikes
    counts = run.truth["labels"]
    assert counts["confirmed"] > 0 and counts["cleared"] > 0
    assert counts["confirmed"] + counts["cleared"] + counts["chargebacks"] == len(labels)


def test_the_reporting_line_is_a_parameter() -> None:
    run = simulate(SimParams(seed=5, days=40, people=300, reporting_line=20_000.0))
    for item in positives(run, "structuring"):
        amounts = [r["value"]["amount"] for r in run.records
                   if r["value"].get("payer") == item["entity"]
                   and r["value"]["ts"] >= item["start"]]
        assert sum(1 for a in amounts if 10_000 <= a < 20_000) >= 3


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="people"):
        simulate(SimParams(people=3))


def cli(tmp_path: Path, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main_simulate(parser.parse_args(list(argv)))
    return code, out.getvalue()


def test_the_command_writes_events_and_truth(tmp_path: Path) -> None:
    events_path, truth_path = tmp_path / "out" / "events.jsonl", tmp_path / "truth.json"
    code, printed = cli(tmp_path, "--out", str(events_path), "--truth", str(truth_path),
                        "--people", "200", "--days", "30", "--seed", "3")
    assert code == 0
    lines = events_path.read_bytes().splitlines()
    truth = orjson.loads(truth_path.read_bytes())
    assert f"simulate: {len(lines):,} events" in printed and "MB" in printed
    assert truth["format"] == "fraudmon-truth/1" and truth["source"]["events"] == len(lines)
    assert orjson.loads(lines[0])["value"]["event_id"] == "sim3-00000001"


def test_the_command_needs_somewhere_to_send_events(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--out"):
        cli(tmp_path, "--people", "200")
    with pytest.raises(ConfigError, match="days"):
        cli(tmp_path, "--out", str(tmp_path / "e.jsonl"), "--days", "0")
