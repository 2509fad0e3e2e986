"""The account family's pass-through mechanics: relays, novelty, fan-out, materiality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.config import DetectionSettings
from monitor.contract.events import PAYMENTS, Event, from_dict
from monitor.detection.entities.account import AccountState
from monitor.routing.views import View, views

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ME = "acct-me"
TRUSTED = 60.0  # the monitor has watched two monthly cycles: novelty counts in full


class Account:
    """One AccountState fed with payments in event time."""

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self.state = AccountState()
        self.count = 0

    def pay(self, payer: str, payee: str, amount: float, minutes: float,
            channel: str = "transfer") -> Event:
        self.count += 1
        event = from_dict(PAYMENTS, {
            "event_id": f"e{self.count}", "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
            "payer": payer, "payee": payee, "amount": amount, "channel": channel})
        for view in views(event):
            if view.entity == ME:
                self.state.observe(view, event, self.settings)
        return event

    def features(self, minutes: float) -> dict[str, float]:
        now = (T0 + timedelta(minutes=minutes)).timestamp()
        features = self.state.features(now, self.settings)
        features["observed_days"] = TRUSTED
        return features

    def mule_strength(self, minutes: float) -> float:
        found = {f.pattern: f.strength
                 for f in self.state.findings(self.features(minutes), self.settings)}
        return found.get("mule_account", 0.0)


def test_an_inflow_forwarded_in_parts_to_new_payees_is_a_novel_relay() -> None:
    account = Account()
    account.pay("victim-1", ME, 5_000, 0)
    account.pay(ME, "next-a", 2_600, 40)
    assert account.features(41)["relays_24h"] == 0  # only half has moved on so far
    account.pay(ME, "next-b", 2_300, 42)
    features = account.features(43)
    assert features["relays_24h"] == 1
    assert features["novel_relays_24h"] == 1


def test_inflows_batched_into_one_forward_are_each_relayed() -> None:
    account = Account()
    account.pay("victim-1", ME, 1_500, 0)
    account.pay("victim-2", ME, 2_500, 10)
    account.pay(ME, "next-a", 3_900, 50)
    assert account.features(51)["novel_relays_24h"] == 2


def test_money_sent_to_a_known_payee_is_a_relay_but_not_a_novel_one() -> None:
    account = Account()
    account.pay(ME, "savings", 100, 0)
    account.pay("employer", ME, 9_000, 60)
    account.pay(ME, "savings", 8_500, 120)
    features = account.features(121)
    assert features["relays_24h"] == 1
    assert features["novel_relays_24h"] == 0


def test_a_wallet_payment_makes_a_payee_known_but_a_shop_payment_does_not() -> None:
    account = Account()
    account.pay(ME, "friend", 50, 0, channel="wallet")
    account.pay(ME, "shop", 50, 1, channel="qr")
    account.pay("stranger-1", ME, 4_000, 60)
    account.pay(ME, "friend", 3_900, 90)
    assert account.features(91)["novel_relays_24h"] == 0
    account.pay("stranger-2", ME, 4_000, 100)
    account.pay(ME, "shop", 3_900, 130)
    assert account.features(131)["novel_relays_24h"] == 1


def test_money_kept_is_not_a_relay() -> None:
    account = Account()
    account.pay("employer", ME, 10_000, 0)
    account.pay(ME, "savings", 3_000, 90)
    assert account.features(91)["relays_24h"] == 0


def test_a_forward_after_the_window_is_not_a_relay() -> None:
    settings = DetectionSettings(mule_window_hours=6)
    account = Account(settings)
    account.pay("victim-1", ME, 5_000, 0)
    account.pay(ME, "next-a", 4_900, 7 * 60)
    assert account.features(7 * 60 + 1)["relays_24h"] == 0


def mule(account: Account, amount: float, payees: int) -> None:
    """Two victims' transfers, each passed on within the hour, split over ``payees``."""
    for wave in range(2):
        at = wave * 180
        account.pay(f"victim-{wave}", ME, amount, at)
        for n in range(payees):
            account.pay(ME, f"next-{n}", 0.95 * amount / payees, at + 30 + n)


def test_a_fresh_pass_through_is_a_strong_mule_finding() -> None:
    account = Account()
    mule(account, 4_000, payees=2)
    assert account.mule_strength(215) >= 0.7


def test_wide_fan_out_is_damped_as_payroll() -> None:
    narrow, wide = Account(), Account()
    mule(narrow, 40_000, payees=3)
    mule(wide, 40_000, payees=15)
    assert wide.mule_strength(215) == 0.0 < narrow.mule_strength(215)


def test_small_sums_weigh_less() -> None:
    small, large = Account(), Account()
    mule(small, 150, payees=2)
    mule(large, 4_000, payees=2)
    assert small.mule_strength(215) < 0.5 * large.mule_strength(215)


@pytest.mark.parametrize("trusted", [0.0, TRUSTED])
def test_novelty_counts_only_once_the_monitor_has_watched_a_month(trusted: float) -> None:
    account = Account()
    mule(account, 4_000, payees=1)
    features = account.features(215)
    features["observed_days"] = trusted
    found = {f.pattern: f.strength
             for f in account.state.findings(features, account.settings)}
    if trusted:
        assert found["mule_account"] > 0.6
    else:
        assert found["mule_account"] < 0.5


def test_state_of_an_earlier_version_restores() -> None:
    account = Account()
    mule(account, 4_000, payees=2)
    slots: dict[str, Any] = dict(account.state.__getstate__())
    slots.pop("lots")
    slots.pop("novel_relays")
    slots["unrelayed"] = [(T0.timestamp(), 100.0)]  # a slot this version dropped
    restored = AccountState.__new__(AccountState)
    restored.__setstate__((None, slots))
    assert restored.lots is None
    assert restored.novel_relays is None
    assert restored.features(T0.timestamp() + 3_600, account.settings)["in_count"] == 2


def sweep(account: Account, days: int) -> None:
    """Three tenants' rents each swept within the hour to the one account always paid."""
    for day in range(days):
        at = day * 24 * 60
        for tenant in range(3):
            account.pay(f"tenant-{tenant}", ME, 3_000, at + tenant * 120)
            account.pay(ME, "mortgage", 2_900, at + tenant * 120 + 40)


def test_money_between_familiar_parties_weighs_less_than_between_strangers() -> None:
    familiar, strangers = Account(), Account()
    sweep(familiar, days=2)  # the second day: every payer and the payee are known
    for tenant in range(6):
        strangers.pay(f"stranger-{tenant}", ME, 3_000, tenant * 120)
        strangers.pay(ME, f"new-{tenant}", 2_900, tenant * 120 + 40)
    assert familiar.features(24 * 60 + 400)["new_payer_share"] == 0.0
    assert familiar.mule_strength(24 * 60 + 400) < strangers.mule_strength(400)


def test_an_account_told_it_shares_a_device_is_not_discounted_for_familiarity() -> None:
    alone, shared = Account(), Account()
    shared.state.observe(View("shared_device", "account", ME, False),
                         shared.pay("someone", "else", 1.0, -60), shared.settings)
    assert shared.state.shared_device and not alone.state.shared_device
    sweep(alone, days=2)
    sweep(shared, days=2)
    minutes = 24 * 60 + 400
    assert shared.features(minutes)["shared_device"] == 1.0
    assert shared.mule_strength(minutes) > alone.mule_strength(minutes)


def test_an_outflow_sent_before_the_money_arrived_is_not_a_pass_through() -> None:
    # Paid a bill, then reimbursed: out over in like a relay, but in the wrong order.
    reimbursed, relayed = Account(), Account()
    reimbursed.pay("friend-1", ME, 120, 0)
    reimbursed.pay(ME, "shop-owner", 3_000, 40)
    reimbursed.pay("stranger-1", ME, 2_700, 150)
    relayed.pay("stranger-1", ME, 2_820, 0)
    relayed.pay(ME, "next-a", 3_000, 40)
    assert reimbursed.features(151)["relayed_out_share"] < 0.1
    assert relayed.features(41)["relayed_out_share"] > 0.9
    assert reimbursed.mule_strength(151) == 0.0 < relayed.mule_strength(41)


def fold(state: AccountState, account: str, payer: str, payee: str, amount: float,
         minutes: float, settings: DetectionSettings) -> list[View]:
    """Fold a payment into ``account``'s state; the views it routes onward."""
    event = from_dict(PAYMENTS, {
        "event_id": f"{payer}-{payee}-{minutes}",
        "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
        "payer": payer, "payee": payee, "amount": amount, "channel": "transfer"})
    onward: list[View] = []
    for view in views(event):
        if view.entity == account:
            onward += state.observe(view, event, settings)
    return onward


def test_a_chain_of_relays_is_told_to_the_accounts_on_either_side() -> None:
    settings = DetectionSettings()
    first, second = AccountState(), AccountState()
    fold(first, "mule-1", "victim", "mule-1", 5_000, 0, settings)
    told = fold(first, "mule-1", "mule-1", "mule-2", 4_800, 30, settings)
    assert told == [View("relayed_in", "account", "mule-2", False)]
    fold(second, "mule-2", "mule-1", "mule-2", 4_800, 30, settings)
    payment = from_dict(PAYMENTS, {
        "event_id": "mule-1-mule-2-30", "ts": (T0 + timedelta(minutes=30)).isoformat(),
        "payer": "mule-1", "payee": "mule-2", "amount": 4_800, "channel": "transfer"})
    assert second.observe(told[0], payment, settings) == []
    told_back = fold(second, "mule-2", "mule-2", "cash-agent", 4_600, 70, settings)
    assert View("relayed_on", "account", "mule-1", False) in told_back
    first.observe(View("relayed_on", "account", "mule-1", False), payment, settings)
    now = (T0 + timedelta(minutes=71)).timestamp()
    assert first.features(now, settings)["chained"] == 1.0
    assert second.features(now, settings)["chained"] == 1.0
    assert second.chain_from == ""  # told back once


def test_money_from_known_payers_relayed_outside_a_chain_is_not_told_onward() -> None:
    settings = DetectionSettings()
    state = AccountState()
    fold(state, ME, ME, "employer", 1, -60, settings)  # the employer is known
    fold(state, ME, "employer", ME, 9_000, 0, settings)
    assert fold(state, ME, ME, "landlord", 8_500, 60, settings) == []


def test_a_relay_in_a_chain_is_stronger_mule_evidence() -> None:
    alone, chained = Account(), Account()
    for account in (alone, chained):
        account.pay("stranger-1", ME, 4_000, 0)
        account.pay(ME, "next-a", 3_800, 30)
    chained.state.chained = (T0 + timedelta(minutes=31)).timestamp()
    assert chained.mule_strength(32) > alone.mule_strength(32) + 0.2


def near_line_strength(account: Account, minutes: float) -> float:
    found = {f.pattern: f.strength
             for f in account.state.findings(account.features(minutes), account.settings)}
    return found.get("structuring", 0.0)


def test_large_outflows_all_just_under_the_line_over_two_weeks_are_structuring() -> None:
    account = Account()
    for day, amount in enumerate((46_800, 44_500, 47_100)):
        account.pay(ME, f"payee-{day}", amount, day * 4 * 24 * 60)
    assert near_line_strength(account, 9 * 24 * 60) > 0.6


def test_a_business_whose_big_payouts_span_every_size_is_not_structuring() -> None:
    account = Account()
    amounts = (46_800, 31_000, 44_500, 27_500, 39_000, 47_100, 25_800, 36_200)
    for n, amount in enumerate(amounts):
        account.pay(ME, f"supplier-{n % 3}", amount, n * 24 * 60)
    assert account.features(8 * 24 * 60)["near_line_14d"] == 3
    assert near_line_strength(account, 8 * 24 * 60) == 0.0
