"""Lender state: terms, fees, onward referrals and rollovers, for ``predatory_lender``.

A predatory app lends short and dear, recommends its borrowers to other apps, and its
borrowers roll over into and out of it far more than the population. Rollovers are found
on the borrower's shard and routed here as ``rollover_in`` / ``rollover_out`` views.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, ClassVar

from monitor.contract.events import LoanDisbursal
from monitor.detection.entities.base import DAY, EntityState, Finding, Reason, clip01, prune, ramp

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.contract.events import Event
    from monitor.routing.views import View

_MAX_WINDOW = 1024
_WINDOW_DAYS = 30.0
_SHORT_TERM_DAYS = 14


class LenderState(EntityState):
    """A lender's loans, referrals and rollovers over 30 days."""

    __slots__ = ("loans", "referrals", "rollovers")

    family = "lender"
    patterns = ("predatory_lender",)
    feature_caps: ClassVar[dict[str, float]] = {
        "loans_30d": 10_000, "short_term_share": 1, "fee_rate": 1, "referrals_out_30d": 10_000,
        "referral_ratio": 5, "rollovers_30d": 10_000, "rollover_share": 5,
    }

    def __init__(self) -> None:
        super().__init__()
        # (ts, principal, fee, short_term)
        self.loans: deque[tuple[float, float, float, bool]] = deque(maxlen=_MAX_WINDOW)
        self.referrals: deque[tuple[float]] = deque(maxlen=_MAX_WINDOW)
        self.rollovers: deque[tuple[float]] = deque(maxlen=_MAX_WINDOW)

    def update(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        if view.role in ("rollover_in", "rollover_out"):
            self.rollovers.append((event.ts,))
        elif isinstance(event, LoanDisbursal):
            if view.role == "lender":
                self.loans.append((event.ts, event.principal, event.fee,
                                   event.term_days <= _SHORT_TERM_DAYS))
            elif view.role == "referrer":
                self.referrals.append((event.ts,))
        return []

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        oldest = now - _WINDOW_DAYS * DAY
        prune(self.loans, oldest)
        prune(self.referrals, oldest)
        prune(self.rollovers, oldest)
        n = len(self.loans)
        principal = sum(loan[1] for loan in self.loans)
        return {
            "loans_30d": float(n),
            "short_term_share": sum(1 for loan in self.loans if loan[3]) / n if n else 0.0,
            "fee_rate": sum(loan[2] for loan in self.loans) / principal if principal else 0.0,
            "referrals_out_30d": float(len(self.referrals)),
            "referral_ratio": len(self.referrals) / n if n else 0.0,
            "rollovers_30d": float(len(self.rollovers)),
            "rollover_share": len(self.rollovers) / n if n else 0.0,
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        loans = features["loans_30d"]
        if loans < 5 or (features["rollover_share"] < 0.2 and features["referral_ratio"] < 0.2):
            return []
        # Both halves of the mechanism: it drives borrowers round (rollovers into and out of
        # it, referrals onward) and it lends short and dear. A fairly priced lender that
        # spiralling borrowers happen to use keeps at most half the strength.
        drives = clip01(0.55 * ramp(features["rollover_share"], 0.1, 0.6)
                        + 0.45 * ramp(features["referral_ratio"], 0.1, 0.5))
        terms = clip01(0.4 * features["short_term_share"]
                       + 0.6 * ramp(features["fee_rate"], 0.05, 0.15))
        strength = drives * (0.4 + 0.6 * terms)
        return [Finding("predatory_lender", strength, (
            Reason("rollover_share_30d", features["rollover_share"], "typical < 0.1"),
            Reason("referral_ratio_30d", features["referral_ratio"], "typical < 0.1"),
            Reason("short_term_share_30d", features["short_term_share"], "typical < 0.3"),
            Reason("fee_rate_30d", features["fee_rate"], "typical < 0.03"),
        ))]
