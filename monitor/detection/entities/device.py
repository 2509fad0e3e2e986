"""Device state: the accounts seen on one device, for ``fake_account`` farms.

Accounts made in bulk share one or a few devices, make few small payments each, and feed
a common hub. Look-alike: a household sharing a device (a few accounts, varied payees).
A device finding names the accounts it is about; the alerts are theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from monitor.contract.events import LoanDisbursal, Payment
from monitor.detection.entities.base import EntityState, Finding, Reason, ramp
from monitor.routing.views import View

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.contract.events import Event

_MAX_ACCOUNTS = 256
SHARED_DEVICE_ACCOUNTS = 3
"""Accounts on one device from which each is told it shares a device (a mule signal)."""
_MAX_PAYEES = 256


class DeviceState(EntityState):
    """Accounts on a device (payments, amount) and the payees they feed."""

    __slots__ = ("accounts", "hub", "hub_payers", "payee_payments", "payees", "told",
                 "total_amount", "total_payments")

    family = "device"
    patterns = ("fake_account",)
    feature_caps: ClassVar[dict[str, float]] = {}

    def __init__(self) -> None:
        super().__init__()
        # account -> [payments, amount]
        self.accounts: dict[str, list[float]] = {}
        # payee -> accounts of this device that paid it
        self.payees: dict[str, set[str]] = {}
        self.payee_payments: dict[str, int] = {}
        self.hub = ""
        self.hub_payers = 0
        self.total_payments = 0.0
        self.total_amount = 0.0
        # Accounts told that this device is shared (see SHARED_DEVICE_ACCOUNTS).
        self.told: set[str] | None = None

    def update(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        if isinstance(event, Payment):
            account, payee, amount = event.payer, event.payee, event.amount
        elif isinstance(event, LoanDisbursal):
            account, payee, amount = event.account, "", 0.0
        else:
            return []
        accounts = self.accounts
        stats = accounts.get(account)
        if stats is None:
            if len(accounts) >= _MAX_ACCOUNTS:
                return []
            stats = accounts[account] = [0.0, 0.0]
        if payee:
            stats[0] += 1
            stats[1] += amount
            self.total_payments += 1
            self.total_amount += amount
            payees = self.payees
            payers = payees.get(payee)
            if payers is None:
                if len(payees) >= _MAX_PAYEES:
                    return []
                payers = payees[payee] = set()
            payers.add(account)
            counts = self.payee_payments
            counts[payee] = counts.get(payee, 0) + 1
            if len(payers) > self.hub_payers:
                self.hub, self.hub_payers = payee, len(payers)
        if len(accounts) >= SHARED_DEVICE_ACCOUNTS and (self.told is None
                                                        or account not in self.told):
            # The account's own shard cannot see who else uses its device: tell it, once,
            # on the next event it makes from here.
            if self.told is None:
                self.told = set()
            self.told.add(account)
            return [View("shared_device", "account", account, False)]
        return []

    def candidate(self, now: float, settings: DetectionSettings) -> bool:
        return len(self.accounts) >= 3

    def features(self, now: float, settings: DetectionSettings) -> dict[str, float]:
        n = len(self.accounts)
        payments = self.total_payments
        return {
            "accounts": float(n),
            "hub_share": self.hub_payers / n if n else 0.0,
            "hub_payment_share": (self.payee_payments.get(self.hub, 0) / payments
                                  if payments else 0.0),
            "payments_per_account": payments / n if n else 0.0,
            "mean_payment": self.total_amount / payments if payments else 0.0,
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        accounts = features["accounts"]
        if accounts < 3 or features["hub_share"] < 0.5:
            return []
        # Several accounts on one device whose payments mostly go to one shared payee.
        # A household also shares a device, but its payments spread over many merchants.
        strength = (ramp(accounts, 2, 5) * ramp(features["hub_share"], 0.5, 0.9)
                    * ramp(features["hub_payment_share"], 0.3, 0.6)
                    * (1 - ramp(features["payments_per_account"], 8, 25))
                    * (1 - ramp(features["mean_payment"], 3000, 20000)))
        hub_payers = self.payees.get(self.hub, ())
        targets = [("account", account) for account in sorted(hub_payers)]
        targets.append(("account", self.hub))
        return [Finding("fake_account", strength, (
            Reason("accounts_on_device", accounts, "typical <= 3"),
            Reason("share_feeding_one_hub", features["hub_share"], "typical < 0.3"),
            Reason("payments_to_hub_share", features["hub_payment_share"], "typical < 0.2"),
            Reason("payments_per_account", features["payments_per_account"], "typical > 20"),
        ), targets=tuple(targets))]
