"""Account farms (``fake_account``): many accounts opened in sessions on one or a few
devices, each doing a few small things (collect a sign-up bonus, a token purchase) and
passing its money to a common hub, which cashes out now and then.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from monitor.tools.simulator.clock import DAY, HOUR, MINUTE
from monitor.tools.simulator.context import Context
from monitor.tools.simulator.draw import clip, lognormal
from monitor.tools.simulator.truth import FAKE


@dataclass(frozen=True, slots=True)
class Shape:
    accounts: int
    devices: int
    window_days: float          # over how long the accounts are opened
    bonus_share: float          # accounts that collect a sign-up bonus
    purchase_share: float       # accounts that make a token purchase
    hub_minutes: float          # median delay before an account pays the hub
    hub_on_farm_device: bool

    @classmethod
    def draw(cls, rng: random.Random) -> Shape:
        return cls(accounts=rng.randint(8, 80), devices=rng.randint(1, 4),
                   window_days=rng.uniform(0.3, 10), bonus_share=rng.uniform(0.3, 1.0),
                   purchase_share=rng.uniform(0.0, 0.7),
                   hub_minutes=clip(lognormal(rng, 120, 1.0), 3, 3 * 24 * 60),
                   hub_on_farm_device=rng.random() < 0.5)


def _farm(ctx: Context, rng: random.Random, number: int, shape: Shape) -> None:
    log, world = ctx.log, ctx.world
    start = int(rng.uniform(0.05, 0.8) * ctx.horizon)
    devices = [ctx.ids.device() for _ in range(shape.devices)]
    hub = ctx.ids.account()
    hub_device = devices[0] if shape.hub_on_farm_device else ctx.ids.device()
    # Accounts are opened in sessions: one device, one account every few minutes.
    clocks = [start + int(rng.random() * shape.window_days * DAY) for _ in devices]
    received: list[tuple[int, float]] = []
    for _ in range(shape.accounts):
        slot = rng.randrange(len(devices))
        clocks[slot] += int(clip(lognormal(rng, 4 * MINUTE, 0.8), 30, 2 * HOUR))
        opened, device, account = clocks[slot], devices[slot], ctx.ids.account()
        first: int | None = None
        balance = rng.uniform(1, 30)
        steps: list[tuple[int, str, str, float, str]] = []
        if rng.random() < shape.bonus_share:
            bonus = float(rng.choice([5, 8, 10, 18, 20, 38, 50]))
            steps.append((opened + rng.randint(10, 1_800), world.promo_account, account, bonus,
                          "wallet"))
            balance += bonus
        if rng.random() < shape.purchase_share:
            merchant = world.merchants[world.merchant_pick.pick(rng)]
            price = rng.uniform(1, 30)
            steps.append((opened + rng.randint(300, 2 * DAY), account, merchant.account, price,
                          "qr"))
            balance = max(1.0, balance - price)
        delay = int(clip(lognormal(rng, shape.hub_minutes * MINUTE, 0.7), MINUTE, 5 * DAY))
        for part in ([balance] if rng.random() < 0.8 else [balance / 2, balance / 2]):
            steps.append((opened + delay, account, hub, part, "wallet"))
            delay += rng.randint(HOUR, 2 * DAY)
        for t, payer, payee, amount, channel in sorted(steps):
            value = log.payment(t, payer, payee, amount, channel,
                                device=device if payer == account else None)
            if value is None:
                continue
            first = t if first is None else min(first, t)
            if payee == hub:
                received.append((t, value["amount"]))
        ctx.truth.positive(FAKE, "account", account, first, role="farm", farm=number,
                           farm_size=shape.accounts, devices=shape.devices)
    received.sort()
    pending, next_sweep = 0.0, received[0][0] + rng.randint(1, 7) * DAY if received else 0
    for t, amount in received:
        if t > next_sweep and pending:
            log.payment(next_sweep, hub, rng.choice(world.cash_agents), pending * 0.95,
                        "cash_out", device=hub_device)
            pending, next_sweep = 0.0, t + rng.randint(1, 7) * DAY
        pending += amount
    if pending:
        log.payment(next_sweep, hub, rng.choice(world.cash_agents), pending * 0.95, "cash_out",
                    device=hub_device)
    ctx.truth.positive(FAKE, "account", hub, received[0][0] if received else None, role="hub",
                       farm=number, farm_size=shape.accounts, devices=shape.devices)


def generate(ctx: Context) -> None:
    rng = ctx.rng("farms")
    for number in range(ctx.params.count(ctx.params.farms_per_1000)):
        _farm(ctx, rng, number, Shape.draw(rng))
