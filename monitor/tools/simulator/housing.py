"""Rent: tenants pay the same amount every month; landlords pay a mortgage, and some
sweep each rent on to another account within hours. Commercial landlords collect
large business rents, some just under the reporting line, once a month.
"""

from __future__ import annotations

import random

from monitor.tools.simulator.clock import HOUR, MINUTE
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import CONSUMER_HOURS, OFFICE_HOURS, HourOfDay, clip, lognormal
from monitor.tools.simulator.world import Landlord


def _landlord(ctx: Context, rng: random.Random, landlord: Landlord) -> None:
    clock, log, people = ctx.clock, ctx.log, ctx.world.people
    evenings, office = HourOfDay(CONSUMER_HOURS), HourOfDay(OFFICE_HOURS)
    received: list[tuple[int, float]] = []
    for index in landlord.tenants:
        tenant = people[index]
        for day in clock.monthly(tenant.rent_day):
            t = clock.at(day + rng.choice([-1, 0, 0, 0, 0, 1, 2]), evenings.draw(rng))
            if t >= tenant.joined and log.payment(t, tenant.account, landlord.account,
                                                  tenant.rent, "transfer",
                                                  device=tenant.pay_device):
                received.append((t, tenant.rent))
    for payer, rent in landlord.business_tenants:
        for day in clock.monthly(rng.randint(1, 5), workday=True):
            t = clock.at(day, office.draw(rng))
            if log.payment(t, payer, landlord.account, rent, "transfer"):
                received.append((t, rent))
    if not received:
        return
    ctx.truth.lookalike("landlord", "account", landlord.account)
    monthly = (sum(people[i].rent for i in landlord.tenants)
               + sum(rent for _, rent in landlord.business_tenants))
    mortgage = round(monthly * landlord.mortgage_share, 2)
    for day in clock.monthly(rng.randint(8, 20), workday=True):
        log.payment(clock.at(day, office.draw(rng)), landlord.account, landlord.mortgage_payee,
                    mortgage, "transfer", device=landlord.device)
    if landlord.own_account is not None:
        for t, amount in received:
            delay = int(clip(lognormal(rng, 3 * HOUR, 1.0), 10 * MINUTE, 30 * HOUR))
            log.payment(t + delay, landlord.account, landlord.own_account,
                        amount * landlord.sweep_share, "transfer", device=landlord.device)


def generate(ctx: Context) -> None:
    rng = ctx.rng("housing")
    for landlord in ctx.world.landlords:
        _landlord(ctx, rng, landlord)
