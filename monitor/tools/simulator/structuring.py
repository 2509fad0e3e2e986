"""Structuring (``structuring``): a large sum leaves an account in pieces just under the
reporting line, several times within a short period, by transfer or cash-out. Each
instance draws its own count, spacing, margin under the line, and habits (round
amounts or not, cash or transfers, one episode or a few).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from monitor.tools.simulator.clock import DAY, HOUR
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import OFFICE_HOURS, HourOfDay, clip, lognormal, split
from monitor.tools.simulator.truth import STRUCTURING


@dataclass(frozen=True, slots=True)
class Shape:
    count: int                  # outflows per episode
    period_days: float          # how long an episode lasts
    margin: float               # how far under the line the pieces go, at most
    round_amounts: bool
    cash_share: float
    payees: int
    episodes: int

    @classmethod
    def draw(cls, rng: random.Random) -> Shape:
        return cls(count=rng.randint(3, 14), period_days=rng.uniform(0.5, 14),
                   margin=rng.uniform(0.01, 0.15), round_amounts=rng.random() < 0.5,
                   cash_share=rng.random() if rng.random() < 0.6 else 0.0,
                   payees=rng.randint(1, 4),
                   episodes=1 if rng.random() < 0.75 else rng.randint(2, 3))


def _piece(rng: random.Random, line: float, shape: Shape) -> float:
    amount = line * rng.uniform(1 - shape.margin, 0.999)
    if shape.round_amounts:
        step = 1_000 if rng.random() < 0.4 else 100
        amount = math.floor(amount / step) * step
        if amount >= line:
            amount -= step
    return max(amount, line * 0.5)


def _episode(ctx: Context, rng: random.Random, account: str, device: str, payees: list[str],
             start: int, shape: Shape) -> int | None:
    """One burst of pieces; funded shortly before. Returns the first piece's time."""
    clock, log, line = ctx.clock, ctx.log, ctx.params.reporting_line
    office = HourOfDay(OFFICE_HOURS)
    pieces = [_piece(rng, line, shape) for _ in range(shape.count)]
    funding = sum(pieces) * rng.uniform(1.02, 1.4)
    for part in split(rng, funding, rng.randint(1, 3)):
        when = start - int(rng.uniform(0.2, 10) * DAY)
        log.payment(when, rng.choice(ctx.world.external_payers), account, part, "transfer")
    offsets = sorted(rng.random() * shape.period_days * DAY for _ in pieces)
    first = None
    for offset, amount in zip(offsets, pieces, strict=True):
        t = start + int(offset)
        if not 7 * HOUR < (t - clock.at(clock.day_of(t))) < 22 * HOUR:
            t = clock.at(clock.day_of(t), office.draw(rng))
        if rng.random() < shape.cash_share:
            value = log.payment(t, account, rng.choice(ctx.world.cash_agents), amount,
                                "cash_out", device=device)
        else:
            value = log.payment(t, account, rng.choice(payees), amount, "transfer",
                                device=device)
        if value is not None and (first is None or t < first):
            first = t
    return first


def generate(ctx: Context) -> None:
    rng = ctx.rng("structuring")
    people = ctx.world.people
    candidates = list(ctx.roles.structurers)
    for _ in range(ctx.params.count(ctx.params.structurers_per_1000)):
        shape = Shape.draw(rng)
        if candidates and rng.random() < 0.6:
            person = people[candidates.pop()]
            account, device, existing = person.account, person.phone, True
        else:
            account, device, existing = ctx.ids.account(), ctx.ids.device(), False
        payees = [ctx.ids.account() for _ in range(shape.payees)]
        start = int(rng.uniform(0.05, 0.8) * ctx.horizon)
        first: int | None = None
        for _ in range(shape.episodes):
            began = _episode(ctx, rng, account, device, payees, start, shape)
            if began is not None and (first is None or began < first):
                first = began
            start += int(clip(lognormal(rng, 30 * DAY, 0.5), 10 * DAY, 90 * DAY))
        ctx.truth.positive(STRUCTURING, "account", account, first, count=shape.count,
                           period_days=round(shape.period_days, 2),
                           margin=round(shape.margin, 3), episodes=shape.episodes,
                           cash_share=round(shape.cash_share, 2), existing_account=existing)
