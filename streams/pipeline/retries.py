"""When to try again a shard whose restore failed: exponential backoff per shard."""

from __future__ import annotations

import time
from collections.abc import Callable


class RestoreRetries:
    """Per shard, the time of its next restore attempt; the delay doubles with each
    failure, from ``initial`` up to ``ceiling`` seconds, and resets on success.

    >>> now = [0.0]
    >>> retries = RestoreRetries(1.0, 4.0, clock=lambda: now[0])
    >>> [retries.failed(3) for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    >>> now[0] = 5.0; retries.take_due()
    [3]
    """

    def __init__(self, initial: float, ceiling: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial, self.ceiling, self.clock = initial, ceiling, clock
        self.failures: dict[int, int] = {}
        self.next_at: dict[int, float] = {}

    def failed(self, shard_id: int) -> float:
        """Count a failure of ``shard_id``; the delay until its next attempt."""
        count = self.failures[shard_id] = self.failures.get(shard_id, 0) + 1
        delay: float = min(self.ceiling, self.initial * 2.0 ** (count - 1))
        self.next_at[shard_id] = self.clock() + delay
        return delay

    def restored(self, shard_id: int) -> None:
        self.failures.pop(shard_id, None)
        self.next_at.pop(shard_id, None)

    def due(self) -> bool:
        """Whether some shard's retry time has come (cheap: called every loop turn)."""
        if not self.next_at:
            return False
        return min(self.next_at.values()) <= self.clock()

    def take_due(self) -> list[int]:
        """The shards whose retry time has come, no longer scheduled."""
        now = self.clock()
        due = sorted(shard for shard, at in self.next_at.items() if at <= now)
        for shard in due:
            del self.next_at[shard]
        return due
