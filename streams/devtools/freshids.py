"""A flood of fresh identifiers through the engine: entities held and resident memory as
the ids pile up (``fraudmon bench`` section ``memory``).

Every payment names a payer and a payee never seen before, as a fake-account farm or a
careless upstream system would. With ``processing.max_entities_per_shard`` the entities
held stop growing at the bound, and so does memory; without it they grow with the ids.
Run in a process of its own (``python -m streams.devtools.freshids``), so the resident
size is this flood's alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from monitor.config import Settings
from monitor.contract.events import PAYMENTS, from_dict
from monitor.processing.engine import Engine

START = 1_767_574_800.0
"""2026-01-05T01:00:00Z: the first payment's time; each next one a second later."""


def resident_bytes() -> int:
    """This process's resident set size now (not its peak)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flood(settings: Settings, ids: int, every: int) -> Iterator[dict[str, Any]]:
    """Feed ``ids`` fresh ids (two per payment) through an engine; a figure every
    ``every`` ids: entities held (most in one shard), evictions, resident bytes, seconds."""
    engine = Engine(settings)
    started = time.perf_counter()
    for number in range(ids // 2):
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + number))
        event = from_dict(PAYMENTS, {
            "event_id": f"fresh-{number}", "ts": ts, "payer": f"farm-a-{number}",
            "payee": f"farm-b-{number}", "amount": 10.0 + number % 90, "channel": "transfer"})
        engine.admit(event, START + number)
        engine.process(event)
        done = 2 * (number + 1)
        if done % every == 0:
            yield {"ids": done,
                   "entities": sum(len(shard.entities) for shard in engine.shards),
                   "largest_shard": max(len(shard.entities) for shard in engine.shards),
                   "evicted": sum(shard.evicted for shard in engine.shards),
                   "resident_bytes": resident_bytes(),
                   "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", type=int)
    parser.add_argument("--every", type=int, default=1_000_000)
    parser.add_argument("--bound", type=int, default=None,
                        help="processing.max_entities_per_shard (default: the setting's)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.bound is not None:
        settings = Settings(processing=settings.processing.model_copy(
            update={"max_entities_per_shard": args.bound}))
    for figure in flood(settings, args.ids, args.every):
        sys.stdout.write(orjson.dumps(figure).decode() + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
