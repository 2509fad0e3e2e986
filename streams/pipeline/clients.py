"""The worker's Kafka clients and pending outputs, shared by the parts of its loop.

Opened by :meth:`streams.pipeline.loop.Pipeline.start` and closed by its ``stop``; the
parts (ingest, score, checkpoint, rebalance) hold this one object, so they always see
the clients in use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from streams.pipeline.outputs import Outputs


class Clients:
    """The consumer, the producer and the producer's pending batches: None until started."""

    def __init__(self) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.outputs: Outputs | None = None

    def out(self) -> Outputs:
        """The pending outputs of a started worker."""
        outputs = self.outputs
        assert outputs is not None  # noqa: S101 - started
        return outputs

    def reader(self) -> AIOKafkaConsumer:
        """The consumer of a started worker."""
        consumer = self.consumer
        assert consumer is not None  # noqa: S101 - started
        return consumer

    def inputs(self, routed: str) -> list[TopicPartition]:
        """The assigned partitions of the input topics (everything but ``routed``)."""
        return [tp for tp in self.reader().assignment() if tp.topic != routed]
