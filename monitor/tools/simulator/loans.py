"""Loan primitives shared by ordinary borrowing and debt spirals: disburse, repay."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from monitor.tools.simulator.clock import DAY, HOUR
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.log import Value
from monitor.tools.simulator.world import Lender, Person


@dataclass(slots=True)
class Loan:
    loan_id: str
    lender: int                 # index into ``World.lenders``
    principal: float
    fee: float
    term: int
    disbursed: int

    @property
    def due(self) -> int:
        return self.disbursed + self.term * DAY

    @property
    def owed(self) -> float:
        return self.principal + self.fee


def fee_for(lender: Lender, principal: float, term: int, rate: float) -> float:
    """Predatory apps charge a flat cut per loan; others charge more for longer terms."""
    if lender.predatory:
        return principal * rate
    return principal * rate * math.sqrt(term / 30)


def first_limit(rng: random.Random, lender: Lender) -> float:
    """What an app offers a new customer: log-uniform over its range, in hundreds."""
    low, high = lender.limit
    return round(low * float((high / low) ** rng.random()), -2) or 100.0


def lend(ctx: Context, rng: random.Random, person: Person, lender_index: int, t: int,
         principal: float, *, term: int | None = None, referrer: int | None = None) -> Loan:
    lender = ctx.world.lenders[lender_index]
    term = term if term is not None else rng.choice(lender.terms)
    principal = max(100.0, round(principal, -1 if principal < 5_000 else -2))
    fee = round(fee_for(lender, principal, term, rng.uniform(*lender.fee_rate)), 2)
    loan = Loan(ctx.ids.new("loan", 10), lender_index, principal, fee, term, t)
    added = ctx.log.disbursal(
        t, loan_id=loan.loan_id, borrower=person.pid, lender=lender.lender_id,
        principal=principal, fee=fee, term_days=term, account=person.account,
        referrer=None if referrer is None else ctx.world.lenders[referrer].lender_id,
        device=person.phone)
    if added is not None:
        known = ctx.first_loan.get(lender_index)
        ctx.first_loan[lender_index] = t if known is None else min(known, t)
    return loan


def repay(ctx: Context, t: int, person: Person, loan: Loan, amount: float) -> Value | None:
    return ctx.log.payment(t, person.account, ctx.world.lenders[loan.lender].collection,
                           amount, "loan_repayment", device=person.phone,
                           loan_id=loan.loan_id, borrower=person.pid)


def daytime(rng: random.Random, ctx: Context, t: int) -> int:
    """The same local day as ``t``, at a waking hour."""
    return ctx.clock.at(ctx.clock.day_of(t), rng.uniform(8, 23) * HOUR)


def pay_by_installments(ctx: Context, rng: random.Random, person: Person, loan: Loan) -> int:
    """Monthly installments until the term ends; returns the time of the last one."""
    count = max(1, loan.term // 30)
    last = loan.disbursed
    for number in range(1, count + 1):
        t = daytime(rng, ctx, loan.disbursed + number * 30 * DAY - rng.randint(0, 2) * DAY)
        repay(ctx, t, person, loan, loan.owed / count)
        last = t
    return last
