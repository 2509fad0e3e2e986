"""Topic creation and the Faust topic declarations of one deployment."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.contract.events import INPUT_KINDS
from streams.connection import client_options

if TYPE_CHECKING:
    import faust

    from monitor.config import Settings

logger = logging.getLogger(__name__)

LOGICAL_TOPICS = ("payments", "loan_disbursals", "labels", "decisions", "alerts",
                  "dead_letter", "routed", "webhook_dead_letter")


INPUT_MESSAGE_BYTES = 8 << 20
"""``max.message.bytes`` of the input topics: what an upstream system may write. The
worker dead-letters anything over ``processing.max_event_bytes`` with a prefix, so an
oversized message costs a dead letter, not a stuck partition."""
OUTPUT_MESSAGE_BYTES = 1 << 20
"""``max.message.bytes`` of every topic the worker writes (routed groups, decisions,
alerts, dead letters, changelog chunks): each record it writes is sized to fit
(``tests/unit/test_record_sizes.py``)."""


def message_bytes(logical: str) -> int:
    """``max.message.bytes`` of a topic the project creates, by logical name."""
    return INPUT_MESSAGE_BYTES if logical in INPUT_KINDS else OUTPUT_MESSAGE_BYTES


def physical_names(settings: Settings) -> dict[str, str]:
    """Logical name -> topic name in Kafka, prefix included."""
    return {logical: settings.kafka.topic(logical) for logical in LOGICAL_TOPICS}


#: The compacted topic of shard snapshots (:mod:`streams.state.changelog`), after the topic
#: prefix like every other topic. Segments of 64 MiB roll often enough for the cleaner
#: to compact a partition before a restore has to read much more than its live keys.
CHANGELOG_NAME = "fraudmon-shard-state"
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(64 << 20),
                    "min.cleanable.dirty.ratio": "0.2",
                    "max.message.bytes": str(OUTPUT_MESSAGE_BYTES)}


def changelog_topic(settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}{CHANGELOG_NAME}"


def kind_by_topic(settings: Settings) -> dict[str, str]:
    """Input topic name in Kafka -> event kind of the contract."""
    return {settings.kafka.topic(kind): kind for kind in INPUT_KINDS}


async def ensure_topics(settings: Settings, timeout_ms: int = 30_000) -> None:
    """Create every topic the monitor uses that does not exist yet.

    The routed topic must have exactly ``kafka.partitions`` partitions: each partition
    is one state shard, and replay shards by the same count. With the Kafka checkpoint
    store, so must the compacted changelog topic (shard ``n`` lives in partition ``n``).
    """
    admin = AIOKafkaAdminClient(**client_options(settings.kafka),
                                request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.kafka.partitions, settings.kafka.replication_factor,
                     topic_configs={"max.message.bytes": str(message_bytes(logical))})
            for logical, name in physical_names(settings).items() if name not in existing
        ]
        changelog = changelog_topic(settings)
        kafka_store = settings.processing.checkpoint_store == "kafka"
        if kafka_store and changelog not in existing:
            wanted.append(NewTopic(changelog, settings.kafka.partitions,
                                   settings.kafka.replication_factor,
                                   topic_configs=CHANGELOG_CONFIG))
        if wanted:
            try:
                await admin.create_topics(wanted, timeout_ms=timeout_ms)
            except TopicAlreadyExistsError:
                logger.info("topics were created concurrently")
            logger.info("created topics: %s", ", ".join(t.name for t in wanted))
        for sharded in [settings.kafka.topic("routed")] + ([changelog] if kafka_store else []):
            count = await _partition_count(admin, sharded, timeout_ms / 1000)
            if count != settings.kafka.partitions:
                raise RuntimeError(
                    f"topic {sharded} has {count} partitions but kafka.partitions is "
                    f"{settings.kafka.partitions}: they must match (one shard per partition)")
    finally:
        await admin.close()


async def _partition_count(admin: AIOKafkaAdminClient, topic: str, limit: float) -> int:
    """Partitions of ``topic``; a topic just created may describe with none for a moment."""
    deadline = time.monotonic() + limit
    while True:
        described = await admin.describe_topics([topic])
        count = len(described[0]["partitions"])
        if count or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)  # polling the metadata, with a deadline


@dataclass(frozen=True)
class Topics:
    """The Faust topic objects of one app."""

    inputs: Any
    routed: Any
    decisions: Any
    alerts: Any
    dead_letter: Any


def declare(app: faust.App, settings: Settings) -> Topics:
    names = physical_names(settings)

    def topic(*topic_names: str) -> Any:
        return app.topic(*topic_names, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    return Topics(
        inputs=topic(names["payments"], names["loan_disbursals"], names["labels"]),
        routed=topic(names["routed"]),
        decisions=topic(names["decisions"]),
        alerts=topic(names["alerts"]),
        dead_letter=topic(names["dead_letter"]),
    )
