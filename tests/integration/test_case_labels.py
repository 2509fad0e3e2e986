"""A decision's label on the real broker when its worker dies mid-way: written but its
offset never recorded, or never written at all. Once the claim has run out, a settle
pass finds the first on its partition (and records where, writing nothing) and writes
the second, once; a second pass does nothing."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from monitor.contract.events import LABELS, parse, partition_key
from monitor.interfaces.cases import label_for
from monitor.outputs.metrics import Metrics
from monitor.outputs.store import AlertStore
from monitor.outputs.store.cases import PendingLabel
from monitor.outputs.store.sqlite import SqliteBackend
from streams.caselabels import CaseLabels
from streams.topics import ensure_topics
from tests import case_contract, store_contract
from tests.integration.harness import TopicReader, make_config

pytestmark = pytest.mark.integration


async def test_a_label_written_but_not_recorded_is_not_written_again(
        tmp_path: Path, bootstrap: str) -> None:
    _, settings = make_config(tmp_path, bootstrap)
    await ensure_topics(settings)
    store = AlertStore(SqliteBackend(tmp_path / "alerts.sqlite3"))
    await store.open()
    metrics = Metrics()
    labels = CaseLabels(settings, store, metrics)
    await labels.start()
    topic = settings.kafka.topic("labels")
    # Two alerts on one borrower: their labels share a key, so a partition.
    alerts = [store_contract.alert(n, pattern="rollover_loan", entity="b-7",
                                   entity_type="borrower") for n in (1, 2)]
    try:
        await store.write([store_contract.stored(a) for a in alerts], {}, "c", "alerts")
        now = time.time()
        pending = []
        for alert in alerts:
            body = orjson.dumps(label_for(alert, 1, True, "ana", now))
            key = partition_key(parse(LABELS, body))
            partition, end = await labels.place(key)
            label = PendingLabel(f"case-{alert['alert_id']}-1", topic, partition, key,
                                 body, end)
            # Recorded with its decision, under a claim that has already run out (as
            # after the writer died and CLAIM_SECONDS passed).
            assert await store.apply_change(
                alert["alert_id"], 0, ("confirmed", "ana", 1, 1),
                case_contract.entry("ana", "confirmed", 1), label, round(now * 1e6),
                round(now * 1e6) - 1)
            pending.append(label)
        # The first label reached the topic, the second never did; others' records
        # follow on the same partition (the settle pass must look past them).
        written_at = await labels.write(pending[0])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for n in range(50):
                await producer.send_and_wait(
                    topic, orjson.dumps({"event_id": f"other-{n}"}),
                    key=pending[0].key.encode(), partition=pending[0].partition)
        finally:
            await producer.stop()

        await labels.settle_pending()
        found = metrics.registry.get_sample_value
        assert found("fraudmon_case_labels_total", {"outcome": "found"}) == 1
        assert found("fraudmon_case_labels_total", {"outcome": "written_late"}) == 1
        assert found("fraudmon_case_labels_pending") == 0
        offsets = dict(await case_contract.table_rows(
            store, "SELECT event_id, produced_offset FROM fraudmon_case_labels"))
        assert offsets[pending[0].event_id] == written_at
        assert offsets[pending[1].event_id] > written_at + 50

        await labels.settle_pending()  # settled: nothing is claimed again
        assert found("fraudmon_case_labels_total", {"outcome": "written_late"}) == 1
        async with TopicReader(bootstrap, [topic]) as reader:
            await reader.drain()
        ids = [r.get("event_id") for r in reader.records[topic]]
        assert ids.count(pending[0].event_id) == 1 and ids.count(pending[1].event_id) == 1
    finally:
        await labels.stop()
        await store.close()
