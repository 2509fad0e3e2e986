"""Which loan funds a repayment: the newest one, and only a short-term one is a rollover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.config import DetectionSettings
from monitor.contract.events import LOAN_DISBURSALS, PAYMENTS, Event, from_dict
from monitor.detection.entities.borrower import BorrowerState
from monitor.routing.views import views

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ME = "cust-me"


class Borrower:
    def __init__(self) -> None:
        self.settings = DetectionSettings()
        self.state = BorrowerState()
        self.count = 0
        self.onward: list[str] = []

    def _fold(self, kind: str, data: dict[str, object]) -> None:
        self.count += 1
        event: Event = from_dict(kind, {"event_id": f"e{self.count}", **data})
        for view in views(event):
            if view.entity == ME:
                self.onward += [v.role for v in self.state.observe(view, event, self.settings)]

    def lend(self, loan: str, lender: str, hours: float, term_days: int) -> None:
        self._fold(LOAN_DISBURSALS, {
            "ts": (T0 + timedelta(hours=hours)).isoformat(), "loan_id": loan,
            "borrower": ME, "lender": lender, "principal": 1_500, "fee": 300,
            "term_days": term_days, "account": "acct-me"})

    def repay(self, loan: str, hours: float) -> None:
        self._fold(PAYMENTS, {
            "ts": (T0 + timedelta(hours=hours)).isoformat(), "payer": "acct-me",
            "payee": "acct-lender", "amount": 1_800, "channel": "loan_repayment",
            "loan_id": loan, "borrower": ME})

    def rollovers(self) -> float:
        return self.state.features(T0.timestamp() + 30 * 86_400,
                                   self.settings)["rollovers_90d"]


def test_a_repayment_funded_by_a_fresh_short_loan_is_a_rollover() -> None:
    borrower = Borrower()
    borrower.lend("loan-a", "app-1", 0, term_days=7)
    borrower.lend("loan-b", "app-2", 160, term_days=7)
    borrower.repay("loan-a", 166)
    assert borrower.rollovers() == 1
    assert borrower.onward == ["rollover_in", "rollover_out"]


def test_a_long_loan_repaying_short_ones_is_a_refinancing_even_after_a_short_loan() -> None:
    borrower = Borrower()
    borrower.lend("loan-a", "app-1", 0, term_days=14)
    borrower.lend("loan-b", "app-2", 200, term_days=14)
    borrower.lend("loan-bank", "bank-1", 230, term_days=360)
    borrower.repay("loan-a", 240)
    borrower.repay("loan-b", 241)
    assert borrower.rollovers() == 0
    assert borrower.onward == []


def strength(borrower: Borrower, hours: float) -> float:
    features = borrower.state.features(T0.timestamp() + hours * 3_600, borrower.settings)
    found = borrower.state.findings(features, borrower.settings)
    return found[0].strength if found else 0.0


def test_the_first_rollover_across_lenders_on_short_costly_loans_is_already_strong() -> None:
    # Score = 0.85 x strength + 0.15 x anomaly: at 0.65 the first rollover alerts (>= 0.6)
    # with any anomaly score of 0.3 or more, so a spiral is flagged at its first step.
    borrower = Borrower()
    borrower.lend("loan-a", "app-1", 0, term_days=7)
    borrower.lend("loan-b", "app-2", 160, term_days=7)
    assert strength(borrower, 161) == 0.0
    borrower.repay("loan-a", 166)
    first = strength(borrower, 167)
    assert first >= 0.65
    borrower.lend("loan-c", "app-3", 300, term_days=7)
    borrower.lend("loan-d", "app-4", 310, term_days=7)
    borrower.repay("loan-b", 320)
    assert strength(borrower, 321) > first  # more lenders, faster: further down
