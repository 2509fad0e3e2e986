"""Flow control: ingest pauses while too much it routed waits to come back.

Views routed to this worker's own shards wait to be scored when read back (round trips,
decoded in the read-back cache), or, folded already, wait to be read back so their
shard's offset can move. Without a bound, a backlog of input is routed far ahead of
scoring, every cached group is evicted before it is read back, and each is decoded a
second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.processing.folding import Folder
    from monitor.processing.readback import ReadBack
    from streams.pipeline.clients import Clients

#: Flow control: ingest pauses while this many views routed to the worker's own shards
#: wait to be scored or read back, and resumes below a quarter of it. Without it a backlog
#: of input is routed far ahead of scoring, every cached group is evicted before it is
#: read back, and each is decoded a second time.
INGEST_AHEAD = 12_288
#: Groups of envelopes this worker produced for its own shards to fold when read back,
#: decoded: the routed records it reads back are those, and decoding (re-validating the
#: events) costs about a tenth of a view's work. A safety net for groups never read back:
#: flow control (INGEST_AHEAD, in views; a poll adds at most about 16,000) pauses ingest
#: before, even with groups of one view, so the cache never drops a group on its way.
DECODED_LIMIT = 4 * INGEST_AHEAD
#: Views folded here that one shard may have on their way back before ingest pauses (and
#: resumes below a quarter). They are scored already; what bounds them is the shard's
#: dedup window: a view read back after its cache entry was dropped (an idle poll, an
#: assignment, a restart) is skipped only while its token is still in the window, so at
#: most a quarter of the window may be in flight (``FlowControl.folded_limit``). At one
#: INGEST_AHEAD for all shards, ingest paused in 43 % of batches for the round trip
#: through the broker alone.
FOLDED_AHEAD = 2 * INGEST_AHEAD


class FlowControl:
    """Pauses and resumes the input partitions (see the module doc and INGEST_AHEAD)."""

    def __init__(self, clients: Clients, routed: str, readback: ReadBack, folder: Folder,
                 dedup_window: int) -> None:
        self.clients = clients
        self.routed = routed
        self.readback = readback
        self.folder = folder
        # At most a quarter of a shard's dedup window in flight (see FOLDED_AHEAD).
        self.folded_limit = max(1, min(FOLDED_AHEAD, dedup_window // 4))
        self.paused = False

    def throttle(self) -> None:
        """Pause ingest while too many views wait to be scored or read back here; resume
        once both are down to a quarter."""
        readback = self.readback
        waiting = readback.waiting()
        if not self.paused and (waiting >= INGEST_AHEAD
                                or readback.most_folded() >= self.folded_limit):
            self.clients.reader().pause(*self.clients.inputs(self.routed))
            self.paused = True
        elif self.paused and (waiting <= INGEST_AHEAD // 4
                              and readback.most_folded() <= self.folded_limit // 4):
            self.resume(forget=False)

    def resume(self, *, forget: bool) -> None:
        """Resume the input partitions (unless catching up); ``forget`` drops cached
        envelopes that will never be read back here (their shard was revoked or cannot
        be restored)."""
        if forget:
            self.readback.forget()
        self.paused = False
        if self.folder.caught_up:
            self.clients.reader().resume(*self.clients.inputs(self.routed))
