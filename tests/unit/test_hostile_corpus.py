"""The hostile-input corpus (tests/hostile.py) through replay, and random mutations of valid
events through the engine: refused with the case's reason, nothing else disturbed."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Settings
from monitor.contract import events
from monitor.contract.events import PAYMENTS
from monitor.errors import InvalidEvent
from monitor.processing.engine import Engine
from monitor.routing.views import views
from monitor.state.shard import Shard
from monitor.tools.replay import replay
from monitor.tools.sample import generate
from tests.hostile import ANCHORS, cases, payment

TRAILER = orjson.dumps(payment(event_id="after-the-corpus", payer="trailer-payer"))


def replay_line(kind: str, payload: bytes) -> bytes:
    """A replay line carrying ``payload`` as the message's exact bytes; bytes that are not
    UTF-8 cannot be text in a JSON line, so they are the line itself."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload
    return orjson.dumps({"topic": kind, "raw": text})


def test_the_corpus_has_at_least_sixty_kinds() -> None:
    assert len(cases()) >= 60


def test_every_case_is_dead_lettered_with_its_reason_in_replay(tmp_path: Path) -> None:
    corpus = cases()
    lines = [orjson.dumps({"topic": kind, "value": orjson.loads(value)})
             for kind, value in ANCHORS]
    lines += [replay_line(case.kind, case.payload) for case in corpus]
    lines.append(orjson.dumps({"topic": PAYMENTS, "value": orjson.loads(TRAILER)}))
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    summary = replay(source, tmp_path / "out", Engine(Settings()))
    dead = [orjson.loads(line) for line in (tmp_path / "out" / "dead-letter.jsonl")
            .read_bytes().splitlines()]
    decided = [orjson.loads(line)["event_id"] for line in (tmp_path / "out" /
               "decisions.jsonl").read_bytes().splitlines()]
    assert decided == ["anchor-1", "anchor-2", "after-the-corpus"]
    assert summary.dead_letters == len(corpus) == len(dead)
    mismatched = [(case.name, letter["reason"]) for case, letter in zip(corpus, dead, strict=True)
                  if case.reason not in letter["reason"]]
    assert not mismatched
    assert all("\n" not in letter["reason"] for letter in dead)  # one line each


def test_a_year_9999_label_leaves_detection_unchanged(tmp_path: Path) -> None:
    # The label is dead-lettered, and no shard's watermark moves: the same alerts.
    lines = [orjson.dumps(record) for record in generate(seed=7)]
    poisoned = [*lines[:len(lines) // 3], orjson.dumps({"topic": "labels", "value": {
        "event_id": "lbl-9999", "ts": "9999-12-31T23:59:59Z", "entity": "x",
        "entity_type": "account", "pattern": "mule_account", "confirmed": True}}),
        *lines[len(lines) // 3:]]
    outputs = {}
    for name, content in (("clean", lines), ("poisoned", poisoned)):
        source = tmp_path / f"{name}.jsonl"
        source.write_bytes(b"\n".join(content) + b"\n")
        engine = Engine(Settings())
        summary = replay(source, tmp_path / name, engine)
        outputs[name] = ((tmp_path / name / "alerts.jsonl").read_bytes(), summary,
                         max(shard.watermark for shard in engine.shards))
    (clean_alerts, clean, clean_mark), (alerts, poisoned_run, mark) = (
        outputs["clean"], outputs["poisoned"])
    assert poisoned_run.dead_letters == clean.dead_letters + 1
    assert clean.alerts > 0 and _ids(alerts) == _ids(clean_alerts)
    assert mark == clean_mark


def _ids(alerts: bytes) -> list[str]:
    return [orjson.loads(line)["alert_id"] for line in alerts.splitlines()]


def test_a_watermark_runs_at_most_a_step_past_the_clock() -> None:
    # An event inside the allowed skew still cannot move the watermark further than
    # processing.max_watermark_step_seconds past the clock.
    settings = Settings(processing={"max_watermark_step_seconds": 60})
    shard = Shard(0, settings)
    now = 1_767_574_800.0
    shard.clock = lambda: now
    early = events.from_dict(PAYMENTS, payment(event_id="w1", ts="2026-01-05T00:00:00Z"))
    ahead = events.from_dict(PAYMENTS, payment(event_id="w2", ts="2026-01-05T12:00:00Z"))
    shard.process(views(early)[0], early)
    assert shard.watermark == early.ts
    shard.process(views(ahead)[0], ahead)
    assert shard.watermark == now + 60


# --- property: random mutations ----------------------------------------------------

BYSTANDERS = [f"bystander-{n}" for n in range(6)]


def _engine_with_bystanders() -> Engine:
    engine = Engine(Settings())
    for number, name in enumerate(BYSTANDERS * 3):
        event = events.from_dict(PAYMENTS, payment(
            event_id=f"b-{number}", payer=name, payee=BYSTANDERS[(number + 1) % 6],
            amount=100.0 + number, ts=f"2026-01-05T09:{number:02d}:00+08:00"))
        engine.admit(event)
        engine.process(event)
    return engine


PROCESSED: set[str] = set()
"""Event ids the property test has processed so far."""
ENGINE = _engine_with_bystanders()
"""One engine for every example: bystanders' state is compared before and after each."""
COUNTER = iter(range(10**9))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                   max_size=4),
    max_leaves=12)
FIELDS = ["event_id", "ts", "payer", "payee", "amount", "currency", "channel", "device_id",
          "ip", "loan_id", "borrower", "note"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payment's bytes, damaged: fields replaced, removed or added, then maybe
    bytes flipped, cut or inserted."""
    data = payment(event_id=f"m-{next(COUNTER):09d}", payer="mutant-payer",
                   payee="mutant-payee",
                   ts="2026-01-05T10:00:00+08:00")
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(FIELDS))
        action = draw(st.sampled_from(["replace", "remove", "text"]))
        if action == "remove":
            data.pop(name, None)
        elif action == "text":
            data[name] = draw(st.text(max_size=140))
        else:
            data[name] = draw(json_values)
    payload = bytearray(orjson.dumps(data))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, max(len(payload) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and payload:
            payload[where] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del payload[where:where + draw(st.integers(1, 8))]
        else:
            payload[where:where] = draw(st.binary(min_size=1, max_size=8))
    return bytes(payload)


def bystanders(engine: Engine) -> dict[str, Any]:
    found = {}
    for name in BYSTANDERS:
        for shard in engine.shards:
            described = shard.describe("account", name)
            if described is not None:
                found[name] = copy.deepcopy(described)
    return found


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated())
def test_mutations_get_a_decision_or_a_dead_letter_and_touch_only_their_entities(
        payload: bytes) -> None:
    engine = ENGINE
    before = bystanders(engine)
    try:
        event = events.parse(PAYMENTS, payload, limits=engine.limits)
        engine.admit(event, time.time())
    except InvalidEvent as exc:
        assert exc.reason and "\n" not in exc.reason
        assert bystanders(engine) == before  # a dead letter changes nothing
        return
    outcomes = engine.process(event)
    named = {view.entity for view in views(event)}
    # No decision only for a repeat: of a bystander's event, or of an earlier example's
    # (Hypothesis may draw the same payload twice; the engine is shared).
    assert (outcomes and outcomes[0].decision is not None) or (
        event.event_id.startswith("b-") or event.event_id in PROCESSED)
    PROCESSED.add(event.event_id)
    after = bystanders(engine)
    assert {name: state for name, state in after.items() if name not in named} == {
        name: state for name, state in before.items() if name not in named}
