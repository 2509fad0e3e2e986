"""Account state: inflows and outflows in event time, for mule and structuring patterns."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from monitor.entities.base import DAY, HOUR, EntityState, Finding, Reason, clip01, prune
from monitor.events import Payment

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.events import Event
    from monitor.routing import View

_MAX_WINDOW = 256
_MAX_COUNTERPARTIES = 64
_STRUCTURING_DAYS = 7.0


class AccountState(EntityState):
    """Money in and out of one account over the pass-through window."""

    __slots__ = ("counterparties", "devices", "inflows", "near_line", "new_payers", "outflows")

    family = "account"
    feature_names = (
        "in_count", "in_amount", "distinct_payers", "new_payer_share", "out_count",
        "out_amount", "distinct_payees", "passthrough", "cash_out_share", "near_line_7d",
        "age_days",
    )

    def __init__(self) -> None:
        super().__init__()
        self.inflows: deque[tuple[float, float, str]] = deque(maxlen=_MAX_WINDOW)
        self.outflows: deque[tuple[float, float, str, bool]] = deque(maxlen=_MAX_WINDOW)
        self.near_line: deque[tuple[float]] = deque(maxlen=_MAX_WINDOW)
        self.counterparties: set[str] = set()
        self.new_payers: deque[tuple[float, bool]] = deque(maxlen=_MAX_WINDOW)
        self.devices: set[str] = set()

    def update(self, view: View, event: Event, settings: DetectionSettings) -> None:
        if not isinstance(event, Payment):
            return
        if view.role == "payee":
            self.inflows.append((event.ts, event.amount, event.payer))
            first_time = event.payer not in self.counterparties
            self.new_payers.append((event.ts, first_time))
            if first_time and len(self.counterparties) < _MAX_COUNTERPARTIES:
                self.counterparties.add(event.payer)
        elif view.role == "payer":
            self.outflows.append(
                (event.ts, event.amount, event.payee, event.channel == "cash_out"))
            line = settings.reporting_line
            if line * (1 - settings.structuring_band) <= event.amount < line:
                self.near_line.append((event.ts,))
            if event.device_id is not None and len(self.devices) < 8:
                self.devices.add(event.device_id)
            if len(self.counterparties) < _MAX_COUNTERPARTIES:
                self.counterparties.add(event.payee)

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        oldest = now - settings.mule_window_hours * HOUR
        prune(self.inflows, oldest)
        prune(self.outflows, oldest)
        prune(self.new_payers, oldest)
        prune(self.near_line, now - _STRUCTURING_DAYS * DAY)
        in_amount = sum(amount for _, amount, _ in self.inflows)
        out_amount = sum(amount for _, amount, _, _ in self.outflows)
        cash_out = sum(amount for _, amount, _, cash in self.outflows if cash)
        new_payers = sum(1 for _, first in self.new_payers if first)
        return {
            "in_count": float(len(self.inflows)),
            "in_amount": in_amount,
            "distinct_payers": float(len({payer for _, _, payer in self.inflows})),
            "new_payer_share": new_payers / len(self.new_payers) if self.new_payers else 0.0,
            "out_count": float(len(self.outflows)),
            "out_amount": out_amount,
            "distinct_payees": float(len({payee for _, _, payee, _ in self.outflows})),
            "passthrough": min(out_amount / in_amount, 2.0) if in_amount > 0 else 0.0,
            "cash_out_share": cash_out / out_amount if out_amount > 0 else 0.0,
            "near_line_7d": float(len(self.near_line)),
            "age_days": self.age_days(now),
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        found = []
        payers, passthrough = features["distinct_payers"], features["passthrough"]
        if payers >= 3 and passthrough >= 0.6 and features["out_count"] >= 1:
            strength = clip01((payers - 2) / 3) * clip01((passthrough - 0.5) / 0.35)
            found.append(Finding("mule_account", strength, (
                Reason("distinct_payers_24h", payers, "typical <= 2"),
                Reason("passthrough_ratio", passthrough, "typical < 0.5"),
                Reason("new_payer_share", features["new_payer_share"], "typical < 0.3"),
            )))
        near = features["near_line_7d"]
        if near >= 2:
            found.append(Finding("structuring", clip01((near - 1) / 3), (
                Reason("outflows_just_under_line_7d", near, "typical 0"),
            )))
        return found
