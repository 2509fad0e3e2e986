"""What every generator of one run shares: parameters, clock, ids, log, truth, cast."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from monitor.tools.simulator.clock import Clock
from monitor.tools.simulator.draw import Ids, seeded
from monitor.tools.simulator.log import EventLog, Value
from monitor.tools.simulator.params import SimParams
from monitor.tools.simulator.truth import TruthBuilder
from monitor.tools.simulator.world import World


@dataclass(slots=True)
class Roles:
    """People given a special part, each at most one (indices into ``World.people``)."""

    spirals: list[int] = field(default_factory=list)
    consolidations: list[int] = field(default_factory=list)
    ordinary_borrowers: list[int] = field(default_factory=list)
    structurers: list[int] = field(default_factory=list)
    mule_recruits: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Chargeback:
    target: Value
    confirmed: bool
    delay: int                  # seconds after the payment


@dataclass(slots=True)
class Context:
    params: SimParams
    clock: Clock
    ids: Ids
    log: EventLog
    truth: TruthBuilder
    world: World
    roles: Roles
    chargebacks: list[Chargeback] = field(default_factory=list)
    first_loan: dict[int, int] = field(default_factory=dict)  # lender index -> first disbursal

    def rng(self, name: str) -> random.Random:
        return seeded(self.params.seed, name)

    @property
    def horizon(self) -> int:
        return self.clock.horizon
