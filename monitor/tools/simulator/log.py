"""The event log: collects events as generators make them, then sorts and numbers them.

Events outside ``[0, horizon)`` are dropped (a repayment due after the end has not
happened yet). Event ids are given after sorting, in event-time order, so an id says
nothing about which generator made the event. Chargebacks hold a reference to the event
they judge and get its id at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from monitor.contract.events import LABELS, LOAN_DISBURSALS, PAYMENTS
from monitor.tools.simulator.clock import Clock

Value = dict[str, Any]
Record = dict[str, Any]


class EventLog:
    """Events of one run, as ``(t, seq, topic, key, value)`` until :meth:`finish`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._rows: list[tuple[int, int, str, str, Value]] = []
        self._targets: list[tuple[Value, Value]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def _add(self, t: int, topic: str, key: str, value: Value) -> Value | None:
        if not 0 <= t < self.clock.horizon:
            return None
        self._rows.append((t, len(self._rows), topic, key, value))
        return value

    def payment(self, t: int, payer: str, payee: str, amount: float, channel: str, *,
                device: str | None = None, loan_id: str | None = None,
                borrower: str | None = None) -> Value | None:
        value: Value = {"event_id": "", "ts": t, "payer": payer, "payee": payee,
                        "amount": max(0.01, round(amount, 2)), "currency": "CNY",
                        "channel": channel}
        if device is not None:
            value["device_id"] = device
        if loan_id is not None:
            value["loan_id"] = loan_id
            value["borrower"] = borrower
        return self._add(t, PAYMENTS, payer, value)

    def disbursal(self, t: int, *, loan_id: str, borrower: str, lender: str,
                  principal: float, fee: float, term_days: int, account: str,
                  referrer: str | None = None, device: str | None = None) -> Value | None:
        value: Value = {"event_id": "", "ts": t, "loan_id": loan_id, "borrower": borrower,
                        "lender": lender, "principal": max(0.01, round(principal, 2)),
                        "currency": "CNY", "fee": round(fee, 2), "term_days": term_days,
                        "account": account}
        if referrer is not None:
            value["referrer"] = referrer
        if device is not None:
            value["device_id"] = device
        return self._add(t, LOAN_DISBURSALS, borrower, value)

    def entity_label(self, t: int, entity: str, entity_type: str, pattern: str,
                     confirmed: bool) -> Value | None:
        value: Value = {"event_id": "", "ts": t, "entity": entity, "entity_type": entity_type,
                        "pattern": pattern, "confirmed": confirmed}
        return self._add(t, LABELS, entity, value)

    def chargeback(self, t: int, target: Value, confirmed: bool) -> Value | None:
        """A transaction label on ``target`` (an event this log returned earlier)."""
        if t <= target["ts"]:
            raise ValueError("a chargeback comes after the payment it judges")
        value: Value = {"event_id": "", "ts": t, "target_event_id": "", "confirmed": confirmed}
        added = self._add(t, LABELS, "", value)
        if added is not None:
            self._targets.append((added, target))
        return added

    def first_seen(self, entities: set[str]) -> dict[str, int]:
        """When each of ``entities`` (any id field) first occurs in the payments and loans."""
        seen: dict[str, int] = {}
        fields = ("payer", "payee", "account", "borrower", "lender", "device_id")
        for t, _, topic, _, value in self._rows:
            if topic == LABELS:
                continue
            for name in fields:
                entity = value.get(name)
                if entity in entities and t < seen.get(entity, self.clock.horizon):
                    seen[entity] = t
        return seen

    def finish(self, id_prefix: str) -> list[Record]:
        """Sort by event time, number the events, render times; the log is then spent."""
        self._rows.sort(key=lambda row: (row[0], row[1]))
        text = self.clock.text
        records: list[Record] = []
        for number, (t, _, topic, key, value) in enumerate(self._rows, start=1):
            value["event_id"] = f"{id_prefix}{number:08d}"
            value["ts"] = text(t)
            records.append({"topic": topic, "key": key, "value": value})
        for label, target in self._targets:
            label["target_event_id"] = target["event_id"]
        for record in records:
            if record["key"] == "":
                record["key"] = record["value"]["target_event_id"]
        self._rows = []
        return records


def write_jsonl(records: list[Record], path: Path) -> int:
    """Write replay-format lines; returns the number of bytes written."""
    size = 0
    with path.open("wb") as handle:
        for record in records:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
            handle.write(line)
            size += len(line)
    return size
