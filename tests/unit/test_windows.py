"""Flow and time windows: the running sums match a plain recomputation, and windows
pickled when they held deques restore into working windows."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from monitor.detection.features.windows import FlowWindow, TimeWindow


class _DequeFlowWindow:
    """The deque-based window as it was, the reference for the running sums."""

    def __init__(self) -> None:
        self.entries: deque[tuple[float, float, str, bool]] = deque()
        self.total = 0.0
        self.flagged = 0.0
        self.parties: dict[str, int] = {}

    def add(self, ts: float, amount: float, party: str, flagged: bool, cap: int) -> None:
        if len(self.entries) >= cap:
            self._pop()
        self.entries.append((ts, amount, party, flagged))
        self.total += amount
        if flagged:
            self.flagged += amount
        self.parties[party] = self.parties.get(party, 0) + 1

    def evict(self, oldest: float) -> bool:
        while self.entries and self.entries[0][0] < oldest:
            self._pop()
        return not self.entries

    def _pop(self) -> None:
        _, amount, party, flagged = self.entries.popleft()
        self.total -= amount
        if flagged:
            self.flagged -= amount
        left = self.parties[party] - 1
        if left:
            self.parties[party] = left
        else:
            del self.parties[party]
        if not self.entries:
            self.total = self.flagged = 0.0


_OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.floats(0, 100), st.floats(0.01, 1e6),
              st.sampled_from("abcde"), st.booleans()),
    st.tuples(st.just("evict"), st.floats(0, 100)),
), max_size=60)


@given(_OPS, st.integers(1, 6))
def test_flow_window_matches_the_deque_reference_exactly(ops: list[tuple], cap: int) -> None:
    window, reference = FlowWindow(), _DequeFlowWindow()
    for op in ops:
        if op[0] == "add":
            _, ts, amount, party, flagged = op
            window.add(ts, amount, party, flagged, cap=cap)
            reference.add(ts, amount, party, flagged, cap)
        else:
            assert window.evict(op[1]) == reference.evict(op[1])
        assert window.total == reference.total and window.flagged == reference.flagged
        assert window.count == len(reference.entries)
        assert window.distinct == len(reference.parties)
        assert list(window.entries) == list(reference.entries)
        assert bool(window) == bool(reference.entries)


@given(st.lists(st.floats(0, 100), max_size=40), st.floats(0, 100), st.integers(1, 8))
def test_time_window_keeps_what_a_deque_keeps(stamps: list[float], oldest: float,
                                              cap: int) -> None:
    window, reference = TimeWindow(), deque[tuple[float, str]]()
    for ts in stamps:
        window.add(ts, cap=cap)
        if len(reference) >= cap:
            reference.popleft()
        reference.append((ts, ""))
    window.evict(oldest)
    while reference and reference[0][0] < oldest:
        reference.popleft()
    assert window.entries == list(reference) and window.count == len(reference)


def test_windows_pickled_with_deques_restore_as_lists() -> None:
    flow = FlowWindow()
    flow.add(1.0, 10.0, "a", True)
    flow.add(2.0, 5.0, "b")
    times = TimeWindow()
    times.add(1.0)
    # As earlier versions pickled them: slotted, the entries in a deque.
    old_flow = (None, {**flow.__getstate__(), "entries": deque(flow.entries)})
    old_times = (None, {"entries": deque(times.entries)})
    flow_back, times_back = FlowWindow(), TimeWindow()
    flow_back.__setstate__(old_flow)
    times_back.__setstate__(old_times)
    assert isinstance(flow_back.entries, list) and isinstance(times_back.entries, list)
    assert flow_back.evict(1.5) is False
    assert (flow_back.total, flow_back.flagged, flow_back.distinct) == (5.0, 0.0, 1)
    times_back.evict(2.0)
    assert not times_back


def test_a_single_entry_window_holds_no_party_dict_until_a_second_entry() -> None:
    window = FlowWindow()
    window.add(1.0, 3.0, "a")
    assert window.parties is None and window.distinct == 1
    window.add(2.0, 4.0, "a")
    assert window.parties == {"a": 2} and window.distinct == 1
    assert window.evict(5.0) and window.parties is None and window.distinct == 0
