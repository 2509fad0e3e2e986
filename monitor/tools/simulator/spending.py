"""Everyday spending by card, QR and wallet at merchants, and the merchants' payouts.

Merchants see a wide fan-in from customers, many of them first-time payers, and pay
most of each day's takings on to a few suppliers the next night or morning: the
legitimate twin of a mule's pass-through.
"""

from __future__ import annotations

import random

from monitor.tools.simulator.clock import DAY
from monitor.tools.simulator.context import Chargeback, Context
from monitor.tools.simulator.draw import CONSUMER_HOURS, HourOfDay, clip, lognormal, poisson
from monitor.tools.simulator.world import CHANNELS, Person

DISPUTE_RATE = 0.0003


def _spend(ctx: Context, rng: random.Random, person: Person, hours: HourOfDay,
           receipts: list[list[float]]) -> None:
    clock, log, world = ctx.clock, ctx.log, ctx.world
    first = max(0, person.joined)
    span = ctx.horizon - first
    weights = person.channel_weights
    total_weight = sum(weights)
    shared = person.pay_device != person.phone
    for _ in range(poisson(rng, person.spend_rate * span / DAY)):
        day = clock.day_of(first + int(rng.random() * span))
        t = clock.at(day, hours.draw(rng))
        if not first <= t < ctx.horizon:
            continue
        if rng.random() < 0.75:
            merchant_index = person.favourites[rng.randrange(len(person.favourites))]
        else:
            merchant_index = world.merchant_pick.pick(rng)
        merchant = world.merchants[merchant_index]
        amount = clip(lognormal(rng, merchant.ticket * person.ticket_scale, 0.55), 1, 20_000)
        draw = rng.random() * total_weight
        channel = (CHANNELS[0] if draw < weights[0]
                   else CHANNELS[1] if draw < weights[0] + weights[1] else CHANNELS[2])
        if channel == "card":
            device = None if rng.random() < 0.6 else person.pay_device
        else:
            device = person.phone if shared and rng.random() < 0.2 else person.pay_device
        value = log.payment(t, person.account, merchant.account, amount, channel,
                            device=device)
        if value is None:
            continue
        receipts[merchant_index][day] += value["amount"]
        if channel == "card" and rng.random() < DISPUTE_RATE:
            ctx.chargebacks.append(Chargeback(value, rng.random() < 0.3,
                                              rng.randint(2, 40) * DAY))


def _payouts(ctx: Context, rng: random.Random, receipts: list[list[float]]) -> None:
    clock, log = ctx.clock, ctx.log
    for index, merchant in enumerate(ctx.world.merchants):
        pending = 0.0
        for day, taken in enumerate(receipts[index]):
            pending += taken
            if (day + 1) % merchant.payout_every or pending < 200:
                continue
            t = clock.at(day + 1, merchant.payout_hour + rng.randint(0, 1_800))
            payees = rng.sample(merchant.suppliers, rng.randint(1, min(3, len(merchant.suppliers))))
            total = pending * merchant.payout_share * rng.uniform(0.93, 1.05)
            for payee in payees:
                log.payment(t, merchant.account, payee, total / len(payees), "transfer",
                            device=merchant.device)
                t += rng.randint(20, 600)
            pending = 0.0
        if any(receipts[index]):
            ctx.truth.lookalike("merchant", "account", merchant.account)


def generate(ctx: Context) -> None:
    rng = ctx.rng("spending")
    receipts = [[0.0] * ctx.clock.days for _ in ctx.world.merchants]
    hours = HourOfDay(CONSUMER_HOURS)
    for person in ctx.world.people:
        _spend(ctx, rng, person, hours, receipts)
    _payouts(ctx, rng, receipts)
