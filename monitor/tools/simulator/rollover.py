"""Debt spirals (``rollover_loan``) and the predatory apps that feed them.

A borrower's loan falls due; unable to pay from income, they take a new loan, often
from another app, hours to days before, and repay the old one with it. Each round the
debt grows by fees and the apps' limits are small, so ever more apps are needed: the
real case this models went from 1,500 yuan to 350,000 owed to 55 apps in five months.
Every spiral draws its own speed: slow ones stay on two or three monthly apps and still
pay part from salary; fast ones run on 7-day predatory apps that push them on to
partner apps (the ``referrer`` of the next disbursal).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from monitor.tools.simulator.clock import DAY, HOUR, MINUTE
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import Weighted, clip, lognormal
from monitor.tools.simulator.loans import Loan, daytime, lend, repay
from monitor.tools.simulator.truth import PREDATORY, ROLLOVER
from monitor.tools.simulator.world import Lender, Person

MAX_TERM = 30


@dataclass(slots=True)
class Shape:
    """One spiral's parameters, drawn from ``speed`` (0 slow .. 1 fast) plus noise."""

    speed: float
    seed_principal: float
    growth: float               # new borrowing per rollover, relative to what is owed
    lead_hours: float           # median time from a new loan to the repayment it funds
    income_share: float         # early chance a due loan is paid from income instead
    income_decay: float
    predatory_weight: float
    max_lenders: int
    debt_cap: float             # debt at which the spiral breaks
    reborrow: float             # chance an app lends again right after being repaid
    ending: str                 # default, bailout or ongoing

    @classmethod
    def draw(cls, rng: random.Random) -> Shape:
        speed = rng.random()
        seed_principal = round(clip(lognormal(rng, 1_500, 0.5), 400, 6_000), -2)
        return cls(
            speed=round(speed, 3), seed_principal=seed_principal,
            growth=rng.uniform(1.0, 1.08) + speed * rng.uniform(0.0, 0.3),
            lead_hours=clip(lognormal(rng, 30 * (1.4 - speed), 0.6), 1.5, 110),
            income_share=0.05 + (1 - speed) * rng.uniform(0.2, 0.7),
            income_decay=rng.uniform(0.6, 0.95),
            predatory_weight=1 + speed * rng.uniform(2, 14),
            max_lenders=round(3 + speed ** 1.5 * rng.uniform(5, 52)),
            debt_cap=clip(lognormal(rng, seed_principal * (4 + 230 * speed ** 2), 0.5),
                          3_000, 600_000),
            reborrow=0.05 + 0.55 * speed ** 2 * rng.uniform(0.5, 1.0),
            ending=Weighted(["default", "bailout", "ongoing"], [0.5, 0.2, 0.3]).pick(rng))


@dataclass(slots=True)
class _Spiral:
    ctx: Context
    rng: random.Random
    person: Person
    shape: Shape
    candidates: list[int]
    due: list[tuple[int, int, Loan]] = field(default_factory=list)
    open: dict[int, Loan] = field(default_factory=dict)        # lender -> outstanding loan
    last_principal: dict[int, float] = field(default_factory=dict)
    rollovers: int = 0
    first_rollover: int | None = None
    loans: int = 0
    peak_debt: float = 0.0
    marks: dict[int, int] = field(default_factory=dict)        # lender -> first rollover/referral

    def lenders(self) -> list[Lender]:
        return self.ctx.world.lenders

    def pick(self) -> int | None:
        """An app without an open loan; a new one only while under ``max_lenders``."""
        lenders = self.lenders()
        fresh_allowed = len(self.last_principal) < self.shape.max_lenders
        pool = [i for i in self.candidates if i not in self.open
                and (fresh_allowed or i in self.last_principal)]
        if not pool:
            return None
        weights = [self.shape.predatory_weight if lenders[i].predatory
                   else 1.0 if lenders[i].kind == "micro" else 0.4 for i in pool]
        return Weighted(pool, weights).pick(self.rng)

    def limit(self, lender_index: int) -> float:
        lender = self.lenders()[lender_index]
        before = self.last_principal.get(lender_index)
        if before is None:
            low, high = lender.limit
            return low * float((high / low) ** self.rng.random())
        return min(before * self.rng.uniform(1.1, 1.6), lender.limit[1] * 3)

    def take(self, lender_index: int, t: int, principal: float,
             referrer: int | None = None) -> Loan:
        lender = self.lenders()[lender_index]
        terms = [term for term in lender.terms if term <= MAX_TERM] or [min(lender.terms)]
        # Fast spirals grab the shortest, cheapest-looking offer; slow ones the longest.
        term = terms[0] if self.rng.random() < self.shape.speed else terms[-1]
        loan = lend(self.ctx, self.rng, self.person, lender_index, t, principal, term=term,
                    referrer=referrer)
        self.open[lender_index] = loan
        self.last_principal[lender_index] = loan.principal
        heapq.heappush(self.due, (loan.due, self.loans, loan))
        self.loans += 1
        if referrer is not None:
            self.mark(referrer, t)
        return loan

    def mark(self, lender_index: int, t: int) -> None:
        if t < self.ctx.horizon and self.lenders()[lender_index].predatory:
            self.marks[lender_index] = min(t, self.marks.get(lender_index, t))

    def debt(self) -> float:
        return sum(loan.owed for loan in self.open.values())

    def roll(self, loan: Loan, repay_at: int) -> bool:
        """Borrow enough, just before ``repay_at``, to repay ``loan``; False if no app will."""
        rng, lenders = self.rng, self.lenders()
        need = loan.owed * self.shape.growth * rng.uniform(0.95, 1.05)
        old = lenders[loan.lender]
        referrer = loan.lender if old.partners and rng.random() < old.refer_rate else None
        funded: list[Loan] = []
        while need > 50 and len(funded) < 8:
            if referrer is not None and not funded:
                partners = [i for i in old.partners if i not in self.open]
                choice = rng.choice(partners) if partners else self.pick()
            else:
                choice = self.pick()
            if choice is None:
                break
            lead = int(clip(lognormal(rng, self.shape.lead_hours * HOUR, 0.7),
                            20 * MINUTE, 5 * DAY))
            at = max(repay_at - lead, loan.disbursed + HOUR)
            # Take what the app offers, or what is still missing if that is less.
            principal = max(min(self.limit(choice), need), lenders[choice].limit[0])
            funded.append(self.take(choice, at, principal,
                                    referrer if not funded and choice in old.partners else None))
            need -= principal
        if need > loan.owed * 0.25:
            return False
        repay(self.ctx, repay_at, self.person, loan, loan.owed)
        self.rollovers += 1
        if self.first_rollover is None:
            self.first_rollover = repay_at
        for lender_index in [loan.lender, *(new.lender for new in funded)]:
            self.mark(lender_index, repay_at)
        return True

    def bail_out(self, t: int) -> None:
        """Family pays everything off within days; the spiral ends."""
        total = self.debt()
        self.ctx.log.payment(t, self.rng.choice(self.ctx.world.external_payers),
                             self.person.account, total * self.rng.uniform(1.0, 1.05), "transfer")
        for loan in list(self.open.values()):
            repay(self.ctx, t + int(self.rng.uniform(1, 72) * HOUR), self.person, loan, loan.owed)
        self.open.clear()
        self.due.clear()

    def run(self, start: int) -> None:
        rng, shape = self.rng, self.shape
        first = self.pick()
        if first is None:
            return
        self.take(first, start, shape.seed_principal)
        if rng.random() < 0.2 + 0.4 * shape.speed:
            second = self.pick()
            if second is not None:
                self.take(second, start + int(rng.uniform(1, 10) * DAY),
                          shape.seed_principal * rng.uniform(0.5, 1.5))
        while self.due:
            due, _, loan = heapq.heappop(self.due)
            if due - DAY >= self.ctx.horizon:
                break
            del self.open[loan.lender]
            repay_at = max(due - rng.randint(0, 16 * HOUR), loan.disbursed + HOUR)
            if rng.random() < 0.15 * shape.speed:
                repay_at = due + rng.randint(0, 48 * HOUR)   # a little late
            if rng.random() < shape.income_share * shape.income_decay ** self.rollovers:
                repay(self.ctx, daytime(rng, self.ctx, repay_at), self.person, loan, loan.owed)
            elif not self.roll(loan, repay_at):
                return                                        # no app left: default
            if rng.random() < shape.reborrow and loan.lender not in self.open:
                self.take(loan.lender, repay_at + int(rng.uniform(0.2, 72) * HOUR),
                          self.limit(loan.lender))
            debt = self.debt()
            self.peak_debt = max(self.peak_debt, debt)
            if debt > shape.debt_cap:
                if shape.ending == "bailout":
                    self.bail_out(repay_at + int(rng.uniform(1, 10) * DAY))
                return                                        # default: payments stop


def generate(ctx: Context) -> None:
    rng = ctx.rng("rollover")
    lenders = ctx.world.lenders
    candidates = [i for i, lender in enumerate(lenders)
                  if lender.kind != "bank" and min(lender.terms) <= MAX_TERM]
    marks: dict[int, int] = {}
    for index in ctx.roles.spirals:
        person = ctx.world.people[index]
        shape = Shape.draw(rng)
        spiral = _Spiral(ctx, rng, person, shape, candidates)
        start = max(person.joined, int(rng.uniform(0.02, 0.6) * ctx.horizon))
        spiral.run(daytime(rng, ctx, start))
        for lender_index, t in spiral.marks.items():
            marks[lender_index] = min(t, marks.get(lender_index, t))
        ctx.truth.positive(
            ROLLOVER, "borrower", person.pid, spiral.first_rollover,
            speed=shape.speed, lenders=len(spiral.last_principal), loans=spiral.loans,
            rollovers=spiral.rollovers, first_principal=shape.seed_principal,
            peak_debt=round(spiral.peak_debt, 2), ending=shape.ending)
    for index, lender in enumerate(lenders):
        if lender.predatory:
            began = marks.get(index, ctx.first_loan.get(index))
            ctx.truth.positive(PREDATORY, "lender", lender.lender_id, began,
                               terms=list(lender.terms),
                               fee_rate=[round(r, 3) for r in lender.fee_rate],
                               refer_rate=round(lender.refer_rate, 3))
