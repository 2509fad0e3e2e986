"""An entity's recent movements as a graph, read from what its shard already holds.

The console draws these: payments payer -> payee with amounts and times, loans lender ->
borrower and repayments borrower -> lender, the accounts a device was used by. Nothing
here is kept for the purpose: each family's state already holds its counterparties for
detection, bounded, and this reads them without changing anything (no window is pruned,
so a snapshot in progress is not disturbed). What each family holds, and so what its
graph can show:

* ``account``: payments in (any channel) and onward payments out (transfers, cash-outs)
  within the pass-through window (``detection.mule_window_hours``), at most 512 each;
* ``borrower``: loans (lender, principal, fee, term) and repayments (which loan; the new
  loan that funded it when it was a rollover) of the last 90 days, at most 64 each. A
  repayment's amount is not held;
* ``device``: the accounts it was used by (payments, amount) and the payees they paid;
* ``lender``: counts only (loans, referrals, rollovers), no counterparties: its graph is
  the lender alone, and the console reaches its borrowers through their own cases.

Edges of one kind between one pair are kept apart (each loan is an edge); the console
may aggregate them for drawing. The newest ``limit`` are returned, oldest first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from monitor.detection.entities import (
    AccountState,
    BorrowerState,
    DeviceState,
    EntityState,
    LenderState,
)

DEFAULT_LIMIT: Final = 200
MAX_LIMIT: Final = 1000

HELD: Final = {
    "account": "payments in and onward payments out within the pass-through window",
    "borrower": "loans and repayments of the last 90 days (repayment amounts are not held)",
    "device": "the accounts the device was used by and the payees they paid",
    "lender": "counts only: a lender's state holds no counterparties",
}


def time_text(ts: float) -> str:
    """Unix seconds as RFC 3339 UTC.

    >>> time_text(1767571200.0)
    '2026-01-05T00:00:00Z'
    >>> time_text(1767571200.25)
    '2026-01-05T00:00:00.250Z'
    """
    when = datetime.fromtimestamp(ts, UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    millis = when.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def node_id(entity_type: str, entity: str) -> str:
    """A node's id in the graph: entity type and id, as shard keys are."""
    return f"{entity_type}:{entity}"


class _Graph:
    def __init__(self, entity_type: str, entity: str) -> None:
        self.me = node_id(entity_type, entity)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[tuple[float, int, dict[str, Any]]] = []
        self.unbuilt = 0
        """Edges counted but not built (a device's payee links past ``MAX_LIMIT``)."""
        self.node(entity_type, entity)

    def node(self, entity_type: str, entity: str, **flags: Any) -> str:
        key = node_id(entity_type, entity)
        found = self.nodes.get(key)
        if found is None:
            found = self.nodes[key] = {"id": key, "entity": entity, "entity_type": entity_type}
        found.update(flags)
        return key

    def edge(self, ts: float, kind: str, source: str, target: str,
             amount: float | None, **detail: Any) -> None:
        record = {"kind": kind, "source": source, "target": target,
                  "amount": None if amount is None else round(amount, 2),
                  "ts": time_text(ts), **detail}
        self.edges.append((ts, len(self.edges), record))


def _account(graph: _Graph, state: AccountState) -> None:
    me = graph.me
    if state.shared_device:
        graph.nodes[me]["shared_device"] = True
    if state.inflows is not None:
        for ts, amount, payer, transfer in state.inflows.entries:
            source = graph.node("account", payer)
            graph.edge(ts, "payment", source, me, amount,
                       channel="transfer" if transfer else "other")
    if state.outflows is not None:
        for ts, amount, payee, cash in state.outflows.entries:
            target = graph.node("account", payee)
            graph.edge(ts, "payment", me, target, amount,
                       channel="cash_out" if cash else "transfer")
    if state.chain_from:
        graph.node("account", state.chain_from, relayed=True)


def _borrower(graph: _Graph, state: BorrowerState) -> None:
    me = graph.me
    lenders: dict[str, str] = {}
    for ts, loan_id, lender, principal, fee, term_days, referred in state.loans:
        lenders[loan_id] = lender
        source = graph.node("lender", lender)
        graph.edge(ts, "loan", source, me, principal, loan_id=loan_id, fee=round(fee, 2),
                   term_days=term_days, referred=referred)
    for ts, loan_id, funding in state.repayments:
        repaid = lenders.get(loan_id)
        # The loan may have left the window: the repayment still shows, to the loan.
        target = (graph.node("lender", repaid) if repaid is not None
                  else graph.node("loan", loan_id))
        graph.edge(ts, "repayment", me, target, None, loan_id=loan_id,
                   funded_by=funding or None,
                   funded_by_lender=lenders.get(funding) if funding else None)


def _device(graph: _Graph, state: DeviceState, seen: float) -> None:
    me = graph.me
    for account, (payments, amount) in state.accounts.items():
        target = graph.node("account", account)
        graph.edge(seen, "device", me, target, amount, payments=int(payments))
    # Up to 256 payees of up to 256 accounts each: past MAX_LIMIT links, count only.
    for payee, payers in sorted(state.payees.items()):
        room = MAX_LIMIT - (len(graph.edges) - len(state.accounts))
        if room < len(payers):
            graph.unbuilt += len(payers) - max(room, 0)
            payers = set(sorted(payers)[:max(room, 0)])
        if not payers:
            continue
        target = graph.node("account", payee, hub=payee == state.hub)
        for account in sorted(payers):
            graph.edge(seen, "payment", node_id("account", account), target, None,
                       channel="device_payee")


def movements(state: EntityState, entity_type: str, entity: str,
              limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """The graph of ``state``'s recent movements: nodes, the newest ``limit`` edges
    (oldest first) and how many older ones were left out (``omitted``)."""
    graph = _Graph(entity_type, entity)
    if isinstance(state, AccountState):
        _account(graph, state)
    elif isinstance(state, BorrowerState):
        _borrower(graph, state)
    elif isinstance(state, DeviceState):
        # A device keeps totals, not times: its edges carry its last event's time.
        _device(graph, state, state.last_ts)
    elif not isinstance(state, LenderState):
        raise TypeError(f"no movements for {type(state).__name__}")
    ordered = sorted(graph.edges, key=lambda item: (item[0], item[1]))
    kept = ordered[-limit:] if limit else []
    edges = [record for _, _, record in kept]
    used = {graph.me} | {e["source"] for e in edges} | {e["target"] for e in edges}
    return {
        "entity": entity, "entity_type": entity_type,
        "held": HELD.get(entity_type, ""),
        "nodes": [node for key, node in graph.nodes.items() if key in used],
        "edges": edges,
        "omitted": len(ordered) - len(kept) + graph.unbuilt,
    }
