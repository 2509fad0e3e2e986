"""A small, deterministic demo sample: a debt spiral, a mule chain, structuring and
ordinary traffic around them, in the replay format (``{"topic", "key", "value"}``).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.contract.events import LABELS, LOAN_DISBURSALS, PAYMENTS

START = datetime(2026, 1, 5, tzinfo=UTC)
CHINA = timedelta(hours=8)
LENDERS = ["QuickCash", "FastLoan", "EasyMoney", "CashNow", "LoanGo", "MoneyTree", "RapidYuan",
           "PocketBank"]


class _Builder:
    def __init__(self) -> None:
        self.records: list[tuple[datetime, int, dict[str, Any]]] = []
        self.counter = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:06d}"

    @staticmethod
    def _ts(at: datetime) -> str:
        return (at + CHINA).strftime("%Y-%m-%dT%H:%M:%S+08:00")

    def add(self, at: datetime, topic: str, key: str, value: dict[str, Any]) -> None:
        self.records.append((at, self.counter, {"topic": topic, "key": key, "value": value}))

    def payment(self, at: datetime, payer: str, payee: str, amount: float, channel: str,
                **extra: Any) -> None:
        value = {"event_id": self._id("pay"), "ts": self._ts(at), "payer": payer,
                 "payee": payee, "amount": round(amount, 2), "currency": "CNY",
                 "channel": channel, **extra}
        self.add(at, PAYMENTS, payer, value)

    def loan(self, at: datetime, borrower: str, lender: str, principal: float, term: int,
             fee: float, referrer: str | None = None) -> str:
        loan_id = self._id("loan")
        value: dict[str, Any] = {
            "event_id": self._id("dis"), "ts": self._ts(at), "loan_id": loan_id,
            "borrower": borrower, "lender": lender, "principal": round(principal, 2),
            "currency": "CNY", "fee": round(fee, 2), "term_days": term,
            "account": f"acct-{borrower}",
        }
        if referrer:
            value["referrer"] = referrer
        self.add(at, LOAN_DISBURSALS, borrower, value)
        return loan_id

    def repay(self, at: datetime, borrower: str, lender: str, loan_id: str,
              amount: float) -> None:
        self.payment(at, f"acct-{borrower}", f"collect-{lender}", amount, "loan_repayment",
                     loan_id=loan_id, borrower=borrower)


def _debt_spiral(b: _Builder, borrower: str, start: datetime, steps: int) -> None:
    principal, lender = 1500.0, LENDERS[0]
    loan_id = b.loan(start, borrower, lender, principal, 7, principal * 0.2)
    at = start
    for step in range(1, steps):
        at += timedelta(days=6, hours=3)
        referrer, lender = lender, LENDERS[step % len(LENDERS)]
        owed = principal * 1.2
        principal = owed * 1.35
        new_loan = b.loan(at, borrower, lender, principal, 7, principal * 0.25, referrer)
        b.repay(at + timedelta(hours=20), borrower, referrer, loan_id, owed)
        loan_id = new_loan


def _mule_chain(b: _Builder, start: datetime, rng: random.Random) -> None:
    for hop, mule in enumerate(["mule-7731", "mule-7732"]):
        at = start + timedelta(hours=6 * hop)
        received = 0.0
        for victim in range(9):
            amount = rng.uniform(2000, 6000)
            received += amount
            b.payment(at + timedelta(minutes=17 * victim), f"victim-{hop}-{victim}", mule,
                      amount, "transfer")
        at += timedelta(hours=3)
        for out, payee in enumerate(["mule-7732" if hop == 0 else "cash-agent-1",
                                     "mule-7790", "cash-agent-2"]):
            channel = "cash_out" if payee.startswith("cash") else "transfer"
            b.payment(at + timedelta(minutes=11 * out), mule, payee, received * 0.3, channel,
                      device_id="dev-mule-farm")


def _structuring(b: _Builder, start: datetime, rng: random.Random) -> None:
    for day in range(5):
        b.payment(start + timedelta(days=day, hours=rng.randint(9, 17)), "acct-smurf-01",
                  f"acct-offshore-{day % 2}", rng.uniform(46_000, 49_900), "transfer")


def _ordinary(b: _Builder, rng: random.Random, people: int, days: int) -> None:
    for person in range(people):
        account = f"acct-person-{person:03d}"
        for month in range(days // 30 + 1):
            payday = START + timedelta(days=30 * month + 1, hours=9)
            b.payment(payday, "employer-01", account, rng.uniform(6000, 15000), "transfer")
        for _ in range(days // 3):
            at = START + timedelta(days=rng.uniform(0, days))
            b.payment(at, account, f"merchant-{rng.randint(0, 19):02d}", rng.uniform(20, 600),
                      rng.choice(["card", "qr", "wallet"]), device_id=f"dev-{person:03d}")
        if person % 10 == 0:
            at = START + timedelta(days=rng.uniform(0, days / 2))
            lender = rng.choice(LENDERS)
            loan = b.loan(at, f"person-{person:03d}", lender, rng.uniform(1000, 5000), 30, 40.0)
            b.repay(at + timedelta(days=28), f"person-{person:03d}", lender, loan, 1000.0)


def generate(seed: int = 7, people: int = 40, days: int = 45) -> list[dict[str, Any]]:
    """The sample, in event-time order, with two labels for the debt spiral and mule."""
    rng = random.Random(seed)
    b = _Builder()
    _ordinary(b, rng, people, days)
    _debt_spiral(b, "borrower-0042", START + timedelta(days=2), steps=7)
    _mule_chain(b, START + timedelta(days=10, hours=2), rng)
    _structuring(b, START + timedelta(days=20), rng)
    label_at = START + timedelta(days=days)
    for entity, entity_type, pattern in [("borrower-0042", "borrower", "rollover_loan"),
                                         ("mule-7731", "account", "mule_account")]:
        b.add(label_at, LABELS, entity, {
            "event_id": b._id("lbl"), "ts": b._ts(label_at), "entity": entity,
            "entity_type": entity_type, "pattern": pattern, "confirmed": True})
    b.records.sort(key=lambda record: (record[0], record[1]))
    return [record for _, _, record in b.records]


def invalid_examples() -> list[bytes]:
    """Messages that break the contract, for demos and tests of the dead-letter path."""
    return [
        b"not json at all",
        b'["an", "array"]',
        b'{"event_id": "bad-1", "ts": "yesterday", "payer": "a", "payee": "b",'
        b' "amount": 10, "channel": "card"}',
        b'{"event_id": "bad-2", "ts": "2026-01-05T10:00:00+08:00", "payer": "a",'
        b' "payee": "b", "amount": -5, "channel": "card"}',
        b'{"event_id": "bad-3", "ts": "2026-01-05T10:00:00+08:00", "payer": "a",'
        b' "payee": "b", "amount": 5, "channel": "telepathy"}',
    ]
