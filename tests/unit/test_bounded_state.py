"""processing.max_entities_per_shard: a flood of fresh ids stays under the bound, evicting
idle entities first, then the least recently active, never one inside an alert's cool-down."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from monitor.config import Settings
from monitor.contract.events import PAYMENTS, from_dict
from monitor.outputs.metrics import Metrics
from monitor.routing.views import views
from monitor.state.shard import Shard
from streams.devtools.freshids import flood

BOUND = 20_000


def bounded(bound: int, **processing: Any) -> Settings:
    base = Settings()
    return Settings(processing=base.processing.model_copy(
        update={"max_entities_per_shard": bound, **processing}))


def test_two_million_fresh_ids_stay_under_the_bound() -> None:
    figures = list(flood(bounded(BOUND), 2_000_000, 200_000))
    assert [figure["ids"] for figure in figures] == list(range(200_000, 2_000_001, 200_000))
    for figure in figures:
        assert figure["largest_shard"] <= BOUND
        assert figure["entities"] + figure["evicted"] == figure["ids"]
    assert figures[-1]["evicted"] > 2_000_000 - 4 * BOUND


def pay(number: int, payer: str, payee: str, minute: int) -> Any:
    return from_dict(PAYMENTS, {
        "event_id": f"e-{number}", "ts": f"2026-01-05T09:{minute:02d}:00Z", "payer": payer,
        "payee": payee, "amount": 10.0, "channel": "transfer"})


def test_the_least_recently_active_go_first_and_an_open_alert_stays() -> None:
    shard = Shard(0, bounded(100))
    shard.clock = lambda: 1_767_610_000.0
    first = pay(0, "oldest", "oldest-payee", 0)
    for view in views(first):
        shard.process(view, first)
    shard.entities["account:oldest"].mark_alerted("mule_account", first.ts)  # an open alert
    for number in range(1, 200):
        event = pay(number, f"payer-{number}", f"payee-{number}", 1 + number % 50)
        for view in views(event):
            shard.process(view, event)
        assert len(shard.entities) <= 100
    assert "account:oldest" in shard.entities  # within its cool-down
    assert "account:oldest-payee" not in shard.entities  # least recently active
    assert shard.evicted_by["account:bound"] == shard.evicted > 0


def test_evictions_and_the_bound_are_metrics() -> None:
    shard = Shard(0, bounded(100, entity_warning_ratio=0.5))
    for number in range(60):
        event = pay(number, f"a-{number}", f"b-{number}", number % 60)
        for view in views(event):
            shard.process(view, event)
    metrics = Metrics(CollectorRegistry())
    metrics.watch_shards(lambda: [shard])
    sample = metrics.registry.get_sample_value
    assert sample("fraudmon_entities_evicted_total",
                  {"family": "account", "reason": "bound"}) == shard.evicted > 0
    assert sample("fraudmon_shards_near_entity_limit") == 1
    assert sample("fraudmon_shard_entity_limit") == 100
