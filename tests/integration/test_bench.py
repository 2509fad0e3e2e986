"""``fraudmon bench`` runs end to end on a tiny input, so it cannot rot. No timing is
asserted here: figures belong to the benchmark itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench import run, table

pytestmark = pytest.mark.integration


def test_bench_replay_and_e2e_on_a_tiny_input(bootstrap: str, tmp_path: Path) -> None:
    results = run(2000, {"replay", "e2e"}, keep=tmp_path, bootstrap=bootstrap)
    assert results["events"] == 2000
    assert results["e2e"]["decisions"] >= 2000
    assert results["replay"]["events_per_second"] > 0
    assert results["ceiling"]["events_per_second"] > 0
    assert set(results["ratios"]) == {"e2e_over_ceiling", "e2e_over_replay"}
    assert "e2e.e2e_events_per_second" in table(results)
