"""Routing: which entity views an event updates, and on which shard each lives.

An event touches several entities (a payment: its payer and payee accounts and, for a
loan repayment, the borrower). Each entity's state lives on the shard its key hashes to,
so an event is routed once per entity it updates, as a *view*. Exactly one view per
event is *primary*: it emits the event's decision; the others only update state and may
raise alerts for their entity.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.events import Event, Label, LoanDisbursal, Payment
from monitor.partitioning import partition_for


@dataclass(frozen=True, slots=True)
class View:
    """One entity's view of an event."""

    role: str
    entity_type: str
    entity: str
    primary: bool

    @property
    def key(self) -> str:
        """The shard key: entity type and id, so namespaces never collide."""
        return f"{self.entity_type}:{self.entity}"


def views(event: Event) -> list[View]:
    """The views of ``event``, primary first."""
    if isinstance(event, Payment):
        out = [View("payer", "account", event.payer, True)]
        if event.payee != event.payer:
            out.append(View("payee", "account", event.payee, False))
        if event.borrower is not None:
            out.append(View("repayment", "borrower", event.borrower, False))
        return out
    if isinstance(event, LoanDisbursal):
        out = [View("borrower", "borrower", event.borrower, True),
               View("lender", "lender", event.lender, False)]
        if event.referrer is not None and event.referrer != event.lender:
            out.append(View("referrer", "lender", event.referrer, False))
        return out
    return [_label_view(event)]


def _label_view(label: Label) -> View:
    if label.entity is not None and label.entity_type is not None:
        return View("label", label.entity_type, label.entity, True)
    return View("label", "event", label.target_event_id or label.event_id, True)


def entities(event: Event) -> list[dict[str, str]]:
    """The entities an event touches, for its decision record."""
    seen = [{"type": v.entity_type, "id": v.entity} for v in views(event)
            if v.entity_type != "event"]
    device = getattr(event, "device_id", None)
    if device is not None:
        seen.append({"type": "device", "id": device})
    return seen


def shard_of(view: View, partitions: int) -> int:
    """The shard (routed-topic partition) that owns ``view``'s entity."""
    return partition_for(view.key, partitions)
