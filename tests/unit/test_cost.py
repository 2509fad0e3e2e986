"""``fraudmon cost``: every view is booked to its family, and the replay is unchanged."""

from __future__ import annotations

from pathlib import Path

import orjson

from monitor.config import Settings
from monitor.contract.events import from_dict
from monitor.processing.engine import Engine
from monitor.routing.views import placements
from monitor.tools.cost import measure
from monitor.tools.replay import replay
from monitor.tools.samplefile import write_sample


def test_every_view_is_timed_and_every_entity_sized(tmp_path: Path) -> None:
    events = tmp_path / "sample.jsonl"
    write_sample(events, seed=3, invalid=False)
    settings = Settings()
    report = measure(events, settings)

    plain = replay(events, tmp_path / "out", Engine(settings))
    assert report.events == plain.events > 0
    primary = 0
    for line in events.read_bytes().splitlines():
        record = orjson.loads(line)
        primary += len(placements(from_dict(record["topic"], record["value"]),
                                  settings.kafka.partitions))
    timed = sum(cost.views for cost in report.families.values())
    assert timed >= primary  # onward views (rollovers told to lenders) come on top
    assert {"account", "device"} <= report.families.keys()
    assert all(entities > 0 and size > 0 for entities, size in report.state_bytes.values())
    assert report.lines()[-1].startswith(f"{report.events:,} events")
