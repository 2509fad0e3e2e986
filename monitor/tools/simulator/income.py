"""Income: employers funded by clients pay salaries on payday (a wide monthly fan-out);
savers move part of it to their own savings account within hours; people without a
job get money from family.
"""

from __future__ import annotations

import random

from monitor.tools.simulator.clock import DAY, HOUR, MINUTE
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import OFFICE_HOURS, HourOfDay, clip, lognormal, split
from monitor.tools.simulator.world import Employer


def _payroll(ctx: Context, rng: random.Random, employer: Employer) -> None:
    log, people = ctx.log, ctx.world.people
    monthly_bill = sum(people[i].salary for i in employer.staff)
    if not employer.staff:
        return
    ctx.truth.lookalike("payroll", "account", employer.account)
    office = HourOfDay(OFFICE_HOURS)
    for day in ctx.clock.monthly(employer.payday, workday=True):
        # Clients pay the employer in the weeks before payday.
        for amount in split(rng, monthly_bill * rng.uniform(1.05, 1.5), rng.randint(1, 6)):
            when = ctx.clock.at(day - rng.randint(1, 25), office.draw(rng))
            log.payment(when, rng.choice(employer.clients), employer.account, amount,
                        "transfer")
        t = ctx.clock.at(day, employer.pay_hour)
        for index in employer.staff:
            person = people[index]
            t += rng.randint(1, 8)
            if t < person.joined:
                continue
            paid = person.salary * rng.uniform(0.97, 1.06)
            log.payment(t, employer.account, person.account, paid, "transfer",
                        device=employer.device)
            if person.savings is not None:
                _save(ctx, rng, t, paid, person.account, person.savings, person.save_share,
                      person.pay_device)


def _save(ctx: Context, rng: random.Random, paid_at: int, paid: float, account: str,
          savings: str, share: float, device: str) -> None:
    delay = int(clip(lognormal(rng, 1.5 * HOUR, 0.9), 5 * MINUTE, 20 * HOUR))
    moved = round(paid * share * rng.uniform(0.9, 1.1), -1 if rng.random() < 0.6 else 2)
    ctx.log.payment(paid_at + delay, account, savings, moved, "transfer", device=device)
    if rng.random() < 0.2:
        back = paid_at + rng.randint(3, 25) * DAY + rng.randint(9 * HOUR, 22 * HOUR)
        ctx.log.payment(back, savings, account, rng.uniform(300, 3_000), "transfer",
                        device=device)


def generate(ctx: Context) -> None:
    rng = ctx.rng("income")
    for employer in ctx.world.employers:
        _payroll(ctx, rng, employer)
    for person in ctx.world.people:
        if person.savings is not None:
            ctx.truth.lookalike("salary_saver", "account", person.account)
        if person.employer is not None:
            continue
        family = rng.choice(ctx.world.external_payers)
        allowance = clip(lognormal(rng, 2_200, 0.5), 400, 15_000)
        for day in ctx.clock.monthly(rng.randint(1, 28)):
            t = ctx.clock.at(day, rng.uniform(8, 22) * HOUR)
            if t >= person.joined:
                ctx.log.payment(t, family, person.account, allowance * rng.uniform(0.8, 1.2),
                                rng.choice(["transfer", "wallet"]))
