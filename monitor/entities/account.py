"""Account state: money in and out in event time, for mule and structuring patterns.

A mule account receives person-to-person transfers from several, often first-time,
payers and forwards most of it within hours to several accounts or to cash. Its
look-alikes: merchants (wide fan-in, but customers pay by card, QR or wallet, and
payouts go to known suppliers), payroll (one funder, wide fan-out), landlords (rent from
the same tenants every month), people moving salary to savings (one payer, one payee).
Structuring: repeated outflows just under the reporting line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from monitor.entities.base import DAY, HOUR, EntityState, Finding, Reason, ramp
from monitor.events import Payment
from monitor.sketch import seen_before
from monitor.windows import FlowWindow, TimeWindow

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.events import Event
    from monitor.routing import View

_STRUCTURING_DAYS = 7.0


class AccountState(EntityState):
    """Inflows and outflows over the pass-through window, and near-line outflows.

    Inflow entries are flagged when they are person-to-person transfers; outflow entries
    when they are cash-outs. New-counterparty amounts are summed separately.
    """

    __slots__ = ("inflows", "n_in", "n_out", "near_line", "new_in", "new_out", "outflows",
                 "sketch")

    family = "account"
    patterns = ("mule_account", "structuring")
    feature_caps: ClassVar[dict[str, float]] = {
        "in_count": 200, "in_amount": 1e6, "distinct_payers": 100, "transfer_in_share": 1,
        "new_payer_share": 1, "out_count": 200, "out_amount": 1e6, "distinct_payees": 50,
        "new_payee_share": 1, "passthrough": 2, "cash_out_share": 1, "near_line_7d": 10,
        "age_days": 365,
    }

    def __init__(self) -> None:
        super().__init__()
        self.inflows: FlowWindow | None = None     # flagged: person-to-person transfer
        self.outflows: FlowWindow | None = None    # flagged: cash-out
        self.new_in: FlowWindow | None = None      # inflows from first-time payers
        self.new_out: FlowWindow | None = None     # outflows to first-time payees
        self.near_line: TimeWindow | None = None
        self.sketch = 0
        self.n_in = 0
        self.n_out = 0

    def _first_time(self, party: str) -> bool:
        known, self.sketch = seen_before(self.sketch, party)
        return not known

    def update(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        if not isinstance(event, Payment):
            return []
        ts, amount = event.ts, event.amount
        if view.role == "payee":
            self.n_in += 1
            if self.inflows is None:
                self.inflows = FlowWindow()
            self.inflows.add(ts, amount, event.payer, event.channel == "transfer")
            if self._first_time(event.payer):
                if self.new_in is None:
                    self.new_in = FlowWindow()
                self.new_in.add(ts, amount, event.payer)
        elif view.role == "payer":
            self.n_out += 1
            if self.outflows is None:
                self.outflows = FlowWindow()
            self.outflows.add(ts, amount, event.payee, event.channel == "cash_out")
            if self._first_time(event.payee):
                if self.new_out is None:
                    self.new_out = FlowWindow()
                self.new_out.add(ts, amount, event.payee)
            line = settings.reporting_line
            if line * (1 - settings.structuring_band) <= amount < line:
                if self.near_line is None:
                    self.near_line = TimeWindow()
                self.near_line.add(ts)
        return []

    def _evict(self, now: float, settings: DetectionSettings) -> None:
        oldest = now - settings.mule_window_hours * HOUR
        for name in ("inflows", "outflows", "new_in", "new_out"):
            window: FlowWindow | None = getattr(self, name)
            if window is not None:
                window.evict(oldest)
                if not window:
                    setattr(self, name, None)
        if self.near_line is not None:
            self.near_line.evict(now - _STRUCTURING_DAYS * DAY)
            if not self.near_line:
                self.near_line = None

    def candidate(self, now: float, settings: DetectionSettings) -> bool:
        self._evict(now, settings)
        return ((self.inflows is not None and self.outflows is not None
                 and self.inflows.distinct >= 2)
                or (self.near_line is not None and self.near_line.count >= 2))

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        self._evict(now, settings)
        inflows, outflows = self.inflows, self.outflows
        in_amount = inflows.total if inflows else 0.0
        out_amount = outflows.total if outflows else 0.0
        return {
            "in_count": float(inflows.count if inflows else 0),
            "in_amount": in_amount,
            "distinct_payers": float(inflows.distinct if inflows else 0),
            "transfer_in_share": inflows.flagged / in_amount if inflows and in_amount else 0.0,
            "new_payer_share": (self.new_in.total / in_amount
                                if self.new_in and in_amount else 0.0),
            "out_count": float(outflows.count if outflows else 0),
            "out_amount": out_amount,
            "distinct_payees": float(outflows.distinct if outflows else 0),
            "new_payee_share": (self.new_out.total / out_amount
                                if self.new_out and out_amount else 0.0),
            "passthrough": min(out_amount / in_amount, 2.0) if in_amount > 0 else 0.0,
            "cash_out_share": outflows.flagged / out_amount if outflows and out_amount else 0.0,
            "near_line_7d": float(self.near_line.count if self.near_line else 0),
            "age_days": self.age_days(now),
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        found = []
        payers, passthrough = features["distinct_payers"], features["passthrough"]
        p2p = features["transfer_in_share"]
        if payers >= 2 and passthrough >= 0.5 and p2p >= 0.5:
            novelty = max(features["new_payer_share"], features["new_payee_share"])
            onward = max(ramp(features["distinct_payees"], 1, 3), features["cash_out_share"])
            strength = (ramp(passthrough, 0.5, 0.8) * ramp(p2p, 0.5, 0.9)
                        * (0.4 * ramp(payers, 1, 4) + 0.3 * novelty + 0.3 * onward))
            found.append(Finding("mule_account", strength, (
                Reason("distinct_payers_24h", payers, "typical <= 1"),
                Reason("passthrough_ratio_24h", passthrough, "typical < 0.5"),
                Reason("transfer_in_share_24h", p2p, "typical < 0.5 for wide fan-in"),
                Reason("new_counterparty_share_24h", novelty, "typical < 0.3"),
                Reason("onward_spread_or_cash_24h", onward, "typical < 0.3"),
            )))
        near = features["near_line_7d"]
        if near >= 2:
            found.append(Finding("structuring", ramp(near, 1, 4), (
                Reason("outflows_just_under_line_7d", near, "typical 0"),
            )))
        return found
