"""Ground truth of a labelled run, written next to the events as one JSON document.

Format ``fraudmon-truth/1``::

    {"format": "fraudmon-truth/1",
     "source": {"generator": "fraudmon simulate", "seed": 7, "days": 180, ...},
     "patterns": {"mule_account": {"entity_types": ["account"], "start_rule": "...",
                                   "first_start": "2026-01-20T10:02:11+08:00",
                                   "positives": [{"entity_type": "account",
                                                  "entity": "acct-104399812",
                                                  "start": "2026-01-20T10:02:11+08:00",
                                                  "params": {...}}, ...]}, ...},
     "lookalikes": {"merchant": [{"entity_type": "account", "entity": "acct-..."}], ...},
     "entities": {"account": 9120, "borrower": 790, "device": 3340, "lender": 45},
     "labels": {...}}

``start`` is when the entity's behaviour became the pattern (see ``start_rule``): the
evaluator measures detection delay from it. Only entities that occur in the events are
listed, and no entity is both a positive and a look-alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import orjson

from monitor.contract.vocabulary import PATTERNS
from monitor.tools.simulator.clock import Clock

FORMAT: Final = "fraudmon-truth/1"
ROLLOVER: Final = "rollover_loan"
PREDATORY: Final = "predatory_lender"
MULE: Final = "mule_account"
STRUCTURING: Final = "structuring"
FAKE: Final = "fake_account"
LOOKALIKE_KINDS: Final = ("merchant", "payroll", "ordinary_borrower", "consolidation",
                          "landlord", "household_device", "salary_saver")
START_RULES: Final = {
    ROLLOVER: "the first repayment funded by a new loan",
    PREDATORY: "the first onward referral by the lender or rollover through one of its loans",
    MULE: "the first pass-through (first forwarding outflow)",
    STRUCTURING: "the first outflow just under the reporting line",
    FAKE: "the account's first event in the farm (the hub: its first receipt from the farm)",
}

EntityKey = tuple[str, str]


def entities_in(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Every entity the events touch, by entity type (as the monitor views them)."""
    found: dict[str, set[str]] = {"account": set(), "borrower": set(), "device": set(),
                                  "lender": set()}
    accounts, borrowers = found["account"], found["borrower"]
    devices, lenders = found["device"], found["lender"]
    for record in records:
        value = record["value"]
        topic = record["topic"]
        if topic == "payments":
            accounts.add(value["payer"])
            accounts.add(value["payee"])
            if "borrower" in value:
                borrowers.add(value["borrower"])
        elif topic == "loan-disbursals":
            accounts.add(value["account"])
            borrowers.add(value["borrower"])
            lenders.add(value["lender"])
            if "referrer" in value:
                lenders.add(value["referrer"])
        else:
            continue
        if "device_id" in value:
            devices.add(value["device_id"])
    return found


class TruthBuilder:
    """Positives and look-alikes as the generators declare them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._positives: dict[str, dict[EntityKey, tuple[int | None, dict[str, Any]]]] = {
            pattern: {} for pattern in PATTERNS}
        self._lookalikes: dict[str, dict[EntityKey, None]] = {
            kind: {} for kind in LOOKALIKE_KINDS}

    def positive(self, pattern: str, entity_type: str, entity: str, start: int | None,
                 **params: Any) -> None:
        """Declare a positive; ``start`` None means its behaviour has not begun (yet)."""
        key = (entity_type, entity)
        known = self._positives[pattern].get(key)
        if known is not None:
            earlier = [s for s in (known[0], start) if s is not None]
            start = min(earlier) if earlier else None
            params = {**known[1], **params}
        self._positives[pattern][key] = (start, params)

    def lookalike(self, kind: str, entity_type: str, entity: str) -> None:
        self._lookalikes[kind][(entity_type, entity)] = None

    def positives(self, pattern: str) -> list[tuple[EntityKey, int]]:
        """Declared positives of ``pattern`` whose behaviour starts within the run."""
        return [(key, start) for key, (start, _) in self._positives[pattern].items()
                if start is not None and 0 <= start < self.clock.horizon]

    def lookalikes(self, kind: str) -> list[EntityKey]:
        return list(self._lookalikes[kind])

    def finish(self, records: list[dict[str, Any]], source: dict[str, Any],
               labels: dict[str, int]) -> dict[str, Any]:
        """The truth document for ``records`` (the finished, sorted events)."""
        present = entities_in(records)
        patterns: dict[str, Any] = {}
        positive_keys: set[EntityKey] = set()
        for pattern in PATTERNS:
            listed = []
            for key, start in sorted(self.positives(pattern), key=lambda p: (p[1], p[0])):
                if key[1] not in present.get(key[0], ()):
                    continue
                positive_keys.add(key)
                listed.append({"entity_type": key[0], "entity": key[1],
                               "start": self.clock.text(start),
                               "params": self._positives[pattern][key][1]})
            patterns[pattern] = {
                "entity_types": sorted({p["entity_type"] for p in listed}),
                "start_rule": START_RULES[pattern],
                "first_start": listed[0]["start"] if listed else None,
                "positives": listed,
            }
        lookalikes = {
            kind: [{"entity_type": t, "entity": e} for t, e in self._lookalikes[kind]
                   if (t, e) not in positive_keys and e in present.get(t, ())]
            for kind in LOOKALIKE_KINDS}
        return {"format": FORMAT, "source": source, "patterns": patterns,
                "lookalikes": lookalikes,
                "entities": {kind: len(ids) for kind, ids in sorted(present.items())},
                "labels": labels}


def write_truth(truth: dict[str, Any], path: Path) -> None:
    path.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
