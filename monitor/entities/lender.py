"""Lender state: terms, fees and onward referrals, for ``predatory_lender``."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from monitor.entities.base import DAY, EntityState, Finding, Reason, clip01, prune
from monitor.events import LoanDisbursal

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.events import Event
    from monitor.routing import View

_MAX_WINDOW = 512
_WINDOW_DAYS = 30.0


class LenderState(EntityState):
    """A lender's loans and the referrals it makes over 30 days."""

    __slots__ = ("loans", "referrals")

    family = "lender"
    feature_names = ("loans_30d", "short_term_share", "fee_rate", "referrals_out_30d",
                     "referral_ratio")

    def __init__(self) -> None:
        super().__init__()
        # (ts, principal, fee, short_term)
        self.loans: deque[tuple[float, float, float, bool]] = deque(maxlen=_MAX_WINDOW)
        self.referrals: deque[tuple[float]] = deque(maxlen=_MAX_WINDOW)

    def update(self, view: View, event: Event, settings: DetectionSettings) -> None:
        if not isinstance(event, LoanDisbursal):
            return
        if view.role == "lender":
            self.loans.append((event.ts, event.principal, event.fee, event.term_days <= 14))
        elif view.role == "referrer":
            self.referrals.append((event.ts,))

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        prune(self.loans, now - _WINDOW_DAYS * DAY)
        prune(self.referrals, now - _WINDOW_DAYS * DAY)
        n = len(self.loans)
        principal = sum(loan[1] for loan in self.loans)
        return {
            "loans_30d": float(n),
            "short_term_share": sum(1 for loan in self.loans if loan[3]) / n if n else 0.0,
            "fee_rate": sum(loan[2] for loan in self.loans) / principal if principal else 0.0,
            "referrals_out_30d": float(len(self.referrals)),
            "referral_ratio": len(self.referrals) / n if n else float(len(self.referrals)),
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        loans, referrals = features["loans_30d"], features["referrals_out_30d"]
        if loans < 5 or referrals < 3:
            return []
        strength = (clip01(features["referral_ratio"] / 0.5)
                    * clip01(features["short_term_share"] / 0.6)
                    * clip01(features["fee_rate"] / 0.15))
        return [Finding("predatory_lender", strength, (
            Reason("referrals_out_30d", referrals, "typical 0"),
            Reason("short_term_share", features["short_term_share"], "typical < 0.2"),
            Reason("fee_rate", features["fee_rate"], "typical < 0.05"),
        ))]
