"""Account state: money in and out in event time, for mule and structuring patterns.

A mule account receives person-to-person transfers from several, often first-time,
payers and forwards most of it within hours to several accounts or to cash. Its
look-alikes: merchants (wide fan-in, but customers pay by card, QR or wallet, and
payouts go to known suppliers), payroll (one funder, wide fan-out), landlords (rent from
the same tenants every month), people moving salary to savings (one payer, one payee).
Layering shows across accounts: shards tell each other when a relay passes on money that
was itself just relayed (``relayed_in``, ``relayed_on`` views), which no single account's
flows can show.

Structuring: repeated outflows just under the reporting line, when nearly all of the
account's large outflows sit there (a business's big payouts spread over every size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from monitor.contract.events import Payment
from monitor.detection.entities.base import DAY, HOUR, EntityState, Finding, Reason, ramp
from monitor.detection.features.sketch import seen_before
from monitor.detection.features.windows import FlowWindow, TimeWindow
from monitor.routing.views import View

if TYPE_CHECKING:
    from monitor.config import DetectionSettings
    from monitor.contract.events import Event

_STRUCTURING_DAYS = 14.0
_LARGE = 0.5
"""Outflows of at least this share of the reporting line count as large."""
_MAX_LOTS = 32
_RELAYED = 0.8
"""Share of an inflow that must have moved on for the inflow to count as relayed."""
_ONWARD_CHANNELS = frozenset({"transfer", "cash_out"})
"""Channels that move money onward; card, QR and wallet payments at shops are spending."""
NOVEL_RELAY_WEIGHT = 0.05
"""Evidence a novel relay adds to a mule finding (once novelty is trusted)."""
SHARED_DEVICE_WEIGHT = 0.15
"""Evidence a device shared with other accounts adds (rings run accounts from few phones)."""
CHAIN_WEIGHT = 0.25
"""Evidence a relay of money its payer had itself just passed on adds (layering)."""
FAMILIAR_DAMPING = 0.3
"""Share of mule evidence discounted when money runs between familiar counterparties
(and the account shares no device)."""
_P2P_CHANNELS = frozenset({"transfer", "wallet"})
"""Channels a person can send money to another person on."""
_PERSON_CHANNELS = _P2P_CHANNELS | {"cash_out"}


class AccountState(EntityState):
    """Inflows and outflows over the pass-through window, and near-line outflows.

    Inflow entries are flagged when they are person-to-person transfers. Outflows count
    only money moved onward (transfers and cash-outs, flagged); new-counterparty amounts
    are summed separately.
    """

    __slots__ = ("chain_from", "chained", "inflows", "large", "lots", "near_line", "new_in",
                 "new_out", "novel_relays", "outflows", "passed", "relays", "shared_device",
                 "sketch")

    family = "account"
    patterns = ("mule_account", "structuring")
    feature_caps: ClassVar[dict[str, float]] = {
        "in_count": 200, "in_amount": 1e6, "distinct_payers": 100, "transfer_in_share": 1,
        "new_payer_share": 1, "out_count": 200, "out_amount": 1e6, "distinct_payees": 50,
        "new_payee_share": 1, "passthrough": 2, "cash_out_share": 1, "near_line_14d": 10,
        "relays_24h": 50, "novel_relays_24h": 20,
        "age_days": 365,
    }

    def __init__(self) -> None:
        super().__init__()
        self.inflows: FlowWindow | None = None     # flagged: person-to-person transfer
        self.outflows: FlowWindow | None = None    # flagged: cash-out
        self.new_in: FlowWindow | None = None      # inflows from first-time payers
        self.new_out: FlowWindow | None = None     # outflows to first-time payees
        self.near_line: TimeWindow | None = None
        self.large: TimeWindow | None = None       # outflows of half the line or more
        # Person-to-person inflows not yet passed on: [ts, amount, left, novel payer, sent
        # to novel payees]. Outflows consume them oldest first (money is fungible; FIFO
        # matches a forward split over several payees and several inflows batched into one).
        self.lots: list[list[float]] | None = None
        self.relays: TimeWindow | None = None        # inflows passed on within the window
        self.novel_relays: TimeWindow | None = None  # ... from a new payer to new payees
        self.passed: FlowWindow | None = None       # outflows' amounts paid from lots
        self.sketch = 0
        self.shared_device = False  # told by a device shard (monitor.detection.entities.device)
        # When the account last took part in a chain of relays (layering): money arrived
        # that its payer had just passed on, or money it passed on was passed on again.
        # Told by the other account's shard; ``chain_from`` is the payer to tell back.
        self.chained = 0.0
        self.chain_from = ""

    def _first_time(self, party: str) -> bool:
        known, self.sketch = seen_before(self.sketch, party)
        return not known

    def update(self, view: View, event: Event, settings: DetectionSettings) -> list[View]:
        role = view.role
        if role == "shared_device":
            self.shared_device = True
            return []
        if role == "relayed_in" or role == "relayed_on":
            if event.ts > self.chained:
                self.chained = event.ts
            if role == "relayed_in" and isinstance(event, Payment):
                self.chain_from = event.payer
            return []
        if not isinstance(event, Payment):
            return []
        ts, amount = event.ts, event.amount
        onward: list[View] = []
        if role == "payee":
            if self.inflows is None:
                self.inflows = FlowWindow()
            channel = event.channel
            self.inflows.add(ts, amount, event.payer, channel == "transfer")
            novel = self._first_time(event.payer)
            if novel:
                if self.new_in is None:
                    self.new_in = FlowWindow()
                self.new_in.add(ts, amount, event.payer)
            if channel in _P2P_CHANNELS:
                if self.lots is None:
                    self.lots = []
                self.lots.append([ts, amount, amount, 1.0 if novel else 0.0, 0.0])
                del self.lots[:-_MAX_LOTS]
        elif role == "payer":
            channel = event.channel
            # Shop payments (card, QR) say nothing about whom the account knows.
            novel = channel in _PERSON_CHANNELS and self._first_time(event.payee)
            if channel in _ONWARD_CHANNELS:
                if self.outflows is None:
                    self.outflows = FlowWindow()
                cash = channel == "cash_out"
                self.outflows.add(ts, amount, event.payee, cash)
                if novel:
                    if self.new_out is None:
                        self.new_out = FlowWindow()
                    self.new_out.add(ts, amount, event.payee)
                if self.lots:
                    funded, from_strangers = self._pass_on(ts, amount, novel or cash,
                                                           settings)
                    if funded > 0:
                        if self.passed is None:
                            self.passed = FlowWindow()
                        self.passed.add(ts, funded, "")
                        if funded >= _RELAYED * amount:
                            self._chain(event, cash, from_strangers >= 0.5 * funded,
                                        settings, onward)
            line = settings.reporting_line
            if amount >= _LARGE * line:
                if self.large is None:
                    self.large = TimeWindow()
                self.large.add(ts)
                if line * (1 - settings.structuring_band) <= amount < line:
                    if self.near_line is None:
                        self.near_line = TimeWindow()
                    self.near_line.add(ts)
        return onward

    def _chain(self, event: Payment, cash: bool, from_strangers: bool,
               settings: DetectionSettings, onward: list[View]) -> None:
        """A relay: tell the accounts on either side of a layering chain.

        Neither shard sees the other's money: the payee learns that what it received was
        passed on (when it came from strangers, or the account is in a chain already),
        and the account that sent the money this relay passes on learns it went further.
        """
        in_chain = self._in_chain(event.ts, settings)
        if not cash and (from_strangers or in_chain):
            onward.append(View("relayed_in", "account", event.payee, False))
        if self.chain_from and in_chain:
            onward.append(View("relayed_on", "account", self.chain_from, False))
            self.chain_from = ""

    def _in_chain(self, now: float, settings: DetectionSettings) -> bool:
        """Whether the account took part in a chain of relays within the window."""
        return bool(self.chained) and now - self.chained <= settings.mule_window_hours * HOUR

    def _pass_on(self, ts: float, amount: float, to_new: bool,
                 settings: DetectionSettings) -> tuple[float, float]:
        """An outflow consumes the oldest recent inflows; fully passed-on ones are relays.

        An inflow counts as relayed once 80 % of it has moved on within the window, and as
        a novel relay when it came from a first-time payer and moved on to first-time payees
        or to cash: the shape of a mule's pass-through from its first victim on. Returns
        how much of the outflow recent inflows paid for, and how much of that first-time
        payers' inflows.
        """
        lots = self.lots
        if not lots:
            return 0.0, 0.0
        from_strangers = 0.0
        oldest = ts - settings.mule_window_hours * HOUR
        left = amount
        done = 0
        for lot in lots:
            if left <= 0:
                break
            if lot[0] < oldest or lot[0] > ts:
                continue
            take = lot[2] if lot[2] < left else left
            lot[2] -= take
            left -= take
            if lot[3]:
                from_strangers += take
            if to_new:
                lot[4] += take
            if lot[2] <= (1 - _RELAYED) * lot[1]:
                done += 1
                if self.relays is None:
                    self.relays = TimeWindow()
                self.relays.add(ts)
                if lot[3] and lot[4] >= _RELAYED * lot[1]:
                    if self.novel_relays is None:
                        self.novel_relays = TimeWindow()
                    self.novel_relays.add(ts)
                lot[1] = 0.0  # spent: dropped below
        if done:
            self.lots = [lot for lot in lots if lot[1] > 0] or None
        return amount - left, from_strangers

    def _evict(self, now: float, settings: DetectionSettings) -> None:
        oldest = now - settings.mule_window_hours * HOUR
        # Unrolled over the four flow windows: this runs on every account view.
        window = self.inflows
        if window is not None and window.evict(oldest):
            self.inflows = None
        window = self.outflows
        if window is not None and window.evict(oldest):
            self.outflows = None
        window = self.new_in
        if window is not None and window.evict(oldest):
            self.new_in = None
        window = self.new_out
        if window is not None and window.evict(oldest):
            self.new_out = None
        window = self.passed
        if window is not None and window.evict(oldest):
            self.passed = None
        if self.relays is not None:
            self.relays.evict(oldest)
            if not self.relays:
                self.relays = None
        if self.novel_relays is not None:
            self.novel_relays.evict(oldest)
            if not self.novel_relays:
                self.novel_relays = None
        if self.lots and self.lots[0][0] < oldest:
            self.lots = [lot for lot in self.lots if lot[0] >= oldest] or None
        if self.near_line is not None:
            self.near_line.evict(now - _STRUCTURING_DAYS * DAY)
            if not self.near_line:
                self.near_line = None
        if self.large is not None:
            self.large.evict(now - _STRUCTURING_DAYS * DAY)
            if not self.large:
                self.large = None

    def candidate(self, now: float, settings: DetectionSettings) -> bool:
        self._evict(now, settings)
        inflows, outflows = self.inflows, self.outflows
        return ((inflows is not None and outflows is not None
                 and outflows.total >= 0.5 * inflows.total
                 and inflows.flagged >= 0.5 * inflows.total)
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
            "near_line_14d": float(self.near_line.count if self.near_line else 0),
            # Of the large outflows, the share just under the line: a business paying big
            # sums spreads them over every size and crosses the line; a structurer does not.
            "near_line_share": (self.near_line.count / self.large.count
                                if self.near_line and self.large else 0.0),
            "relays_24h": float(self.relays.count if self.relays else 0),
            "novel_relays_24h": float(self.novel_relays.count if self.novel_relays else 0),
            "age_days": self.age_days(now),
            "shared_device": 1.0 if self.shared_device else 0.0,
            "relayed_out_share": (self.passed.total / out_amount
                                  if self.passed and out_amount else 0.0),
            "chained": 1.0 if self._in_chain(now, settings) else 0.0,
        }

    def findings(self, features: dict[str, float], settings: DetectionSettings) -> list[Finding]:
        found = []
        payers, passthrough = features["distinct_payers"], features["passthrough"]
        p2p, payees = features["transfer_in_share"], features["distinct_payees"]
        material = settings.mule_min_amount
        if payers >= 1 and passthrough >= 0.5 and p2p >= 0.5 and payees >= 1:
            onward = max(ramp(payees, 1, 3), features["cash_out_share"])
            # Pass-through of person-to-person money, damped for wide fan-out (payroll: mules
            # pass money to a handful of accounts) and for sums too small to matter.
            # Out well above in, and outflows the recent inflows did not pay for (sent
            # before the money arrived), are the account's own spending, not a pass-through.
            core = (ramp(passthrough, 0.5, 0.8) * (1 - ramp(passthrough, 1.2, 1.6))
                    * ramp(p2p, 0.5, 0.9) * (1 - ramp(payees, 6, 12))
                    * ramp(features["in_amount"], 0.2 * material, material)
                    * ramp(features["relayed_out_share"], 0.3, 0.6))
            # Counterparty novelty means little until the monitor has watched for a while.
            trust = ramp(features.get("observed_days", 35.0), 7, 35)
            evidence = (0.3 * ramp(features["relays_24h"], 0, 2) + 0.2 * ramp(payers, 1, 3)
                        + 0.2 * onward + SHARED_DEVICE_WEIGHT * features["shared_device"]
                        + trust * (0.15 * (features["new_payer_share"]
                                           + features["new_payee_share"])
                                   + NOVEL_RELAY_WEIGHT * ramp(features["novel_relays_24h"],
                                                               0, 1)
                                   + CHAIN_WEIGHT * features["chained"]
                                   * ramp(features["relays_24h"], 0, 1)))
            # Money between familiar parties (known payers to known payees: rent swept to
            # a mortgage) is household finance; mules move money between strangers, or
            # between ring members, who share devices.
            shared = features["shared_device"]
            familiar = trust * (1 - max(features["new_payer_share"],
                                        features["new_payee_share"])) * (1 - shared)
            evidence *= 1 - FAMILIAR_DAMPING * familiar
            found.append(Finding("mule_account", min(1.0, core * evidence), (
                Reason("passthrough_ratio_24h", passthrough, "typical < 0.5"),
                Reason("relayed_inflows_24h", features["relays_24h"], "typical 0"),
                Reason("new_payer_to_new_payee_relays_24h", features["novel_relays_24h"],
                       "typical 0"),
                Reason("transfer_in_share_24h", p2p, "typical < 0.5"),
                Reason("distinct_payers_24h", payers, "typical <= 1"),
                Reason("new_payer_share_24h", features["new_payer_share"], "typical < 0.3"),
                Reason("new_payee_share_24h", features["new_payee_share"], "typical < 0.3"),
                Reason("onward_spread_or_cash_24h", onward, "typical < 0.3"),
                Reason("device_shared_with_others", shared, "typical 0"),
                Reason("received_relayed_money_24h", features["chained"], "typical 0"),
            )))
        near = features["near_line_14d"]
        if near >= 2:
            share = features["near_line_share"]
            found.append(Finding("structuring", ramp(near, 1, 4) * ramp(share, 0.5, 0.9), (
                Reason("outflows_just_under_line_14d", near, "typical 0"),
                Reason("large_outflows_just_under_line_share_14d", share, "typical < 0.3"),
            )))
        return found
