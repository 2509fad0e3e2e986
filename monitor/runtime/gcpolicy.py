"""Garbage-collector policy for long-running processes that hold a lot of live state.

CPython's cyclic collector periodically walks every tracked container. A monitor's state
(entity windows, sketches, models, the dedup window) is hundreds of thousands of
long-lived containers, so each full collection stalls the process for hundreds of
milliseconds while finding nothing: this state is freed by reference counting when an
entity is evicted, not by the cycle collector. :func:`settle` moves everything alive now
into the permanent generation (``gc.freeze``), so later collections only walk what was
allocated since; call it at quiet points (after a checkpoint, every few thousand events).
:func:`configure` makes young collections rarer. Objects frozen and later dropped are
still freed by reference counting; only garbage cycles among them would wait for
:func:`release`.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations between young collections (CPython's default is 700)."""


def configure() -> None:
    """Fewer young collections: per-event garbage is short-lived and freed by refcount."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def settle() -> None:
    """Freeze what is alive now so the collector stops re-walking long-lived state."""
    gc.freeze()


def release() -> None:
    """Undo :func:`settle` (for tests and shutdown)."""
    gc.unfreeze()
