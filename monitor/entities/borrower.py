"""Borrower state: loans and repayments, for debt spirals (``rollover_loan``)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from monitor.entities.base import DAY, HOUR, EntityState, Finding, Reason, clip01, prune
from monitor.events import LoanDisbursal, Payment

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.events import Event
    from monitor.routing import View

_MAX_LOANS = 128
_HORIZON_DAYS = 90.0


class BorrowerState(EntityState):
    """Loans and loan repayments of the last 90 days.

    Rollover links are derived from the two windows in event time (a repayment of one
    loan within ``rollover_window_hours`` after another loan was disbursed), so the
    features do not depend on the order in which the two topics were consumed.
    """

    __slots__ = ("first_principal", "loans", "repayments")

    family = "borrower"
    feature_names = (
        "loans_30d", "distinct_lenders_30d", "distinct_lenders_90d", "rollover_links_90d",
        "chain_depth", "principal_growth", "funded_share", "referred_share_30d",
        "fee_rate_30d", "short_term_share_30d",
    )

    def __init__(self) -> None:
        super().__init__()
        # (ts, loan_id, lender, principal, fee, term_days, referred)
        self.loans: deque[tuple[float, str, str, float, float, int, bool]] = deque(
            maxlen=_MAX_LOANS)
        # (ts, loan_id, payee)
        self.repayments: deque[tuple[float, str, str]] = deque(maxlen=_MAX_LOANS)
        self.first_principal = 0.0

    def update(self, view: View, event: Event, settings: DetectionSettings) -> None:
        if isinstance(event, LoanDisbursal):
            if not self.first_principal:
                self.first_principal = event.principal
            self.loans.append((event.ts, event.loan_id, event.lender, event.principal,
                               event.fee, event.term_days, event.referrer is not None))
        elif isinstance(event, Payment) and event.loan_id is not None:
            self.repayments.append((event.ts, event.loan_id, event.payee))

    def _funded(self, window: float) -> list[bool]:
        """For each repayment in time order: was another loan disbursed just before it?"""
        loans = sorted((ts, loan_id) for ts, loan_id, *_ in self.loans)
        funded = []
        for ts, loan_id, _ in sorted(self.repayments):
            funded.append(any(0 <= ts - loan_ts <= window and other != loan_id
                              for loan_ts, other in loans))
        return funded

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        prune(self.loans, now - _HORIZON_DAYS * DAY)
        prune(self.repayments, now - _HORIZON_DAYS * DAY)
        recent = [loan for loan in self.loans if loan[0] >= now - 30 * DAY]
        principal_30d = sum(loan[3] for loan in recent)
        fees_30d = sum(loan[4] for loan in recent)
        n_recent = len(recent)
        funded = self._funded(settings.rollover_window_hours * HOUR)
        depth = 0
        for link in reversed(funded):
            if not link:
                break
            depth += 1
        return {
            "loans_30d": float(n_recent),
            "distinct_lenders_30d": float(len({loan[2] for loan in recent})),
            "distinct_lenders_90d": float(len({loan[2] for loan in self.loans})),
            "rollover_links_90d": float(sum(funded)),
            "chain_depth": float(depth),
            "principal_growth": (principal_30d / self.first_principal
                                 if self.first_principal else 0.0),
            "funded_share": sum(funded) / len(funded) if funded else 0.0,
            "referred_share_30d": (sum(1 for loan in recent if loan[6]) / n_recent
                                   if n_recent else 0.0),
            "fee_rate_30d": fees_30d / principal_30d if principal_30d else 0.0,
            "short_term_share_30d": (sum(1 for loan in recent if loan[5] <= 14) / n_recent
                                     if n_recent else 0.0),
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        links, lenders = features["rollover_links_90d"], features["distinct_lenders_30d"]
        if links < 2 or lenders < 3:
            return []
        strength = clip01(links / 3) * clip01((lenders - 1) / 3)
        return [Finding("rollover_loan", strength, (
            Reason("rollover_links_90d", links, "typical 0"),
            Reason("distinct_lenders_30d", lenders, "typical <= 2"),
            Reason("chain_depth", features["chain_depth"], "typical 0"),
            Reason("principal_growth", features["principal_growth"], "typical <= 1.5"),
        ))]
