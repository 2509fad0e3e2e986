"""``fraudmon bench`` runs end to end on a tiny input, so it cannot rot. No timing is
asserted here: figures belong to the benchmark itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.devtools.bench import Bench, _input, run, table

pytestmark = pytest.mark.integration


def test_bench_replay_and_e2e_on_a_tiny_input(bootstrap: str, tmp_path: Path) -> None:
    results = run(2000, {"replay", "e2e"}, keep=tmp_path, bootstrap=bootstrap)
    assert results["events"] == 2000
    assert results["e2e"]["decisions"] >= 2000
    assert results["replay"]["events_per_second"] > 0
    assert results["ceiling"]["events_per_second"] > 0
    assert set(results["ratios"]) == {"e2e_over_ceiling", "e2e_over_replay"}
    assert "e2e.e2e_events_per_second" in table(results)


async def test_bench_latency_measures_after_its_warmup(bootstrap: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    count = _input(events, 2000, seed=7)
    bench = Bench(tmp_path, bootstrap, events, count)
    figures = await bench.latency(rate=400, seconds=2, warmup=1)
    # 1,200 events offered over 3 s, those due in the first second not measured.
    assert figures["events_with_warmup"] == 1200
    assert figures["events"] == 800
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert figures["p99_ms_with_warmup"] > 0
    rows = (tmp_path / "latency.tsv").read_text().splitlines()
    assert len(rows) == 1200
    assert float(rows[0].split("\t")[0]) == 0.0  # due times in order, from the start


async def test_bench_scale_counts_from_when_every_worker_is_ready(
        bootstrap: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    count = _input(events, 2000, seed=7)
    figures = await Bench(tmp_path, bootstrap, events, count).scale()
    for workers in (1, 2):
        # The test broker assigns a new group at once: a worker alone may decide all
        # 2,000 events before both are ready, and nothing is counted then.
        counted = figures[f"workers_{workers}_decisions_counted"]
        assert 0 <= counted <= count
        assert (figures[f"workers_{workers}_events_per_second"] > 0) == (counted > 0)
    assert figures["rebalance_with_decision"] == count
