"""The state every entity family shares: evidence ids, lazily made dicts, old checkpoints."""

from __future__ import annotations

import pickle
from collections import deque

from monitor.config import load_settings
from monitor.entities import AccountState, DeviceState
from monitor.events import Payment
from monitor.routing import View


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


def test_an_idle_entity_makes_no_label_alert_or_score_dicts() -> None:
    settings = load_settings(None).detection
    state = DeviceState()
    state.observe(View("device", "device", "d", False), _payment(1), settings)
    state.clear_scores()
    assert pickle.loads(pickle.dumps(state))._scores is None  # noqa: S301 - our own bytes
    state.alerted["fake_account:a"] = 5.0
    state.scores = {"fake_account": 0.7}
    assert state.alerted == {"fake_account:a": 5.0} and state.labels == {}
    state.clear_scores()
    assert state.scores == {}


def test_state_as_main_checkpointed_it_still_works() -> None:
    """Main pickled plain dict slots and a deque of recent events; unpickling sets each
    slot by name, which the properties accept."""
    settings = load_settings(None).detection
    state = AccountState.__new__(AccountState)
    old = {"first_ts": 1.0, "last_ts": 2.0, "labels": {"mule_account": True},
           "alerted": {"mule_account": 2.0}, "scores": {"mule_account": 0.1},
           "recent_events": deque(["x", "y"], maxlen=8), "inflows": None, "outflows": None,
           "new_in": None, "new_out": None, "near_line": None, "unrelayed": None,
           "relays": None, "sketch": 0}
    for name, value in old.items():
        setattr(state, name, value)
    state.observe(View("payer", "account", "a", True), _payment(3), settings)
    assert state.labels == {"mule_account": True} and state.alerted == {"mule_account": 2.0}
    assert state.scores == {"mule_account": 0.1}
    assert list(state.recent_events) == ["x", "y", "e3"]
    back = pickle.loads(pickle.dumps(state))  # noqa: S301 - our own bytes
    assert back.alerted == state.alerted and list(back.recent_events) == ["x", "y", "e3"]
