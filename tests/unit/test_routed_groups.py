"""Routed groups in the worker loop (streams.pipeline.loop): which record each view goes into,
and what reading a group back does. The producer here is a recorder of records; the
loop runs against a real broker in tests/integration (live decisions equal replay's)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from monitor.config import Settings
from monitor.contract.events import Event, from_dict
from monitor.outputs.metrics import Metrics
from monitor.processing.folding import GROUP_VIEWS
from monitor.routing import envelope
from monitor.routing.views import View, views
from monitor.state.checkpoint import FileCheckpointStore
from monitor.state.shard import Shard
from streams.pipeline.loop import Pipeline
from streams.state.shards import ShardManager


class RecordingOutputs:
    def __init__(self) -> None:
        self.records: list[tuple[str, int | None, bytes]] = []

    def add(self, topic: str, key: bytes | None, value: bytes,
            partition: int | None = None) -> None:
        self.records.append((topic, partition, value))

    def routed(self, topic: str) -> list[tuple[int | None, bytes]]:
        return [(partition, value) for name, partition, value in self.records if name == topic]


class Consumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def resume(self, *tps: TopicPartition) -> None:
        pass


def payment(number: int) -> Event:
    return from_dict("payments", {
        "event_id": f"p-{number}", "ts": f"2026-01-05T09:{number % 60:02d}:00+08:00",
        "payer": f"payer-{number}", "payee": f"payee-{number}", "amount": 10.0 + number,
        "channel": "card"})


def pipeline(tmp_path: Path) -> tuple[Pipeline, RecordingOutputs]:
    """A worker owning shards 0 (restored) and 1 (not restored yet) of four."""
    settings = Settings()
    line = Pipeline(settings, ShardManager(settings, FileCheckpointStore(tmp_path)),
                    Metrics(CollectorRegistry()))
    outputs = RecordingOutputs()
    line.outputs = outputs  # type: ignore[assignment]
    line.consumer = Consumer({TopicPartition(line.routed, p) for p in (0, 1)})  # type: ignore[assignment]
    line.owned = {0, 1}
    line.caught_up = True
    line.manager.shards[0] = Shard(0, settings)
    return line, outputs


def record(topic: str, partition: int, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, 0, 0, None, value, None, 0, len(value), ())


def route(line: Pipeline, shard_id: int, view: View, event: Event, arrived: float | None,
          source: bytes | None, origin: tuple[str, int, int] | None = None) -> None:
    """Route one of the event's own views as ingest does."""
    line.folder.route(shard_id, view, event, arrived, source, origin, False)


def first_view(event: Event) -> View:
    return views(event)[0]


def test_views_go_to_one_group_per_shard_in_order_and_are_folded_only_where_owned(
        tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    routed: dict[int, list[Any]] = {0: [], 1: [], 2: []}
    for number in range(6):
        event = payment(number)
        shard_id = number % 3
        route(line, shard_id, first_view(event), event, 1.5, None)
        routed[shard_id].append((first_view(event), event, 1.5))
    assert line.manager.shards[0].processed == 2  # folded here, when routed
    assert not outputs.routed(line.routed)  # produced once the batch is handled
    line.folder.close_groups()
    records = dict(outputs.routed(line.routed))
    assert sorted(records) == [0, 1, 2]
    for shard_id, value in records.items():
        assert envelope.decode_group(value) == routed[shard_id]
    assert line.readback.folded == {records[0]: (1, 2)} and line.readback.folded_views == {0: 2}
    assert line.readback.decoded == {records[1]: routed[1]}  # round trip: shard 1 is not restored
    assert records[2] not in line.readback.decoded  # another worker's shard


def test_a_group_is_closed_at_its_size_limit(tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    for number in range(GROUP_VIEWS + 1):
        event = payment(number)
        route(line, 2, first_view(event), event, None, None)
    line.folder.close_groups()
    sizes = [len(envelope.decode_group(value)) for _, value in outputs.routed(line.routed)]
    assert sizes == [GROUP_VIEWS, 1]


async def test_a_group_folded_here_is_skipped_when_read_back(tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    for number in range(3):
        event = payment(number)
        route(line, 0, first_view(event), event, None, None)
    line.folder.close_groups()
    shard = line.manager.shards[0]
    (_, value), = outputs.routed(line.routed)
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 7, value)])
    assert shard.processed == 3  # not folded a second time
    assert shard.applied_offset == 7
    assert not line.readback.folded and line.readback.folded_views == {0: 0}


async def test_a_group_read_back_is_folded_view_by_view_once(tmp_path: Path) -> None:
    # What a restarted worker or a new owner does with a group another worker produced.
    line, _ = pipeline(tmp_path)
    events = [payment(number) for number in range(3)]
    value = envelope.encode_group([envelope.encode(first_view(e), e) for e in events])
    shard = line.manager.shards[0]
    tp = TopicPartition(line.routed, 0)
    await line.scorer.score(tp, [record(line.routed, 0, 4, value)])
    assert shard.processed == 3 and shard.applied_offset == 4
    await line.scorer.score(tp, [record(line.routed, 0, 4, value)])  # redelivered: already applied
    assert shard.processed == 3
    decisions = [v for name, _, v in line.outputs.records  # type: ignore[union-attr]
                 if name == line.decisions_topic]
    assert len(decisions) == 3


async def test_a_bad_view_in_a_group_read_back_is_dead_lettered_alone(tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    events = [payment(number) for number in range(2)]
    value = envelope.encode_group([envelope.encode(first_view(events[0]), events[0]),
                                   b'{"kind": "payments"}',
                                   envelope.encode(first_view(events[1]), events[1])])
    shard = line.manager.shards[0]
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 9, value)])
    assert shard.processed == 2 and shard.applied_offset == 9
    letters = [orjson.loads(v) for name, _, v in outputs.records if name == line.dead_topic]
    assert len(letters) == 1 and letters[0]["source"]["offset"] == 9
    assert "not a routed envelope" in letters[0]["reason"]


def test_a_view_our_code_fails_on_is_dead_lettered_and_the_stream_goes_on(
        tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    broken, fine = payment(1), payment(2)
    shard = line.manager.shards[0]
    shard.entities[f"account:{broken.payer}"] = "not a state"  # type: ignore[assignment]
    route(line, 0, first_view(broken), broken, 1.5, None)
    route(line, 0, first_view(fine), fine, 1.5, None)
    letters = [orjson.loads(v) for name, _, v in outputs.records if name == line.dead_topic]
    assert len(letters) == 1
    assert letters[0]["reason"].startswith("internal error while scoring: ")
    assert letters[0]["source"] == {"topic": line.routed, "partition": 0, "offset": None}
    assert envelope.decode_group(b"[" + letters[0]["original"].encode() + b"]") == [
        (first_view(broken), broken, 1.5)]
    decisions = [v for name, _, v in outputs.records if name == line.decisions_topic]
    assert [orjson.loads(v)["event_id"] for v in decisions] == [fine.event_id]


async def test_a_record_our_decoding_fails_on_is_dead_lettered_and_the_stream_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line, outputs = pipeline(tmp_path)
    good = envelope.encode_group([envelope.encode(first_view(payment(1)), payment(1))])

    def failing(value: bytes, invalid: Any = None, *rest: Any) -> list[envelope.Decoded]:
        if value == b"[1]":
            raise RuntimeError("a bug")
        return envelope.decode_group(value, invalid, *rest)

    monkeypatch.setattr("streams.pipeline.score.envelope", SimpleNamespace(
        decode_group=failing, Reference=envelope.Reference))
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 2, b"[1]"),
                                                      record(line.routed, 0, 3, good)])
    letters = [orjson.loads(v) for name, _, v in outputs.records if name == line.dead_topic]
    assert [letter["reason"] for letter in letters] == [
        "internal error while decoding: RuntimeError"]
    shard = line.manager.shards[0]
    assert shard.processed == 1 and shard.applied_offset == 3


class Lookup:
    """Input messages by place, as the input topics would return them."""

    def __init__(self, messages: dict[tuple[str, int, int], bytes]) -> None:
        self.messages = messages  # values, at Kafka time 7.5
        self.asked: list[tuple[str, int, int]] = []
        self.calls = 0

    async def values(self, places: Any) -> dict[tuple[str, int, int], tuple[bytes, float]]:
        places = list(places)
        self.asked += places
        self.calls += 1
        return {place: (self.messages[place], 7.5) for place in places
                if place in self.messages}


def ingested(line: Pipeline, number: int) -> tuple[Event, bytes, tuple[str, int, int]]:
    """A payment as this worker ingests it: the event, its message value and place."""
    event = payment(number)
    source = orjson.dumps(event.raw)
    return event, source, (line.settings.kafka.topic("payments"), 2, 100 + number)


def test_a_view_folded_here_is_logged_as_a_reference_to_its_input(tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    event, source, place = ingested(line, 1)
    route(line, 0, first_view(event), event, 1.5, source, place)  # owned: folded here
    route(line, 1, first_view(event), event, 1.5, source, place)  # not restored: round trip
    line.folder.close_groups()
    records = dict(outputs.routed(line.routed))
    assert envelope.decode_group(records[0]) == [
        envelope.Reference(event.event_id, first_view(event).role, *place)]
    assert envelope.decode_group(records[1]) == [(first_view(event), event, 1.5)]
    assert len(records[0]) * 2 < len(records[1])


async def test_a_reference_read_back_is_folded_from_its_input_message(tmp_path: Path) -> None:
    # What a worker does with the references of a shard it restored after a crash.
    line, outputs = pipeline(tmp_path)
    done, _, done_place = ingested(line, 1)  # in the restored state already
    line.manager.shards[0].process(first_view(done), done)
    events = [ingested(line, number) for number in (2, 3)]
    lookup = Lookup({place: source for _, source, place in events})
    line.scorer.lookup = lookup  # type: ignore[assignment]
    first = envelope.encode_group(
        [envelope.encode_reference(done, first_view(done), *done_place)]
        + [envelope.encode_reference(e, first_view(e), *place) for e, _, place in events[:1]])
    second = envelope.encode_group([envelope.encode_reference(e, views(e)[1], *place)
                                    for e, _, place in events[1:]])
    shard = line.manager.shards[0]
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 5, first),
                                                      record(line.routed, 0, 6, second)])
    assert lookup.asked == [place for _, _, place in events]  # not the one folded already
    assert lookup.calls == 1  # the batch's references in one go
    assert shard.processed == 3 and shard.applied_offset == 6
    decisions = [orjson.loads(v) for name, _, v in outputs.records
                 if name == line.decisions_topic]
    assert [d["event_id"] for d in decisions] == ["p-2"]  # p-3's payee view decides nothing
    payee = shard.entities[f"account:{events[1][0].payee}"]  # the view the role named
    assert payee is not None


async def test_a_group_of_views_and_references_is_folded_in_its_order(tmp_path: Path) -> None:
    # An onward view of an event read back is logged whole, beside references.
    line, outputs = pipeline(tmp_path)
    plain = payment(7)
    event, source, place = ingested(line, 8)
    line.scorer.lookup = Lookup({place: source})  # type: ignore[assignment]
    value = envelope.encode_group([envelope.encode(first_view(plain), plain),
                                   envelope.encode_reference(event, first_view(event), *place)])
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 3, value)])
    decisions = [orjson.loads(v)["event_id"] for name, _, v in outputs.records
                 if name == line.decisions_topic]
    assert decisions == [plain.event_id, event.event_id]
    shard = line.manager.shards[0]
    assert shard.processed == 2 and shard.applied_offset == 3


async def test_a_reference_to_a_message_gone_is_dead_lettered_alone(tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    (gone, _, gone_place), (kept, source, kept_place) = ingested(line, 1), ingested(line, 2)
    line.scorer.lookup = Lookup({kept_place: source})  # type: ignore[assignment]
    value = envelope.encode_group([
        envelope.encode_reference(gone, first_view(gone), *gone_place),
        envelope.encode_reference(kept, first_view(kept), *kept_place)])
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 3, value)])
    assert line.manager.shards[0].processed == 1
    letters = [orjson.loads(v) for name, _, v in outputs.records if name == line.dead_topic]
    assert len(letters) == 1 and "the input message is gone" in letters[0]["reason"]
    assert letters[0]["source"]["offset"] == 3


async def test_a_reference_to_another_event_is_not_folded(tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    (event, _, place), (_, other, _) = ingested(line, 1), ingested(line, 2)
    line.scorer.lookup = Lookup({place: other})  # type: ignore[assignment]
    value = envelope.encode_group([envelope.encode_reference(event, first_view(event), *place)])
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 3, value)])
    assert line.manager.shards[0].processed == 0
    letters = [orjson.loads(v) for name, _, v in outputs.records if name == line.dead_topic]
    assert "another event is there" in letters[0]["reason"]


async def test_references_name_the_event_s_own_views_by_role_and_carry_onward_ones(
        tmp_path: Path) -> None:
    line, outputs = pipeline(tmp_path)
    (event, source, place), (other, other_source, other_place) = (ingested(line, 1),
                                                                   ingested(line, 2))
    line.scorer.lookup = Lookup({place: source, other_place: other_source})  # type: ignore[assignment]
    onward = View("rollover", "lender", "lender-9", False)
    missing = View("borrower", "borrower", "b-1", True)  # a role payments never have
    value = envelope.encode_group([
        envelope.encode_reference(event, onward, *place, onward=True),
        envelope.encode_reference(other, missing, *other_place)])
    await line.scorer.score(TopicPartition(line.routed, 0), [record(line.routed, 0, 3, value)])
    shard = line.manager.shards[0]
    assert shard.processed == 1  # the onward view, rebuilt from its fields
    assert "lender:lender-9" in shard.entities
    letters = [orjson.loads(v) for name, _, v in outputs.records if name == line.dead_topic]
    assert len(letters) == 1 and "the event has no 'borrower'" in letters[0]["reason"]
