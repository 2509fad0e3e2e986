"""Groups a worker produced for its own shards, remembered until it reads them back.

Every group the folder closes is produced on its shard's routed partition (the shard's
durable log). What happens when the worker reads it back depends on the group's mode
(:class:`monitor.processing.folding.Group`), interpreted here only:

* ``FOLDED``: folded when it was routed; read back, only the shard's offset moves. The
  copies in flight are counted per shard, because what bounds them is the shard's dedup
  window (a view read back after its entry here was forgotten is dropped by the window
  only while its token is still in it).
* ``ROUND_TRIP``: to fold when read back; its decoded views wait here, so reading it
  back costs no second decoding.
* ``FOREIGN``: another worker's shard; never read back here, nothing to remember.
"""

from __future__ import annotations

from itertools import islice

from monitor.processing.folding import FOLDED, ROUND_TRIP, Group, RoutedView


class ReadBack:
    """The groups on their way back, keyed by their produced bytes.

    ``limit`` bounds the decoded groups (the oldest half is dropped when full: a safety
    net, flow control pauses ingest long before).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.decoded: dict[bytes, list[RoutedView]] = {}
        self.folded: dict[bytes, tuple[int, int]] = {}  # copies in flight, views in each
        self.folded_views: dict[int, int] = {}  # shard -> views folded here, not read back

    def produced(self, shard_id: int, value: bytes, group: Group) -> None:
        """``group`` was produced as ``value`` for ``shard_id``: remember what reading it
        back will need."""
        if group.mode == FOLDED:
            copies, views = self.folded.get(value, (0, len(group.envelopes)))
            self.folded[value] = (copies + 1, views)
            self.folded_views[shard_id] = self.folded_views.get(shard_id, 0) + views
        elif group.mode == ROUND_TRIP:
            decoded = self.decoded
            if len(decoded) > self.limit:
                for old in list(islice(decoded, len(decoded) // 2)):
                    del decoded[old]
            decoded[value] = group.views

    def claim_folded(self, shard_id: int, value: bytes) -> bool:
        """Whether ``value``, read back on ``shard_id``, was folded when routed (one copy
        of it is then no longer in flight)."""
        folded = self.folded
        if not folded:
            return False
        known = folded.get(value)
        if known is None:
            return False
        copies, views = known
        if copies == 1:
            del folded[value]
        else:
            folded[value] = (copies - 1, views)
        self.folded_views[shard_id] = self.folded_views.get(shard_id, 0) - views
        return True

    def take_decoded(self, value: bytes) -> list[RoutedView] | None:
        """The decoded views of ``value`` if it is a round trip produced here."""
        return self.decoded.pop(value, None)

    def knows(self, value: bytes) -> bool:
        """Whether reading ``value`` back needs no decoding."""
        return value in self.folded or value in self.decoded

    def waiting(self) -> int:
        """Views produced here that wait to be folded when read back."""
        return sum(map(len, self.decoded.values()))

    def most_folded(self) -> int:
        """The most views folded here that one shard has on their way back."""
        return max(self.folded_views.values(), default=0)

    def forget(self) -> None:
        """Drop everything (after an assignment, or an idle poll: what is still on its way
        back is never read back here, or the dedup window drops it)."""
        self.decoded.clear()
        self.folded.clear()
        self.folded_views.clear()
