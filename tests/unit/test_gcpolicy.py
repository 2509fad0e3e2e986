"""The GC policy: settle() parks live objects out of the collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from monitor.runtime import gcpolicy


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gcpolicy.release()
    gc.set_threshold(*threshold)


def test_settle_moves_live_objects_to_the_permanent_generation() -> None:
    state = [{"entity": i} for i in range(10_000)]
    gcpolicy.release()
    before = gc.get_freeze_count()
    gcpolicy.settle()
    assert gc.get_freeze_count() >= before + len(state)


def test_configure_makes_young_collections_rarer() -> None:
    gcpolicy.configure()
    assert gc.get_threshold()[0] == gcpolicy.YOUNG_THRESHOLD
