"""``fraudmon evaluate``: how well alerts match a ground truth, per pattern.

An alert counts for its ``(pattern, entity_type, entity)`` triple: it detects a
positive of that pattern, or it is a false alarm. Per pattern this reports entity-level
recall and precision, the median delay from each positive's start to its first alert,
and alerts per 1,000 entities; across patterns, the share of honest look-alikes that
drew any alert. The truth is a ``fraudmon-truth/1`` document (``fraudmon simulate
--truth`` or ``fraudmon import-csv --truth``); alerts are ``fraudmon replay``'s
``alerts.jsonl``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from monitor.errors import ReplayInputError

EntityKey = tuple[str, str]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Truth:
    positives: dict[str, dict[EntityKey, float | None]]   # pattern -> entity -> start (epoch s)
    lookalikes: dict[str, set[EntityKey]]                  # kind -> entities
    entities: dict[str, int]                               # entity type -> count

    @property
    def entity_total(self) -> int:
        return sum(self.entities.values())


@dataclass(frozen=True, slots=True)
class Alert:
    pattern: str
    entity_type: str
    entity: str
    ts: float


@dataclass(frozen=True, slots=True)
class PatternScore:
    pattern: str
    positives: int
    detected: int
    alerted: int                # distinct entities alerted for this pattern
    alerts: int
    median_delay_hours: float | None
    alerts_per_1000: float

    @property
    def recall(self) -> float | None:
        return self.detected / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        return self.detected / self.alerted if self.alerted else None


@dataclass(frozen=True, slots=True)
class Report:
    patterns: list[PatternScore]
    overall: PatternScore
    lookalikes: dict[str, tuple[int, int]]   # kind -> (alerted, total)
    lookalikes_alerted: int
    lookalikes_total: int
    entities: dict[str, int]


def _time(text: Any, where: str) -> float:
    if not isinstance(text, str):
        raise ReplayInputError(f"{where}: 'ts'/'start' must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ReplayInputError(f"{where}: {text!r} is not an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        raise ReplayInputError(f"{where}: {text!r} has no UTC offset")
    return parsed.timestamp()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReplayInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _entity(item: Any, where: str) -> EntityKey:
    if not isinstance(item, dict) or not isinstance(item.get("entity_type"), str) \
            or not isinstance(item.get("entity"), str):
        raise ReplayInputError(f"{where}: each entry needs string 'entity_type' and 'entity'")
    return item["entity_type"], item["entity"]


def parse_truth(document: Any, source: str = "truth") -> Truth:
    """Validate a decoded truth document."""
    if not isinstance(document, dict) or not isinstance(document.get("patterns"), dict):
        raise ReplayInputError(f"{source}: not a truth document (no 'patterns' object)")
    positives: dict[str, dict[EntityKey, float | None]] = {}
    for pattern, body in document["patterns"].items():
        entries = body.get("positives") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ReplayInputError(f"{source}: patterns.{pattern}.positives must be a list")
        found: dict[EntityKey, float | None] = {}
        for entry in entries:
            key = _entity(entry, f"{source}: patterns.{pattern}")
            start = entry.get("start")
            found[key] = None if start is None else _time(start, f"{source}: {key[1]}")
        positives[pattern] = found
    lookalikes: dict[str, set[EntityKey]] = {}
    for kind, entries in (document.get("lookalikes") or {}).items():
        if not isinstance(entries, list):
            raise ReplayInputError(f"{source}: lookalikes.{kind} must be a list")
        lookalikes[kind] = {_entity(entry, f"{source}: lookalikes.{kind}") for entry in entries}
    entities = document.get("entities") or {}
    if not isinstance(entities, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in entities.values()):
        raise ReplayInputError(f"{source}: 'entities' must map entity types to counts")
    return Truth(positives, lookalikes, dict(entities))


def load_truth(path: Path) -> Truth:
    try:
        document = orjson.loads(_read(path))
    except orjson.JSONDecodeError as exc:
        raise ReplayInputError(f"{path}: not JSON: {str(exc).splitlines()[0]}") from exc
    return parse_truth(document, str(path))


def load_alerts(path: Path) -> list[Alert]:
    """Alerts from a JSONL file; a malformed line is an error naming its line number."""
    alerts = []
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ReplayInputError(f"{where}: not JSON") from exc
        if not isinstance(record, dict) or not all(
                isinstance(record.get(name), str) for name in ("pattern", "entity_type", "entity")):
            raise ReplayInputError(f"{where}: an alert needs pattern, entity_type, entity, ts")
        alerts.append(Alert(record["pattern"], record["entity_type"], record["entity"],
                            _time(record.get("ts"), where)))
    return alerts


def _score(name: str, positives: Mapping[K, float | None], hits: list[tuple[K, float]],
           entity_total: int) -> PatternScore:
    """Recall, precision and delay of ``hits`` (item, alert time) against ``positives``."""
    first: dict[K, float] = {}
    for key, ts in hits:
        if key not in first or ts < first[key]:
            first[key] = ts
    detected = [key for key in positives if key in first]
    delays = [(first[key] - start) / 3600 for key in detected
              if (start := positives[key]) is not None]
    return PatternScore(
        pattern=name, positives=len(positives), detected=len(detected), alerted=len(first),
        alerts=len(hits),
        median_delay_hours=statistics.median(delays) if delays else None,
        alerts_per_1000=1000 * len(hits) / entity_total if entity_total else 0.0)


def evaluate(truth: Truth, alerts: list[Alert]) -> Report:
    by_pattern: dict[str, list[tuple[EntityKey, float]]] = {}
    for alert in alerts:
        by_pattern.setdefault(alert.pattern, []).append(
            ((alert.entity_type, alert.entity), alert.ts))
    names = list(truth.positives) + sorted(set(by_pattern) - set(truth.positives))
    total = truth.entity_total
    scores = [_score(name, truth.positives.get(name, {}), by_pattern.get(name, []), total)
              for name in names]
    # Overall, each (pattern, entity) pair is one item: a hit for one pattern does not
    # count for another.
    overall = _score(
        "all",
        {(name, *key): start for name in names
         for key, start in truth.positives.get(name, {}).items()},
        [((alert.pattern, alert.entity_type, alert.entity), alert.ts) for alert in alerts],
        total)
    alerted = {(alert.entity_type, alert.entity) for alert in alerts}
    kinds = {kind: (len(members & alerted), len(members))
             for kind, members in truth.lookalikes.items()}
    every: set[EntityKey] = set().union(*truth.lookalikes.values())
    return Report(scores, overall, kinds, len(every & alerted), len(every),
                  dict(truth.entities))


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _share(alerted: int, total: int) -> float | None:
    return alerted / total if total else None


def table(report: Report) -> str:
    """The human-readable report."""
    head = (f"{'pattern':<18}{'positives':>10}{'detected':>10}{'recall':>9}{'alerted':>9}"
            f"{'precision':>11}{'median delay h':>16}{'alerts':>8}{'per 1k ent':>12}")
    lines = [head, "-" * len(head)]
    for score in [*report.patterns, report.overall]:
        delay = "-" if score.median_delay_hours is None else f"{score.median_delay_hours:.1f}"
        lines.append(
            f"{score.pattern:<18}{score.positives:>10,}{score.detected:>10,}"
            f"{_percent(score.recall):>9}{score.alerted:>9,}{_percent(score.precision):>11}"
            f"{delay:>16}{score.alerts:>8,}{score.alerts_per_1000:>12.2f}")
    lines.append("")
    lines.append(f"look-alikes alerted (any pattern): "
                 f"{_percent(_share(report.lookalikes_alerted, report.lookalikes_total))} "
                 f"({report.lookalikes_alerted:,} of {report.lookalikes_total:,})")
    for kind, (alerted, total) in report.lookalikes.items():
        share = _percent(_share(alerted, total))
        lines.append(f"  {kind:<20}{share:>7} ({alerted:,} of {total:,})")
    counts = ", ".join(f"{kind} {n:,}" for kind, n in sorted(report.entities.items()))
    lines.append(f"entities: {sum(report.entities.values()):,} ({counts})")
    return "\n".join(lines)


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _score_json(score: PatternScore) -> dict[str, Any]:
    return {"positives": score.positives, "detected": score.detected,
            "recall": _rounded(score.recall), "alerted": score.alerted,
            "precision": _rounded(score.precision),
            "median_delay_hours": _rounded(score.median_delay_hours, 2),
            "alerts": score.alerts, "alerts_per_1000_entities": _rounded(score.alerts_per_1000, 3)}


def as_json(report: Report) -> dict[str, Any]:
    """The same figures as :func:`table`, for documents and CI."""
    return {
        "patterns": {score.pattern: _score_json(score) for score in report.patterns},
        "all": _score_json(report.overall),
        "lookalikes": {
            "alerted": report.lookalikes_alerted, "total": report.lookalikes_total,
            "share": _rounded(_share(report.lookalikes_alerted, report.lookalikes_total)),
            "by_kind": {kind: {"alerted": a, "total": t, "share": _rounded(_share(a, t))}
                        for kind, (a, t) in report.lookalikes.items()}},
        "entities": sum(report.entities.values()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--truth", type=Path, required=True, help="ground-truth JSON")
    parser.add_argument("--alerts", type=Path, required=True,
                        help="alerts JSONL (fraudmon replay's alerts.jsonl)")


def main_evaluate(args: argparse.Namespace) -> int:
    report = evaluate(load_truth(args.truth), load_alerts(args.alerts))
    print(table(report))
    print(orjson.dumps(as_json(report)).decode())
    return 0
