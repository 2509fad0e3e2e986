"""Offline replay: the same shards as the live worker, driven from a JSONL file.

Input lines are ``{"topic": ..., "key": ..., "value": {...}}`` in event-time order
(``"raw": "..."`` in place of ``value`` carries a message's exact bytes as text, which is
how a file holds input that is not a JSON object).
Events are sharded exactly as the routed topic shards them (Kafka's partitioner over
``kafka.partitions``), so a replay and a live run that see events in the same order
make the same decisions and alerts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import orjson

from monitor.contract.events import INPUT_KINDS, Limits, from_dict, parse, repeats_a_key
from monitor.contract.records import dead_letter
from monitor.errors import InvalidEvent, ReplayInputError, ReplayOutputError
from monitor.processing.engine import Engine
from monitor.runtime import gcpolicy


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    events: int
    decisions: int
    alerts: int
    dead_letters: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"replay: {self.events} events, {self.decisions} decisions, {self.alerts} alerts,"
                f" {self.dead_letters} dead letters, {self.events_per_second:,.0f} events/s")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReplayInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
        except OSError as exc:
            raise ReplayInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _event(line: bytes, limits: Limits) -> Any:
    max_bytes = limits.max_bytes
    if len(line) > max_bytes:
        raise InvalidEvent(f"line of {len(line)} bytes exceeds the {max_bytes}-byte limit")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not UTF-8 JSON: {str(exc).splitlines()[0]}") from exc
    if repeats_a_key(line, record):
        raise InvalidEvent("a JSON key appears more than once")
    if not isinstance(record, dict) or ("value" not in record and "raw" not in record):
        raise InvalidEvent("a replay line must be an object with 'topic' and 'value'")
    topic = record.get("topic")
    if topic not in INPUT_KINDS:
        raise InvalidEvent(f"unknown topic {topic!r}; expected one of {', '.join(INPUT_KINDS)}")
    if "raw" in record:
        return parse(topic, str(record["raw"]).encode(), limits=limits)
    return from_dict(topic, record["value"], limits)


SETTLE_EVERY = 20_000
"""Events between :func:`monitor.runtime.gcpolicy.settle` calls: state built since is parked."""


def replay(path: Path, out_dir: Path, engine: Engine,
           max_bytes: int | None = None) -> ReplaySummary:
    """Replay ``path`` through ``engine``, writing decisions, alerts and dead letters.

    Event times are checked against the file's own clock (see
    :mod:`monitor.contract.clock`), the engine's; ``max_bytes`` overrides the limit of
    the engine's settings.
    """
    limits = engine.limits if max_bytes is None else replace(engine.limits, max_bytes=max_bytes)
    admit = engine.admit
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("decisions.jsonl", "alerts.jsonl", "dead-letter.jsonl"):
            (out_dir / name).touch()
    except OSError as exc:
        raise ReplayOutputError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    events = decided = alerted = dead_letters = 0
    started = time.perf_counter()
    with (out_dir / "decisions.jsonl").open("wb") as decisions, \
         (out_dir / "alerts.jsonl").open("wb") as alerts, \
         (out_dir / "dead-letter.jsonl").open("wb") as dead:
        write_decision, write_alert, process = decisions.write, alerts.write, engine.process
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        wall = time.time()
        for number, line in _lines(path):
            events += 1
            if not events % SETTLE_EVERY:
                gcpolicy.settle()
                wall = time.time()
            try:
                event = _event(line, limits)
                admit(event, wall)
            except InvalidEvent as exc:
                _write(dead, dead_letter(line.rstrip(b"\r\n"), str(path), None, number,
                                         exc.reason, engine.dead_letter_prefix))
                dead_letters += 1
                continue
            for outcome in process(event):
                if outcome.decision is not None:
                    write_decision(dumps(outcome.decision, option=newline))
                    decided += 1
                for alert in outcome.alerts:
                    write_alert(dumps(alert, option=newline))
                    alerted += 1
    return ReplaySummary(events, decided, alerted, dead_letters,
                         time.perf_counter() - started)


def _write(handle: IO[bytes], record: dict[str, Any]) -> None:
    handle.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
