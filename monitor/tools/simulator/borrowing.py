"""Legitimate borrowing: ordinary borrowers and one-off debt consolidations.

Ordinary borrowers take a few loans from one or two lenders and repay them from income,
on time, by installments or in one go; some borrow again from the same app soon after.
A consolidation takes one bigger, longer loan and repays two or three smaller ones
with it within hours, once: the honest twin of a rollover.
"""

from __future__ import annotations

import math
import random

from monitor.tools.simulator.clock import DAY, HOUR
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import Weighted, clip, lognormal
from monitor.tools.simulator.loans import (
    Loan,
    daytime,
    first_limit,
    lend,
    pay_by_installments,
    repay,
)
from monitor.tools.simulator.world import Person

KIND_WEIGHTS = {"bank": 0.35, "consumer": 0.45, "micro": 0.2, "predatory": 0.0}


def _ordinary(ctx: Context, rng: random.Random, person: Person) -> None:
    lenders = ctx.world.lenders
    pick = Weighted(range(len(lenders)), [KIND_WEIGHTS[lender.kind] for lender in lenders])
    predatory = [i for i, lender in enumerate(lenders) if lender.predatory]
    chosen = [pick.pick(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.08:
        chosen[0] = rng.choice(predatory)  # a one-off expensive app loan, repaid from salary
    t = max(person.joined, int(rng.uniform(0, 0.6) * ctx.horizon)) + rng.randint(0, DAY)
    previous: int | None = None
    for _ in range(Weighted([1, 2, 3, 4], [0.35, 0.3, 0.2, 0.15]).pick(rng)):
        lender_index = rng.choice(chosen)
        referrer = None
        if previous is not None:
            earlier = lenders[previous]
            if earlier.partners and rng.random() < earlier.refer_rate * 5:
                lender_index, referrer = rng.choice(earlier.partners), previous
        lender = lenders[lender_index]
        loan = lend(ctx, rng, person, lender_index, daytime(rng, ctx, t),
                    first_limit(rng, lender) * rng.uniform(0.5, 1.0), referrer=referrer)
        if loan.term >= 60 and not lender.predatory and rng.random() < 0.7:
            last = pay_by_installments(ctx, rng, person, loan)
        else:
            last = daytime(rng, ctx, loan.due - rng.randint(0, 3) * DAY)
            repay(ctx, max(last, loan.disbursed + HOUR), person, loan, loan.owed)
        previous = lender_index
        t = last + int(clip(lognormal(rng, 25 * DAY, 0.9), DAY, 120 * DAY))
        if t >= ctx.horizon:
            break
    ctx.truth.lookalike("ordinary_borrower", "borrower", person.pid)


def _consolidation(ctx: Context, rng: random.Random, person: Person) -> None:
    lenders = ctx.world.lenders
    small = [i for i, lender in enumerate(lenders) if lender.kind in ("consumer", "micro")]
    banks = [i for i, lender in enumerate(lenders) if lender.kind == "bank"] or small
    t = max(person.joined, int(rng.uniform(0, 0.45) * ctx.horizon))
    loans: list[Loan] = []
    for lender_index in rng.sample(small, min(len(small), rng.randint(2, 3))):
        lender = lenders[lender_index]
        term = max(lender.terms)
        loans.append(lend(ctx, rng, person, lender_index, daytime(rng, ctx, t),
                          first_limit(rng, lender), term=term))
        t += rng.randint(1, 15) * DAY
    earliest_due = min(loan.due for loan in loans)
    last_loan = max(loan.disbursed for loan in loans)
    at = last_loan + int(rng.uniform(2, 20) * DAY)
    if at > earliest_due - DAY:
        at = max(last_loan + 12 * HOUR, earliest_due - 2 * DAY)
    at = max(at, last_loan + HOUR)
    settle = [loan.principal + loan.fee * clip((at - loan.disbursed) / (loan.term * DAY), 0.3, 1)
              for loan in loans]
    bank_index = rng.choice(banks)
    bank = lenders[bank_index]
    long_terms = [term for term in bank.terms if term >= 180] or [max(bank.terms)]
    principal = math.ceil(sum(settle) * rng.uniform(1.0, 1.15) / 1_000) * 1_000
    big = lend(ctx, rng, person, bank_index, at, principal, term=rng.choice(long_terms))
    for loan, amount in zip(loans, settle, strict=True):
        repay(ctx, at + int(rng.uniform(1, 48) * HOUR), person, loan, amount)
    pay_by_installments(ctx, rng, person, big)
    ctx.truth.lookalike("consolidation", "borrower", person.pid)


def generate(ctx: Context) -> None:
    rng = ctx.rng("borrowing")
    people = ctx.world.people
    for index in ctx.roles.ordinary_borrowers:
        _ordinary(ctx, rng, people[index])
    for index in ctx.roles.consolidations:
        _consolidation(ctx, rng, people[index])
