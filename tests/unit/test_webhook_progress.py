"""Delivery progress in commit metadata: it round-trips, fits the broker's limit, ignores
anything malformed, and the outbox counts restored attempts toward ``max_attempts``."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitor.config import ReceiverSettings
from monitor.outputs.webhooks.progress import (
    METADATA_LIMIT,
    Progress,
    decode,
    encode,
    fingerprint,
)
from tests.unit.test_webhook_outbox import ScriptedSink, alert, make, server_error, settled


def test_progress_round_trips_through_the_metadata_text() -> None:
    progress = Progress({12: 3, 7: 1, 40: 15}, gone="0123456789abcdef")
    assert decode(encode(progress)) == progress
    assert decode(encode(Progress())) == Progress()


def test_the_text_fits_the_limit_keeping_the_oldest_offsets() -> None:
    many = {offset: 16 for offset in range(10**12, 10**12 + 5_000)}
    text = encode(Progress(many, gone="f" * 16))
    assert len(text.encode()) <= METADATA_LIMIT
    kept = decode(text)
    assert kept.gone == "f" * 16
    assert kept.attempts and min(kept.attempts) == 10**12
    assert sorted(kept.attempts) == list(range(10**12, 10**12 + len(kept.attempts)))


@pytest.mark.parametrize("text", [
    None, "", "not json", "[]", '{"v": 2, "attempts": [[1, 2]]}', '{"v": 1, "attempts": 5}',
    '{"v": 1, "attempts": [[1, 2, 3], ["1", 2], [1.5, 2], [-1, 2], [1, 0], [1, true]]}',
    '{"v": 1, "gone": 7}', '{"v": 1, "gone": "' + "x" * 65 + '"}', '{"v": 1, "v": 1}',
])
def test_malformed_metadata_is_empty_progress(text: str | None) -> None:
    assert decode(text) == Progress()


def test_a_changed_url_or_filter_is_a_new_fingerprint() -> None:
    base = ReceiverSettings(name="r", url="https://risk.example/hooks", secret_env="S")
    assert fingerprint(base) == fingerprint(base.model_copy())
    assert fingerprint(base) != fingerprint(base.model_copy(
        update={"url": "https://risk.example/v2"}))
    assert fingerprint(base) != fingerprint(base.model_copy(update={"min_severity": "high"}))


async def test_restored_attempts_count_toward_max_attempts() -> None:
    failing = ScriptedSink("r", lambda a, n: server_error())
    outbox, _, dead = make([failing], max_attempts=5)
    outbox.restore(0, {3: 4, 1: 2})  # offset 1 is passed over: it will not come again
    outbox.submit(0, 3, alert(3))
    outbox.submit(0, 4, alert(4))
    await settled(outbox)
    by_alert = {record["alert_id"]: record["attempts"] for record in dead}
    assert by_alert == {"al_3": 5, "al_4": 5}
    assert [alert_id for alert_id, _ in failing.calls].count("al_3") == 1
    assert outbox.progress(0) == {}  # settled: nothing left to carry over


async def test_progress_reports_attempts_of_the_unsettled() -> None:
    failing = ScriptedSink("r", lambda a, n: server_error())
    outbox, _, _ = make([failing], max_attempts=100)
    outbox.restore(0, {9: 7})
    outbox.submit(0, 2, alert(2))
    await attempted(failing, 2)
    progress = outbox.progress(0)
    assert progress[9] == 7 and progress[2] >= 2
    await outbox.close()
    assert outbox.progress(0) == {}


async def attempted(sink: ScriptedSink, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(sink.calls) < count:
        assert time.monotonic() < deadline, "no attempts"
        await asyncio.sleep(0.01)  # polling the sink


def test_a_disabled_receiver_is_reported() -> None:
    outbox, metrics, _ = make([ScriptedSink("r", lambda a, n: None)])
    outbox.disable("r", "it answered 410 Gone earlier")
    assert outbox.disabled == ["r"]
    assert metrics.registry.get_sample_value(
        "fraudmon_webhook_receiver_enabled", {"receiver": "r"}) == 0
