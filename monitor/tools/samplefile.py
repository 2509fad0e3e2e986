"""Writes the demo sample as a replay-format JSONL file."""

from __future__ import annotations

from pathlib import Path

import orjson

from monitor.contract.events import PAYMENTS
from monitor.tools.sample import generate, invalid_examples


def write_sample(path: Path, seed: int = 7, invalid: bool = False) -> int:
    """Write the sample (and optionally contract violations, spread through it)."""
    records = generate(seed)
    if invalid:
        bad = [{"topic": PAYMENTS, "raw": raw.decode()} for raw in invalid_examples()]
        step = max(1, len(records) // (len(bad) + 1))
        for i, record in enumerate(bad, start=1):
            records.insert(i * step, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for record in records:
            handle.write(orjson.dumps(record) + b"\n")
    return len(records)
