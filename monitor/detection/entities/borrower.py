"""Borrower state: loans and loan repayments, for debt spirals (``rollover_loan``).

A rollover is a repayment of one loan made shortly after another loan was disbursed:
the new loan pays the old one. A spiral chains rollovers across more and more lenders,
with growing principal, short terms, high fees and apps referring the borrower onward.
Its look-alikes: ordinary borrowers (few loans, repaid from income) and a one-off debt
consolidation (one new loan repays several old ones, once).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

from monitor.contract.events import LoanDisbursal, Payment
from monitor.detection.entities.base import (
    DAY,
    HOUR,
    EntityState,
    Finding,
    Reason,
    clip01,
    prune,
    ramp,
)
from monitor.routing.views import View

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.contract.events import Event

_MAX_LOANS = 64
_HORIZON_DAYS = 90.0
_SHORT_TERM_DAYS = 14


class BorrowerState(EntityState):
    """Loans and repayments of the last 90 days; rollovers derived in event time."""

    __slots__ = ("first_principal", "loans", "repayments")

    family = "borrower"
    patterns = ("rollover_loan",)
    feature_caps: ClassVar[dict[str, float]] = {
        "loans_7d": 20, "loans_30d": 50, "distinct_lenders_30d": 30, "distinct_lenders_90d": 60,
        "rollovers_90d": 50, "funding_loans_90d": 50, "chain_depth": 30,
        "principal_growth": 100, "funded_share": 1, "referred_share_30d": 1,
        "fee_rate_30d": 1, "short_term_share_30d": 1,
    }

    def __init__(self) -> None:
        super().__init__()
        # (ts, loan_id, lender, principal, fee, term_days, referred)
        self.loans: deque[tuple[float, str, str, float, float, int, bool]] = deque(
            maxlen=_MAX_LOANS)
        # (ts, loan_id, funding loan_id or "")
        self.repayments: deque[tuple[float, str, str]] = deque(maxlen=_MAX_LOANS)
        self.first_principal = 0.0

    def update(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        if isinstance(event, LoanDisbursal):
            if not self.first_principal:
                self.first_principal = event.principal
            self.loans.append((event.ts, event.loan_id, event.lender, event.principal,
                               event.fee, event.term_days, event.referrer is not None))
            return []
        if not isinstance(event, Payment) or event.loan_id is None:
            return []
        funding = self._funding_loan(event.ts, event.loan_id,
                                     settings.rollover_window_hours * HOUR,
                                     settings.rollover_max_term_days)
        self.repayments.append((event.ts, event.loan_id, funding[1] if funding else ""))
        if funding is None:
            return []
        # Tell both lenders: one was rolled out of, the other rolled into.
        onward = [View("rollover_in", "lender", funding[2], False)]
        repaid = self._lender_of(event.loan_id)
        if repaid is not None:
            onward.append(View("rollover_out", "lender", repaid, False))
        return onward

    def _funding_loan(self, ts: float, loan_id: str, window: float,
                      max_term: int) -> tuple[float, str, str] | None:
        """The newest other loan disbursed within ``window`` before ``ts``, if short-term.

        The newest loan is the money that repays. When it is a long-term loan the repayment
        is a refinancing (a consolidation), not a rollover, even if an older short loan
        also fell inside the window: only loans of at most ``max_term`` days fund one.
        """
        best = None
        best_term = 0
        for loan_ts, other, lender, _, _, term, _ in self.loans:
            if (other != loan_id and 0 <= ts - loan_ts <= window
                    and (best is None or loan_ts > best[0])):
                best, best_term = (loan_ts, other, lender), term
        return best if best is not None and best_term <= max_term else None

    def _lender_of(self, loan_id: str) -> str | None:
        for _, other, lender, *_ in self.loans:
            if other == loan_id:
                return lender
        return None

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        prune(self.loans, now - _HORIZON_DAYS * DAY)
        prune(self.repayments, now - _HORIZON_DAYS * DAY)
        month = now - 30 * DAY
        week = now - 7 * DAY
        recent = [loan for loan in self.loans if loan[0] >= month]
        principal_30d = sum(loan[3] for loan in recent)
        n_recent = len(recent)
        rollovers = [funding for _, _, funding in self.repayments if funding]
        depth = 0
        for _, _, funding in reversed(self.repayments):
            if not funding:
                break
            depth += 1
        biggest = max((loan[3] for loan in self.loans), default=0.0)
        return {
            "loans_7d": float(sum(1 for loan in recent if loan[0] >= week)),
            "loans_30d": float(n_recent),
            "distinct_lenders_30d": float(len({loan[2] for loan in recent})),
            "distinct_lenders_90d": float(len({loan[2] for loan in self.loans})),
            "rollovers_90d": float(len(rollovers)),
            "funding_loans_90d": float(len(set(rollovers))),
            "chain_depth": float(depth),
            "principal_growth": biggest / self.first_principal if self.first_principal else 0.0,
            "funded_share": len(rollovers) / len(self.repayments) if self.repayments else 0.0,
            "referred_share_30d": (sum(1 for loan in recent if loan[6]) / n_recent
                                   if n_recent else 0.0),
            "fee_rate_30d": (sum(loan[4] for loan in recent) / principal_30d
                             if principal_30d else 0.0),
            "short_term_share_30d": (sum(1 for loan in recent if loan[5] <= _SHORT_TERM_DAYS)
                                     / n_recent if n_recent else 0.0),
        }

    def candidate(self, now: float, settings: DetectionSettings) -> bool:
        return any(funding for _, _, funding in self.repayments)

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        rollovers = features["rollovers_90d"]
        if rollovers < 1 or features["distinct_lenders_90d"] < 2:
            return []
        # One rollover across lenders is already the mechanism (a new loan repays an old
        # one); how many lenders, how fast and on what terms say how far it has gone.
        chain = ramp(features["funding_loans_90d"], 0, 1)
        juggling = ramp(features["distinct_lenders_30d"], 1, 4)
        velocity = ramp(features["loans_7d"], 1, 4)
        predatory = (features["short_term_share_30d"]
                     + ramp(features["fee_rate_30d"], 0.03, 0.15)) / 2
        strength = clip01(0.45 * chain + 0.2 * juggling + 0.1 * velocity + 0.25 * predatory)
        return [Finding("rollover_loan", strength, (
            Reason("rollover_repayments_90d", rollovers, "typical 0"),
            Reason("funding_loans_90d", features["funding_loans_90d"], "typical 0"),
            Reason("distinct_lenders_30d", features["distinct_lenders_30d"], "typical <= 2"),
            Reason("loans_7d", features["loans_7d"], "typical <= 1"),
            Reason("principal_growth", features["principal_growth"], "typical <= 1.5"),
            Reason("short_term_share_30d", features["short_term_share_30d"], "typical < 0.3"),
            Reason("fee_rate_30d", features["fee_rate_30d"], "typical < 0.03"),
        ))]
