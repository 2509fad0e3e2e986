"""An entity's recent movements, read from its state for the console's graph."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.config import DetectionSettings
from monitor.contract.events import LOAN_DISBURSALS, PAYMENTS, Event, from_dict
from monitor.detection.entities import FAMILIES, EntityState
from monitor.interfaces.movements import movements, time_text
from monitor.routing.views import views

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


class World:
    """Entity states fed through their views, as shards would."""

    def __init__(self) -> None:
        self.settings = DetectionSettings()
        self.states: dict[str, EntityState] = {}
        self.count = 0

    def fold(self, kind: str, hours: float, **data: Any) -> None:
        self.count += 1
        event: Event = from_dict(kind, {"event_id": f"e{self.count}",
                                        "ts": (T0 + timedelta(hours=hours)).isoformat(),
                                        **data})
        pending = views(event)
        while pending:
            view = pending.pop(0)
            state = self.states.get(view.key)
            if state is None:
                state = self.states[view.key] = FAMILIES[view.entity_type]()
            pending.extend(state.observe(view, event, self.settings))

    def lend(self, hours: float, loan: str, lender: str, principal: float) -> None:
        self.fold(LOAN_DISBURSALS, hours, loan_id=loan, borrower="b-1", lender=lender,
                  principal=principal, fee=principal / 5, term_days=7, account="acct-b-1",
                  device_id="phone-1")

    def pay(self, hours: float, payer: str, payee: str, amount: float, channel: str,
            **extra: Any) -> None:
        self.fold(PAYMENTS, hours, payer=payer, payee=payee, amount=amount, channel=channel,
                  **extra)


def spiral() -> World:
    world = World()
    world.lend(0, "loan-a", "QuickCash", 1500)
    world.lend(150, "loan-b", "FastLoan", 2400)
    world.pay(166, "acct-b-1", "collect-QuickCash", 1800, "loan_repayment",
              loan_id="loan-a", borrower="b-1")
    return world


def test_a_borrowers_loans_and_rollover_repayment_with_lenders() -> None:
    world = spiral()
    graph = movements(world.states["borrower:b-1"], "borrower", "b-1")
    assert {n["id"] for n in graph["nodes"]} == {"borrower:b-1", "lender:QuickCash",
                                                   "lender:FastLoan"}
    loans = [e for e in graph["edges"] if e["kind"] == "loan"]
    assert [(e["source"], e["target"], e["amount"], e["loan_id"]) for e in loans] == [
        ("lender:QuickCash", "borrower:b-1", 1500.0, "loan-a"),
        ("lender:FastLoan", "borrower:b-1", 2400.0, "loan-b")]
    assert loans[0]["ts"] == "2026-03-02T09:00:00Z" and loans[0]["term_days"] == 7
    (repayment,) = [e for e in graph["edges"] if e["kind"] == "repayment"]
    assert repayment["source"] == "borrower:b-1" and repayment["target"] == "lender:QuickCash"
    assert repayment["amount"] is None  # not held by the borrower's state
    assert repayment["funded_by"] == "loan-b" and repayment["funded_by_lender"] == "FastLoan"
    assert graph["omitted"] == 0 and "repayment amounts are not held" in graph["held"]


def test_an_accounts_payments_in_and_out_newest_kept_under_the_limit() -> None:
    world = World()
    for n in range(5):
        world.pay(n, f"victim-{n}", "mule-1", 1000 + n, "transfer")
    world.pay(6, "mule-1", "cash-desk", 4000, "cash_out")
    world.pay(7, "mule-1", "mule-2", 900, "transfer")
    state = world.states["account:mule-1"]
    graph = movements(state, "account", "mule-1")
    assert len(graph["edges"]) == 7
    inflows = [e for e in graph["edges"] if e["target"] == "account:mule-1"]
    assert [(e["source"], e["amount"], e["channel"]) for e in inflows][:2] == [
        ("account:victim-0", 1000.0, "transfer"), ("account:victim-1", 1001.0, "transfer")]
    outflows = [(e["target"], e["amount"], e["channel"]) for e in graph["edges"]
                if e["source"] == "account:mule-1"]
    assert outflows == [("account:cash-desk", 4000.0, "cash_out"),
                        ("account:mule-2", 900.0, "transfer")]
    newest = movements(state, "account", "mule-1", limit=3)
    assert [e["ts"] for e in newest["edges"]] == [e["ts"] for e in graph["edges"][-3:]]
    assert newest["omitted"] == 4
    assert {n["id"] for n in newest["nodes"]} == {"account:mule-1", "account:victim-4",
                                                   "account:cash-desk", "account:mule-2"}


def test_a_device_shows_its_accounts_and_what_they_paid() -> None:
    world = World()
    for n in range(4):
        world.pay(n, f"farm-{n}", "hub-9", 20, "wallet", device_id="dev-1")
    graph = movements(world.states["device:dev-1"], "device", "dev-1")
    used = sorted((e["target"], e["amount"], e["payments"]) for e in graph["edges"]
                  if e["kind"] == "device")
    assert used == [(f"account:farm-{n}", 20.0, 1) for n in range(4)]
    paid = sorted(e["source"] for e in graph["edges"] if e["kind"] == "payment")
    assert paid == [f"account:farm-{n}" for n in range(4)]
    hub = next(n for n in graph["nodes"] if n["id"] == "account:hub-9")
    assert hub["hub"] is True


def test_a_lender_holds_no_counterparties() -> None:
    world = spiral()
    graph = movements(world.states["lender:QuickCash"], "lender", "QuickCash")
    assert graph["edges"] == [] and graph["nodes"] == [
        {"id": "lender:QuickCash", "entity": "QuickCash", "entity_type": "lender"}]


def test_reading_movements_changes_nothing() -> None:
    world = spiral()
    for n in range(3):
        world.pay(200 + n, f"p-{n}", "acct-b-1", 50, "transfer")
    for key, state in world.states.items():
        before = pickle.dumps(state)
        entity_type, _, entity = key.partition(":")
        movements(state, entity_type, entity, limit=1)
        assert pickle.dumps(state) == before, key


def test_an_unknown_state_is_refused_and_times_are_utc() -> None:
    with pytest.raises(TypeError):
        movements(EntityState(), "planet", "x")
    assert time_text(0.0) == "1970-01-01T00:00:00Z"
