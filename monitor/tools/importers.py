"""Third-party CSV exports into the event contract, through a column-mapping file.

A mapping (``configs/mappings/*.yaml``) says which columns hold the event id, time,
payer, payee, amount and channel; how a time is read (an hour ``step`` from a base time,
an ISO date-time, or a date, optionally shifted so ``origin`` lands on ``base``); how
source channel values map to contract channels; and which column carries the
ground-truth label, so a truth document can be written too. Each row becomes one
``payments`` record, validated by :func:`monitor.contract.events.from_dict`; a row that cannot be
converted is reported with its line number and skipped. Records come out sorted by
event time (source order among equal times).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.contract.events import PAYMENTS, from_dict
from monitor.errors import ConfigError, InvalidEvent, ReplayInputError, ReplayOutputError
from monitor.tools.simulator.truth import FORMAT, entities_in

Record = dict[str, Any]
Role = Literal["payer", "payee"]
Channel = Literal["transfer", "card", "qr", "wallet", "cash_out"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Columns(_Model):
    """Source column names; ``event_id`` absent means ids are made from row numbers."""

    event_id: str | None = None
    ts: str
    payer: str
    payee: str
    amount: str
    channel: str | None = None
    currency: str | None = None
    device_id: str | None = None


class TimeSpec(_Model):
    kind: Literal["step", "datetime", "date"]
    unit_seconds: float = Field(default=3600.0, gt=0)   # step: length of one step
    base: datetime | None = None      # step: the time of step 0; others: where origin lands
    origin: datetime | None = None    # datetime/date: the source time moved onto ``base``
    format: str | None = None         # strptime format; default ISO 8601
    timezone: str = "+08:00"          # offset assumed for source times without one
    output_offset: str = "+08:00"     # offset the RFC 3339 output is written in

    @field_validator("timezone", "output_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        _tz(value)
        return value

    @field_validator("base", "origin")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-01-01T00:00:00+08:00")
        return value


class LabelSpec(_Model):
    """Which column marks a row as fraud, and which of its accounts are then positives."""

    column: str
    positive: tuple[str, ...] = ("1", "1.0", "true", "True", "TRUE")
    pattern: str = Field(min_length=1)
    roles: tuple[Role, ...] = ("payer", "payee")
    roles_by_channel: dict[str, tuple[Role, ...]] = {}   # by the *source* channel value


class Mapping(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    columns: Columns
    time: TimeSpec
    channels: dict[str, Channel] = {}
    default_channel: Channel | None = None   # when there is no channel column
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    event_id_prefix: str = ""
    account_prefix: str = ""
    labels: LabelSpec | None = None


def _tz(text: str) -> timezone:
    try:
        return timezone(datetime.strptime(text, "%z").utcoffset() or timedelta(0))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a UTC offset like +08:00") from exc


def load_mapping(path: Path | str) -> Mapping:
    """Read and validate a mapping file; a problem is a one-line ``ConfigError``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        raise ConfigError(f"{path}: {where}: {error['msg']}") from exc


@dataclass(frozen=True, slots=True)
class RowError:
    line: int                   # line number in the CSV file (the header is line 1)
    reason: str


@dataclass(slots=True)
class ImportResult:
    records: list[Record] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    labelled: list[tuple[str, str, list[str]]] = field(default_factory=list)  # id, ts, ids


class _Converter:
    """Turns one CSV row into ``(epoch seconds, record, positive accounts or None)``."""

    def __init__(self, mapping: Mapping) -> None:
        self.m = mapping
        spec = mapping.time
        self.local = _tz(spec.timezone)
        self.out = _tz(spec.output_offset)
        self.shift = (spec.base - spec.origin if spec.base is not None and spec.origin is not None
                      else timedelta(0))
        self.when: Callable[[str], datetime] = {
            "step": self._step, "datetime": self._datetime, "date": self._date}[spec.kind]
        if spec.kind == "step" and spec.base is None:
            raise ConfigError(f"mapping {mapping.name}: time.base is required for steps")

    def _step(self, text: str) -> datetime:
        assert self.m.time.base is not None  # noqa: S101 - checked in __init__
        return self.m.time.base + timedelta(seconds=float(text) * self.m.time.unit_seconds)

    def _datetime(self, text: str) -> datetime:
        fmt = self.m.time.format
        if fmt is None:
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.local)
        if "%z" in fmt:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - the format reads the offset
        return datetime.strptime(text, fmt).replace(tzinfo=self.local)

    def _date(self, text: str) -> datetime:
        return datetime.strptime(text, self.m.time.format or "%Y-%m-%d").replace(
            tzinfo=self.local)

    def _cell(self, row: dict[str | None, Any], column: str | None) -> str | None:
        if column is None:
            return None
        value = row.get(column)
        if value is None or not str(value).strip():
            raise InvalidEvent(f"empty '{column}'")
        return str(value).strip()

    def convert(self, row: dict[str | None, Any], number: int,
                ) -> tuple[float, Record, list[str] | None]:
        m, columns = self.m, self.m.columns
        if None in row:
            raise InvalidEvent("more fields than the header has")
        raw_id = self._cell(row, columns.event_id)
        event_id = f"{m.event_id_prefix}{raw_id if raw_id is not None else number}"
        ts_text = self._cell(row, columns.ts) or ""
        try:
            when = (self.when(ts_text) + self.shift).astimezone(self.out)
        except (ValueError, OverflowError) as exc:
            raise InvalidEvent(f"time {ts_text!r} cannot be read ({m.time.kind})") from exc
        amount_text = self._cell(row, columns.amount) or ""
        try:
            amount = float(amount_text)
        except ValueError as exc:
            raise InvalidEvent(f"amount {amount_text!r} is not a number") from exc
        source_channel = self._cell(row, columns.channel)
        channel = (m.default_channel if source_channel is None
                   else m.channels.get(source_channel))
        if channel is None:
            raise InvalidEvent(f"channel {source_channel!r} has no mapping")
        payer = f"{m.account_prefix}{self._cell(row, columns.payer)}"
        payee = f"{m.account_prefix}{self._cell(row, columns.payee)}"
        value: dict[str, Any] = {
            "event_id": event_id, "ts": when.isoformat(timespec="seconds"), "payer": payer,
            "payee": payee, "amount": amount,
            "currency": self._cell(row, columns.currency) or m.currency, "channel": channel}
        device = self._cell(row, columns.device_id)
        if device is not None:
            value["device_id"] = device
        from_dict(PAYMENTS, value)
        return when.timestamp(), {"topic": PAYMENTS, "key": payer, "value": value}, \
            self._positives(row, source_channel, payer, payee)

    def _positives(self, row: dict[str | None, Any], source_channel: str | None, payer: str,
                   payee: str) -> list[str] | None:
        spec = self.m.labels
        if spec is None:
            return None
        flag = row.get(spec.column)
        if flag is None or str(flag).strip() not in spec.positive:
            return None
        roles = spec.roles_by_channel.get(source_channel or "", spec.roles)
        return [payer if role == "payer" else payee for role in roles]


def read_csv(csv_path: Path | str, mapping: Mapping) -> ImportResult:
    """Convert every row of ``csv_path``; records sorted by event time."""
    path = Path(csv_path)
    converter = _Converter(mapping)
    result = ImportResult()
    rows: list[tuple[float, int, Record, list[str] | None]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            needed = [c for c in mapping.columns.model_dump().values() if c is not None]
            if mapping.labels is not None:
                needed.append(mapping.labels.column)
            missing = [c for c in needed if c not in header]
            if missing:
                raise ReplayInputError(f"{path}: no column {missing[0]!r} "
                                       f"(mapping {mapping.name}; header: {', '.join(header)})")
            for number, row in enumerate(reader, start=1):
                result.rows += 1
                try:
                    ts, record, positives = converter.convert(row, number)
                except InvalidEvent as exc:
                    result.errors.append(RowError(reader.line_num, exc.reason))
                    continue
                rows.append((ts, number, record, positives))
    except OSError as exc:
        raise ReplayInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReplayInputError(f"{path}: not a readable CSV file: {exc}") from exc
    rows.sort(key=lambda item: (item[0], item[1]))
    for _, _, record, positives in rows:
        result.records.append(record)
        if positives is not None:
            value = record["value"]
            result.labelled.append((value["event_id"], value["ts"], positives))
    return result


def iter_csv_events(csv_path: Path | str, mapping: Mapping | Path | str,
                    errors: list[RowError] | None = None) -> Iterator[Record]:
    """The replay records of a CSV export, sorted by time; bad rows go to ``errors``."""
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    result = read_csv(csv_path, mapping)
    if errors is not None:
        errors.extend(result.errors)
    yield from result.records


def truth_document(result: ImportResult, mapping: Mapping, source: str) -> dict[str, Any]:
    """A ``fraudmon-truth/1`` document: each account in a labelled row is a positive of
    the mapping's pattern from its first labelled row on."""
    first: dict[str, tuple[str, int]] = {}
    for _, ts, accounts in result.labelled:
        for account in accounts:
            seen = first.get(account)
            first[account] = (seen[0], seen[1] + 1) if seen else (ts, 1)
    patterns: dict[str, Any] = {}
    if mapping.labels is not None:
        positives = [{"entity_type": "account", "entity": account, "start": ts,
                      "params": {"labelled_events": n}}
                     for account, (ts, n) in first.items()]
        patterns[mapping.labels.pattern] = {
            "entity_types": ["account"] if positives else [],
            "start_rule": f"the account's first row with {mapping.labels.column} set",
            "first_start": positives[0]["start"] if positives else None,
            "positives": positives}
    return {
        "format": FORMAT,
        "source": {"importer": "fraudmon import-csv", "csv": source, "mapping": mapping.name,
                   "rows": result.rows, "events": len(result.records),
                   "invalid_rows": len(result.errors)},
        "patterns": patterns, "lookalikes": {},
        "entities": {kind: len(ids) for kind, ids in sorted(entities_in(result.records).items())},
        "labels": {"labelled_rows": len(result.labelled)},
        "labelled_events": [event_id for event_id, _, _ in result.labelled],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", type=Path, help="the CSV export")
    parser.add_argument("--mapping", type=Path, required=True,
                        help="column mapping, e.g. configs/mappings/paysim.yaml")
    parser.add_argument("--out", type=Path, required=True, help="events file (replay JSONL)")
    parser.add_argument("--truth", type=Path, default=None,
                        help="also write a ground-truth JSON from the mapping's label column")


def main_import_csv(args: argparse.Namespace) -> int:
    mapping = load_mapping(args.mapping)
    result = read_csv(args.csv, mapping)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("wb") as handle:
            for record in result.records:
                handle.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        if args.truth is not None:
            document = truth_document(result, mapping, args.csv.name)
            args.truth.parent.mkdir(parents=True, exist_ok=True)
            args.truth.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        raise ReplayOutputError(f"import-csv: cannot write: {exc.strerror or exc}") from exc
    labelled = ""
    if mapping.labels is not None:
        accounts = {a for _, _, ids in result.labelled for a in ids}
        labelled = (f"; {len(result.labelled):,} rows with {mapping.labels.column} set, "
                    f"{len(accounts):,} positive accounts ({mapping.labels.pattern})")
    print(f"import-csv: {result.rows:,} rows, {len(result.records):,} events, "
          f"{len(result.errors):,} invalid rows{labelled} -> {args.out}")
    for error in result.errors[:10]:
        print(f"  line {error.line}: {error.reason}")
    if len(result.errors) > 10:
        print(f"  ... and {len(result.errors) - 10:,} more")
    return 0
