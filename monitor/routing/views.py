"""Routing: which entity views an event updates, and on which shard each lives.

An event touches several entities (a payment: its payer and payee accounts, its device
and, for a loan repayment, the borrower). Each entity's state lives on the shard its key
hashes to, so an event is routed once per entity it updates, as a *view*. Exactly one
view per event is *primary*: it emits the event's decision; the others only update state
and may raise alerts for their entity. A shard may route further views of the same event
onward (a rollover found on the borrower's shard updates both lenders).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.contract.events import Event, Label, LoanDisbursal, Payment
from monitor.routing.partitioner import partition_for


@dataclass(slots=True, init=False, unsafe_hash=True)
class View:
    """One entity's view of an event (never changed once built: hashable by value).

    ``__init__`` is written out because a compiled build runs a generated one (a frozen
    dataclass's) as interpreted Python, several times slower.
    """

    role: str
    entity_type: str
    entity: str
    primary: bool

    def __init__(self, role: str, entity_type: str, entity: str, primary: bool) -> None:
        self.role = role
        self.entity_type = entity_type
        self.entity = entity
        self.primary = primary

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
        if event.device_id is not None:
            out.append(View("device", "device", event.device_id, False))
        return out
    if isinstance(event, LoanDisbursal):
        out = [View("borrower", "borrower", event.borrower, True),
               View("lender", "lender", event.lender, False)]
        if event.referrer is not None and event.referrer != event.lender:
            out.append(View("referrer", "lender", event.referrer, False))
        if event.device_id is not None:
            out.append(View("device", "device", event.device_id, False))
        return out
    return [_label_view(event)]


def _label_view(label: Label) -> View:
    if label.entity is not None and label.entity_type is not None:
        return View("label", label.entity_type, label.entity, True)
    return View("label", "event", label.target_event_id or label.event_id, True)


def entities(event: Event) -> list[dict[str, str]]:
    """The entities an event touches, for its decision record (the views' entities, in
    the same order, without building the views)."""
    if isinstance(event, Payment):
        out = [{"type": "account", "id": event.payer}]
        if event.payee != event.payer:
            out.append({"type": "account", "id": event.payee})
        if event.borrower is not None:
            out.append({"type": "borrower", "id": event.borrower})
        if event.device_id is not None:
            out.append({"type": "device", "id": event.device_id})
        return out
    return [{"type": v.entity_type, "id": v.entity} for v in views(event)
            if v.entity_type != "event"]


_SHARDS: dict[int, dict[str, dict[str, int]]] = {}
"""Per partition count and entity type, the shard of each recently seen entity id (keyed
by id, the shard key is built and hashed only on a miss)."""
_SHARDS_MAX = 1 << 18


def _cache(entity_type: str, partitions: int) -> dict[str, int]:
    by_type = _SHARDS.get(partitions)
    if by_type is None:
        by_type = _SHARDS[partitions] = {}
    cache = by_type.get(entity_type)
    if cache is None:
        cache = by_type[entity_type] = {}
    return cache


def _shard(cache: dict[str, int], entity_type: str, entity: str, partitions: int) -> int:
    shard = cache.get(entity)
    if shard is None:
        if len(cache) >= _SHARDS_MAX:
            cache.clear()
        shard = cache[entity] = partition_for(f"{entity_type}:{entity}", partitions)
    return shard


def shard_of(view: View, partitions: int) -> int:
    """The shard (routed-topic partition) that owns ``view``'s entity."""
    entity_type = view.entity_type
    return _shard(_cache(entity_type, partitions), entity_type, view.entity, partitions)


def placements(event: Event, partitions: int) -> list[tuple[View, int]]:
    """Each view of ``event`` with the shard it goes to, primary first.

    A transaction label (``target_event_id``) cannot know which shard decided on its
    transaction, so besides its primary view it goes, as a ``label_copy``, to every other
    shard; the one that remembers the transaction learns from it.
    """
    if isinstance(event, Payment):  # nearly every event: views and shards in one go
        payer, payee = event.payer, event.payee
        accounts = _cache("account", partitions)
        placed = [(View("payer", "account", payer, True),
                   _shard(accounts, "account", payer, partitions))]
        if payee != payer:
            placed.append((View("payee", "account", payee, False),
                           _shard(accounts, "account", payee, partitions)))
        borrower, device = event.borrower, event.device_id
        if borrower is not None:
            placed.append((View("repayment", "borrower", borrower, False),
                           _shard(_cache("borrower", partitions), "borrower", borrower,
                                  partitions)))
        if device is not None:
            placed.append((View("device", "device", device, False),
                           _shard(_cache("device", partitions), "device", device, partitions)))
        return placed
    placed = [(view, shard_of(view, partitions)) for view in views(event)]
    if isinstance(event, Label) and event.target_event_id is not None:
        home = placed[0][1]
        copy = View("label_copy", "event", event.target_event_id, False)
        placed.extend((copy, shard) for shard in range(partitions) if shard != home)
    return placed
