"""Wall-clock stamps on output records: formatted once per millisecond, RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.contract import records


def test_now_text_is_rfc3339_utc_with_milliseconds() -> None:
    before = datetime.now(UTC)
    text = records.now_text()
    after = datetime.now(UTC)
    assert len(text) == len("2026-01-01T00:00:00.000Z") and text.endswith("Z")
    stamp = datetime.fromisoformat(text)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= stamp <= after


def test_now_text_matches_isoformat_for_any_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    for millis in (0, 1_767_196_800_000, 1_767_196_800_999, 1_798_761_599_001):
        monkeypatch.setattr(records.time, "time_ns", lambda m=millis: m * 1_000_000 + 999_999)
        exact = datetime.fromtimestamp(millis // 1000, UTC).replace(
            microsecond=millis % 1000 * 1000)
        expected = exact.isoformat(timespec="milliseconds")
        assert records.now_text() == expected.replace("+00:00", "Z")
