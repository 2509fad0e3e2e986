"""The in-process state-size measurement behind ``fraudmon bench --only memory``."""

from __future__ import annotations

from monitor.config import load_settings
from monitor.tools.statesize import measure


def test_measure_builds_the_entities_it_reports() -> None:
    size = measure(load_settings(None), 400)
    assert size.entities == 400
    assert size.traced_bytes_per_entity > size.pickled_bytes_per_entity > 0
    assert size.bounded_bytes > 0
