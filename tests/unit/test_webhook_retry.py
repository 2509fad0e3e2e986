"""Backoff with jitter and Retry-After parsing."""

from __future__ import annotations

import random

import pytest

from monitor.outputs.webhooks.retry import Backoff, parse_retry_after


def test_steps_double_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, cap=10.0)
    assert [backoff.step(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.step(10_000) == 10


def test_jitter_stays_in_the_upper_half_of_the_step_and_varies() -> None:
    backoff = Backoff(initial=2.0, cap=100.0, rng=random.Random(1))
    for attempt in range(1, 8):
        step = backoff.step(attempt)
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(set(delays)) > 100


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    backoff = Backoff(initial=1.0, cap=10.0, max_retry_after=60.0)
    assert backoff.delay(1, retry_after=7.0) == 7.0
    assert backoff.delay(9, retry_after=0.5) == 0.5
    assert backoff.delay(1, retry_after=86_400.0) == 60.0
    assert backoff.delay(1, retry_after=-5.0) == 0.0


@pytest.mark.parametrize(("header", "expected"), [
    ("120", 120.0), (" 3 ", 3.0), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0), (None, None), ("", None), ("-1", None),
    ("1.5", None), ("tomorrow", None), ("Wed, 21 Oct 2015 07:28:00", None),
])
def test_retry_after_forms(header: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now) == expected
