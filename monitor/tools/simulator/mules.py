"""Mule rings (``mule_account``): money from scam victims passes through 1-3 layers of
accounts, each forwarding most of what it receives within minutes to hours, to the
next layer or out as cash. Most mules are freshly opened accounts; some are existing
customers who rent their account out. Some rings run every account from one phone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from monitor.tools.simulator.clock import DAY, HOUR, MINUTE
from monitor.tools.simulator.context import Chargeback, Context
from monitor.tools.simulator.draw import CONSUMER_HOURS, HourOfDay, Weighted, clip, lognormal, split
from monitor.tools.simulator.truth import MULE

CASH_LIMIT = 20_000.0


@dataclass(slots=True)
class Mule:
    account: str
    device: str
    layer: int
    inflows: list[tuple[int, float]] = field(default_factory=list)
    first_forward: int | None = None

    def forwarded(self, t: int) -> None:
        if self.first_forward is None or t < self.first_forward:
            self.first_forward = t


@dataclass(frozen=True, slots=True)
class RingShape:
    layer_sizes: tuple[int, ...]
    active_days: float
    victims_per_mule: int
    victim_amount: float        # median yuan per victim payment
    forward_minutes: float      # median delay before forwarding
    forward_share: float        # what a mule passes on (the rest is its cut)
    fan_out: int
    cash_share: float           # last layer: cash out rather than transfer to sinks
    device_mode: str            # one, few, own
    recruited_share: float

    @classmethod
    def draw(cls, rng: random.Random) -> RingShape:
        layers = Weighted([1, 2, 3], [0.15, 0.5, 0.35]).pick(rng)
        sizes = tuple([rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 2)][:layers])
        return cls(
            layer_sizes=sizes, active_days=rng.uniform(3, 35),
            victims_per_mule=rng.randint(4, 40),
            victim_amount=clip(lognormal(rng, 2_500, 0.6), 300, 20_000),
            forward_minutes=clip(lognormal(rng, 45, 0.8), 5, 360),
            forward_share=rng.uniform(0.85, 0.99), fan_out=rng.randint(1, 4),
            cash_share=rng.random(),
            device_mode=Weighted(["one", "few", "own"], [0.35, 0.25, 0.4]).pick(rng),
            recruited_share=rng.uniform(0.0, 0.6))


class _Ring:
    def __init__(self, ctx: Context, rng: random.Random, shape: RingShape, start: int,
                 recruits: list[int]) -> None:
        self.ctx, self.rng, self.shape, self.start = ctx, rng, shape, start
        self.end = start + int(shape.active_days * DAY)
        ring_devices = [ctx.ids.device() for _ in range(rng.randint(2, 3))]
        self.sinks = [ctx.ids.account() for _ in range(rng.randint(1, 3))]
        self.layers: list[list[Mule]] = []
        for layer, size in enumerate(shape.layer_sizes, start=1):
            members = []
            for _ in range(size):
                if recruits and rng.random() < shape.recruited_share:
                    person = ctx.world.people[recruits.pop()]
                    account, own = person.account, person.phone
                else:
                    account, own = ctx.ids.account(), ctx.ids.device()
                    self._warm_up(account, own)
                device = {"one": ring_devices[0], "few": rng.choice(ring_devices),
                          "own": own}[shape.device_mode]
                members.append(Mule(account, device, layer))
            self.layers.append(members)

    def _warm_up(self, account: str, device: str) -> None:
        """A new account's first, small steps, days before it starts receiving."""
        rng, world = self.rng, self.ctx.world
        for _ in range(rng.randint(0, 3)):
            t = self.start - int(rng.uniform(0.5, 20) * DAY)
            merchant = world.merchants[world.merchant_pick.pick(rng)]
            self.ctx.log.payment(t, account, merchant.account, rng.uniform(5, 120),
                                 rng.choice(["qr", "wallet"]), device=device)

    def _victims(self, mule: Mule) -> None:
        rng, ctx = self.rng, self.ctx
        hours = HourOfDay(CONSUMER_HOURS)
        waves = [self.start + int(rng.random() * (self.end - self.start))
                 for _ in range(rng.randint(1, 4))]
        for _ in range(self.shape.victims_per_mule):
            centre = rng.choice(waves)
            day = ctx.clock.day_of(centre + int(abs(rng.gauss(0, 1.2)) * DAY))
            t = min(max(ctx.clock.at(day, hours.draw(rng)), self.start), self.end)
            person = rng.choice(ctx.world.people)
            internal = rng.random() < 0.7 and person.joined <= t
            payer = person.account if internal else ctx.ids.account()
            device = person.pay_device if internal else None
            for repeat in range(1 if rng.random() < 0.8 else rng.randint(2, 3)):
                when = t + repeat * int(rng.uniform(2, 72) * HOUR)
                amount = clip(lognormal(rng, self.shape.victim_amount, 0.7), 50, 200_000)
                value = ctx.log.payment(when, payer, mule.account, amount,
                                        "transfer" if rng.random() < 0.8 else "wallet",
                                        device=device)
                if value is None:
                    continue
                mule.inflows.append((when, value["amount"]))
                if internal and rng.random() < ctx.params.chargeback_share:
                    ctx.chargebacks.append(Chargeback(
                        value, True, int(clip(lognormal(rng, 5 * DAY, 0.7), DAY, 40 * DAY))))

    def _forward(self, mule: Mule, t: int, amount: float) -> None:
        rng, log, shape = self.rng, self.ctx.log, self.shape
        total = amount * shape.forward_share * rng.uniform(0.97, 1.0)
        if mule.layer < len(self.layers):
            nexts = self.layers[mule.layer]
            targets = rng.sample(nexts, min(shape.fan_out, len(nexts)))
            for target, part in zip(targets, split(rng, total, len(targets)), strict=True):
                t += rng.randint(20, 900)
                if log.payment(t, mule.account, target.account, part, "transfer",
                               device=mule.device):
                    target.inflows.append((t, round(part, 2)))
                    mule.forwarded(t)
            return
        cash = rng.random() < shape.cash_share
        pieces = max(1, int(total // CASH_LIMIT) + 1) if cash else rng.randint(1, len(self.sinks))
        for part in split(rng, total, pieces):
            t += rng.randint(60, 1_800)
            payee = rng.choice(self.ctx.world.cash_agents) if cash else rng.choice(self.sinks)
            if log.payment(t, mule.account, payee, min(part, CASH_LIMIT) if cash else part,
                           "cash_out" if cash else "transfer", device=mule.device):
                mule.forwarded(t)

    def _pass_through(self, mule: Mule) -> None:
        """Forward pending money a short delay after it lands; later arrivals batch in."""
        rng = self.rng
        pending, scheduled = 0.0, -1
        for t, amount in sorted(mule.inflows):
            if pending and t > scheduled:
                self._forward(mule, scheduled, pending)
                pending = 0.0
            if not pending:
                delay = clip(lognormal(rng, self.shape.forward_minutes * MINUTE, 0.9),
                             2 * MINUTE, 18 * HOUR)
                scheduled = t + int(delay)
            pending += amount
        if pending:
            self._forward(mule, scheduled, pending)

    def run(self) -> list[Mule]:
        for mule in self.layers[0]:
            self._victims(mule)
        for layer in self.layers:
            for mule in layer:
                self._pass_through(mule)
        return [mule for layer in self.layers for mule in layer]


def generate(ctx: Context) -> None:
    rng = ctx.rng("mules")
    recruits = list(ctx.roles.mule_recruits)
    for ring_number in range(ctx.params.count(ctx.params.mule_rings_per_1000)):
        shape = RingShape.draw(rng)
        start = int(rng.uniform(0.05, 0.75) * ctx.horizon)
        ring = _Ring(ctx, rng, shape, start, recruits)
        mules = ring.run()
        for mule in mules:
            ctx.truth.positive(
                MULE, "account", mule.account, mule.first_forward, ring=ring_number,
                layer=mule.layer, layers=len(shape.layer_sizes), ring_size=len(mules),
                inflows=len(mule.inflows), forward_minutes=round(shape.forward_minutes, 1),
                device_mode=shape.device_mode)
