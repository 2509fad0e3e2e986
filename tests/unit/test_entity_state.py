"""The state every entity family shares: evidence ids, scores, old checkpoints."""

from __future__ import annotations

import pickle
from collections import deque

from monitor.config import load_settings
from monitor.contract.events import Payment
from monitor.detection.entities import AccountState, DeviceState
from monitor.routing.views import View


def _payment(number: int) -> Payment:
    return Payment(event_id=f"e{number}", ts=1_767_196_800.0 + number, ts_text="t",
                   payer="a", payee="b", amount=10.0, currency="CNY", channel="card")


def test_recent_events_keep_the_newest_ids_oldest_first() -> None:
    settings = load_settings(None).detection
    state = AccountState()
    for number in range(12):
        state.observe(View("payer", "account", "a", True), _payment(number), settings)
    assert list(state.recent_events) == [f"e{n}" for n in range(4, 12)]
    assert state.first_ts == _payment(0).ts and state.last_ts == _payment(11).ts


def test_a_second_view_of_one_event_is_one_piece_of_evidence() -> None:
    settings = load_settings(None).detection
    state = AccountState()
    state.observe(View("payer", "account", "a", True), _payment(1), settings)
    state.observe(View("shared_device", "account", "a", False), _payment(1), settings)
    assert list(state.recent_events) == ["e1"]


def test_clear_scores_forgets_the_last_scores() -> None:
    state = DeviceState()
    state.scores = {"fake_account": 0.7}
    state.clear_scores()
    assert state.scores == {}


def test_state_with_a_deque_of_recent_events_still_works() -> None:
    """Checkpoints from before hold the evidence ids in a ``deque(maxlen=8)``."""
    settings = load_settings(None).detection
    state = DeviceState()
    state.recent_events = deque([f"old{n}" for n in range(8)], maxlen=8)
    state.observe(View("device", "device", "d", False), _payment(3), settings)
    assert list(state.recent_events) == [*(f"old{n}" for n in range(1, 8)), "e3"]
    back = pickle.loads(pickle.dumps(state))  # noqa: S301 - our own bytes
    assert list(back.recent_events) == list(state.recent_events)


def test_a_device_tells_each_account_once_that_it_is_shared() -> None:
    settings = load_settings(None).detection
    device = DeviceState()
    view = View("device", "device", "dev-1", False)

    def pay(number: int, payer: str) -> list[View]:
        event = Payment(event_id=f"d{number}", ts=1.7e9 + number, ts_text="t", payer=payer,
                        payee="shop", amount=10.0, currency="CNY", channel="qr",
                        device_id="dev-1")
        return device.observe(view, event, settings)

    assert pay(1, "a") == [] and pay(2, "b") == []
    told = View("shared_device", "account", "c", False)
    assert pay(3, "c") == [told]  # the third account on the device
    assert pay(4, "c") == []      # once
    assert pay(5, "a") == [View("shared_device", "account", "a", False)]
