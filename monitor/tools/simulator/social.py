"""Person-to-person money: friends paying each other back, someone collecting a group's
share for a trip and paying it on, cash withdrawals at agents, the odd large purchase,
and sign-up bonuses for new customers.
"""

from __future__ import annotations

import random

from monitor.tools.simulator.clock import DAY, HOUR, MINUTE
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import CONSUMER_HOURS, HourOfDay, clip, lognormal, poisson
from monitor.tools.simulator.world import Person


def _friends(rng: random.Random, people: list[Person], person: Person) -> list[Person]:
    """Friends cluster: mostly people with nearby indices (same area), a few anywhere."""
    near = [people[(person.index + rng.randint(-40, 40)) % len(people)]
            for _ in range(rng.randint(2, 7))]
    far = [rng.choice(people) for _ in range(rng.randint(0, 3))]
    return [friend for friend in near + far if friend is not person]


def _transfers(ctx: Context, rng: random.Random, person: Person, hours: HourOfDay) -> None:
    clock, log = ctx.clock, ctx.log
    friends = _friends(rng, ctx.world.people, person)
    if not friends:
        return
    first = max(0, person.joined)
    span = ctx.horizon - first
    rate = clip(lognormal(rng, 1.0, 0.7), 0.1, 8) / 30
    for _ in range(poisson(rng, rate * span / DAY)):
        t = clock.at(clock.day_of(first + int(rng.random() * span)), hours.draw(rng))
        friend = rng.choice(friends)
        if t < max(first, friend.joined):
            continue
        amount = clip(lognormal(rng, 180, 1.0), 1, 20_000)
        if rng.random() < 0.4:
            amount = max(10.0, round(amount, -1))
        log.payment(t, person.account, friend.account, amount,
                    rng.choice(["wallet", "transfer", "wallet"]), device=person.pay_device)


def _group_collection(ctx: Context, rng: random.Random, organiser: Person) -> None:
    """A fan-in from many (often first-time) payers, paid on within days."""
    people = ctx.world.people
    start = max(organiser.joined, int(rng.uniform(0, ctx.horizon - 5 * DAY)))
    share = round(clip(lognormal(rng, 400, 0.7), 50, 5_000), -1)
    members = rng.randint(4, 25)
    total = 0.0
    for _ in range(members):
        payer = rng.choice(people)
        t = start + int(rng.uniform(0, 48) * HOUR)
        if payer is organiser or t < payer.joined:
            continue
        if ctx.log.payment(t, payer.account, organiser.account, share,
                           rng.choice(["wallet", "transfer"]), device=payer.pay_device):
            total += share
    if total:
        paid_at = start + int(rng.uniform(49, 120) * HOUR)
        ctx.log.payment(paid_at, organiser.account, ctx.ids.account(),
                        total * rng.uniform(0.9, 1.0), "transfer", device=organiser.pay_device)


def _cash(ctx: Context, rng: random.Random, person: Person, hours: HourOfDay) -> None:
    first = max(0, person.joined)
    span = ctx.horizon - first
    for _ in range(poisson(rng, rng.uniform(0.2, 1.2) / 30 * span / DAY)):
        t = ctx.clock.at(ctx.clock.day_of(first + int(rng.random() * span)), hours.draw(rng))
        amount = round(clip(lognormal(rng, 800, 0.8), 100, 10_000), -2)
        if t >= first:
            ctx.log.payment(t, person.account, rng.choice(ctx.world.cash_agents), amount,
                            "cash_out", device=person.phone if rng.random() < 0.5 else None)


def generate(ctx: Context) -> None:
    rng = ctx.rng("social")
    hours = HourOfDay(CONSUMER_HOURS)
    for person in ctx.world.people:
        _transfers(ctx, rng, person, hours)
        if rng.random() < 0.03:
            _group_collection(ctx, rng, person)
        if rng.random() < 0.25:
            _cash(ctx, rng, person, hours)
        if rng.random() < 0.015:
            # A car, a deposit, a wedding: one large transfer, some just under the line.
            t = max(person.joined, int(rng.uniform(0, ctx.horizon)))
            ctx.log.payment(t, person.account, ctx.ids.account(),
                            clip(lognormal(rng, 35_000, 0.6), 8_000, 400_000), "transfer",
                            device=person.pay_device)
        if person.joined > 0 and rng.random() < 0.6:
            bonus = rng.choice([5, 8, 10, 18, 20, 38, 50])
            t = person.joined + int(clip(lognormal(rng, 20 * MINUTE, 1.2), 10, 3 * DAY))
            ctx.log.payment(t, ctx.world.promo_account, person.account, bonus, "wallet")
