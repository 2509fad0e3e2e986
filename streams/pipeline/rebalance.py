"""Rebalance: what the worker does when the group gives it partitions or takes them away.

Before giving partitions up it checkpoints their shards and commits; when given
partitions it owns their shards (the loop restores them before any record) and pauses
ingest until the owned routed partitions are read to their end (see
:meth:`streams.pipeline.loop.Pipeline._catch_up`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from aiokafka import ConsumerRebalanceListener, TopicPartition

if TYPE_CHECKING:
    from monitor.processing.folding import Folder
    from monitor.processing.readback import ReadBack
    from streams.pipeline.checkpoint import Checkpointer, Offsets
    from streams.pipeline.clients import Clients
    from streams.pipeline.flow import FlowControl
    from streams.state.shards import ShardManager

logger = logging.getLogger(__name__)


class Rebalance:
    """The worker's assignment: the routed partitions it owns, and whether the group is
    rebalancing (from start-up or a revoke until the next assignment)."""

    def __init__(self, clients: Clients, routed: str, folder: Folder, manager: ShardManager,
                 offsets: Offsets, readback: ReadBack, flow: FlowControl,
                 checkpointer: Checkpointer, drift_reported: dict[int, dict[str, int]]) -> None:
        self.clients = clients
        self.routed = routed
        self.folder = folder
        self.manager = manager
        self.offsets = offsets
        self.readback = readback
        self.flow = flow
        self.checkpointer = checkpointer
        self.drift_reported = drift_reported
        self.routed_partitions: list[TopicPartition] = []  # those of the owned shards
        self.rebalancing = True

    async def revoke(self, revoked: Collection[TopicPartition]) -> None:
        """Before giving partitions up: checkpoint their shards and commit, then release."""
        self.rebalancing = True
        gone = {tp.partition for tp in revoked if tp.topic == self.routed}
        await self.checkpointer.checkpoint(only=gone)
        self.manager.release(gone)
        for shard_id in gone:
            self.drift_reported.pop(shard_id, None)
        self.folder.owned.difference_update(gone)
        self.routed_partitions = [tp for tp in self.routed_partitions
                                  if tp.partition not in gone]
        self.folder.broken.difference_update(gone)
        self.offsets.drop(list(revoked))

    def assign(self, assigned: Collection[TopicPartition]) -> None:
        """Own the routed partitions assigned; the loop restores their shards before any
        record."""
        folder = self.folder
        folder.owned = {tp.partition for tp in assigned if tp.topic == self.routed}
        self.routed_partitions = [tp for tp in assigned if tp.topic == self.routed]
        self.rebalancing = False
        # Groups for shards owned before are not read back here; read back, those folded
        # here are dropped by the dedup window.
        self.readback.forget()
        folder.caught_up = False
        consumer = self.clients.consumer
        if consumer is not None and folder.fold_here:
            consumer.pause(*self.clients.inputs(self.routed))  # until caught up
        self.flow.paused = False  # a new assignment starts unpaused
        logger.info("owning shards %s", sorted(folder.owned))

    def listener(self) -> ConsumerRebalanceListener:
        """The consumer's listener: revokes and assignments come here."""
        return _Listener(self)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, rebalance: Rebalance) -> None:
        self.rebalance = rebalance

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self.rebalance.revoke(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self.rebalance.assign(assigned)
