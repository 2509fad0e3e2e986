"""One simulation run: cast the population, let every generator add its events, then
sort, number and return the events with their ground truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from monitor.tools.simulator import (
    borrowing,
    farms,
    housing,
    income,
    labels,
    mules,
    rollover,
    social,
    spending,
    structuring,
)
from monitor.tools.simulator.clock import Clock
from monitor.tools.simulator.context import Context, Roles
from monitor.tools.simulator.draw import Ids, seeded
from monitor.tools.simulator.log import EventLog, Record
from monitor.tools.simulator.params import SimParams
from monitor.tools.simulator.truth import TruthBuilder
from monitor.tools.simulator.world import build_world

GENERATORS = (income, spending, housing, social, borrowing, rollover, mules, structuring,
              farms)


@dataclass(frozen=True, slots=True)
class Simulation:
    records: list[Record]
    truth: dict[str, Any]
    seconds: float


def _roles(params: SimParams) -> Roles:
    """Give special parts to distinct people, so no one is both a positive and a twin."""
    order = list(range(params.people))
    seeded(params.seed, "roles").shuffle(order)
    taken = 0

    def take(count: int) -> list[int]:
        nonlocal taken
        chosen = order[taken:taken + count]
        taken += len(chosen)
        return chosen

    return Roles(
        spirals=take(params.count(params.spirals_per_1000, minimum=2)),
        consolidations=take(params.count(params.consolidations_per_1000)),
        structurers=take(params.count(params.structurers_per_1000)),
        mule_recruits=take(params.count(params.mule_rings_per_1000) * 2),
        ordinary_borrowers=take(round(params.ordinary_borrower_share * params.people)))


def simulate(params: SimParams) -> Simulation:
    """Generate the labelled traffic of ``params``; deterministic for a given seed."""
    params.validate()
    started = time.perf_counter()
    clock = Clock(params.start, params.days)
    truth = TruthBuilder(clock)
    ids = Ids(seeded(params.seed, "ids"))
    world = build_world(params, seeded(params.seed, "world"), ids)
    ctx = Context(params=params, clock=clock, ids=ids, log=EventLog(clock), truth=truth,
                  world=world, roles=_roles(params))
    for generator in GENERATORS:
        generator.generate(ctx)
    for device, _ in world.shared_devices:
        truth.lookalike("household_device", "device", device)
    label_counts = labels.generate(ctx)
    records = ctx.log.finish(f"sim{params.seed}-")
    source = {"generator": "fraudmon simulate", "seed": params.seed, "days": params.days,
              "people": params.people, "start": clock.text(0),
              "end": clock.text(clock.horizon), "reporting_line": params.reporting_line,
              "events": len(records)}
    document = truth.finish(records, source, label_counts)
    return Simulation(records, document, time.perf_counter() - started)
