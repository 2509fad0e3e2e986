"""The dedup window: a ring of the last N tokens with set membership."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from monitor.state.dedup import DedupWindow, unpacked


def test_the_window_forgets_the_oldest_tokens_first() -> None:
    window = DedupWindow(3)
    assert [window.add(token) for token in "abc"] == [True] * 3
    assert not window.add("b")
    assert window.add("d")  # "a" leaves
    assert "a" not in window and list(window) == ["b", "c", "d"]
    assert window.add("a") and list(window) == ["c", "d", "a"]
    assert len(window) == 3


def test_the_window_wraps_round_many_times_in_order() -> None:
    window = DedupWindow(5)
    for number in range(23):
        window.add(str(number))
    assert list(window) == [str(n) for n in range(18, 23)]
    assert all(str(n) not in window for n in range(18))


@pytest.mark.parametrize("tokens", [["e1\x1fpayer", "e2\x1fpayee"], ["odd\x00id\x1fpayer", "x"],
                                    []])
def test_packed_tokens_unpack_in_order(tokens: list[str]) -> None:
    window = DedupWindow(10, tokens)
    assert unpacked(window.packed()) == tokens


def test_checkpoints_from_before_the_ring_unpack() -> None:
    assert unpacked(OrderedDict.fromkeys(["a", "b"])) == ["a", "b"]
    with pytest.raises(TypeError):
        unpacked(3)


def test_a_smaller_window_keeps_the_newest_tokens() -> None:
    assert list(DedupWindow(2, ["a", "b", "c"])) == ["b", "c"]


def test_a_window_of_size_zero_remembers_nothing() -> None:
    window = DedupWindow(0, ["a"])
    assert window.add("a") and window.add("a") and len(window) == 0
