"""What folding hands the worker, turned into Kafka records: the worker's
:class:`~monitor.processing.folding.FoldSink`, and its dead letters.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from monitor.contract.records import DEAD_LETTER_PREFIX, dead_letter
from monitor.routing import envelope

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

    from monitor.contract.events import Event
    from monitor.outputs.metrics import Metrics
    from monitor.processing.folding import Group
    from monitor.processing.readback import ReadBack
    from monitor.routing.views import View
    from monitor.state.shard import Shard
    from streams.pipeline.clients import Clients
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)


def internal_error(stage: str, exc: Exception) -> str:
    """The dead-letter reason for a record our own code failed on (never its content)."""
    return f"internal error while {stage}: {type(exc).__name__}"


class DeadLetters:
    """Writes dead letters: what breaks the contract, and what our own code failed on."""

    def __init__(self, clients: Clients, topic: str, prefix: int = DEAD_LETTER_PREFIX) -> None:
        self.clients = clients
        self.topic = topic
        self.prefix = prefix
        """Bytes of an original a dead letter keeps (``processing.dead_letter_prefix_bytes``)."""

    def record(self, record: ConsumerRecord[bytes, bytes], reason: str,
               value: bytes | None = None) -> None:
        """Dead-letter ``record`` (or ``value``, one item of it) with ``reason``."""
        letter = dead_letter(record.value if value is None else value, record.topic,
                             record.partition, record.offset, reason, self.prefix)
        self.clients.out().add(self.topic, record.key, orjson.dumps(letter))

    def bug(self, record: ConsumerRecord[bytes, bytes], stage: str, exc: Exception) -> None:
        """A record our own code failed on: log where (never the record), dead-letter it."""
        logger.exception("%s %s[%d]@%d failed", stage, record.topic, record.partition,
                         record.offset)
        self.record(record, internal_error(stage, exc))

    def view(self, key: bytes, value: bytes, topic: str, partition: int, offset: int | None,
             reason: str) -> None:
        """Dead-letter one routed view (an envelope) read at ``offset`` of ``topic``."""
        self.clients.out().add(self.topic, key, orjson.dumps(dead_letter(
            value, topic, partition, offset, reason, self.prefix)))


class WorkerSink:
    """The live worker's fold sink: routed groups and alerts to their topics,
    the read-back cache and the metrics. (Alerts reach the alert store through the alerts
    topic: :mod:`streams.alertstore`.)"""

    def __init__(self, clients: Clients, routed: str, alerts: str, readback: ReadBack,
                 manager: ShardManager, metrics: Metrics, dead: DeadLetters) -> None:
        self.clients = clients
        self.routed, self.alerts = routed, alerts
        self.readback = readback
        self.manager = manager
        self.metrics = metrics
        self.dead = dead

    def group_closed(self, shard_id: int, group: Group) -> None:
        """Produce ``group`` for ``shard_id``; remember it if it comes back here."""
        value = envelope.encode_group(group.envelopes)
        self.clients.out().add(self.routed, None, value, shard_id)
        self.readback.produced(shard_id, value, group)

    def folding_ahead(self, shard_id: int) -> None:
        self.manager.touch(shard_id)

    def alerted(self, view: View, event: Event, alert: dict[str, Any]) -> None:
        """Send an alert a fold raised and count it."""
        self.clients.out().add(self.alerts, view.key.encode(), orjson.dumps(alert))
        self.metrics.alert(alert["pattern"], alert["severity"])

    def fold_failed(self, shard: Shard, view: View, event: Event, arrived: float | None,
                    source: bytes | None, offset: int | None, exc: Exception) -> None:
        """A view our own code failed on: logged, and dead-lettered as an envelope
        (``offset``: that of the routed record it was read in), not the stream."""
        logger.error("folding a view for shard %d failed", shard.shard_id, exc_info=exc)
        self.dead.view(view.key.encode(), envelope.encode(view, event, arrived, source),
                       self.routed, shard.shard_id, offset, internal_error("scoring", exc))
