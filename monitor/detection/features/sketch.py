"""A tiny, stable membership sketch: "have I seen this counterparty before?".

A Bloom filter in one Python int (1,024 bits, two hashes from CRC-32), so it never
saturates into "everything is new" the way a capped set does, costs at most ~150 bytes
per entity, and hashes identically in every process (unlike ``hash(str)``). False
positives only make a counterparty look familiar, which errs towards fewer alerts.
"""

from __future__ import annotations

from zlib import crc32

BITS = 1024
_MASK = BITS - 1


_CACHE_MAX = 1 << 16
_cache: dict[str, int] = {}
"""Bits of recently hashed items: busy counterparties (merchants, hubs) recur."""


def _bits(item: str) -> int:
    data = item.encode()
    first = crc32(data)
    second = crc32(data, 0x9E3779B9)
    return (1 << (first & _MASK)) | (1 << (second & _MASK))


def seen_before(sketch: int, item: str) -> tuple[bool, int]:
    """Whether ``item`` is (probably) in ``sketch``, and the sketch with it added."""
    bits = _cache.get(item)
    if bits is None:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        bits = _cache[item] = _bits(item)
    if sketch & bits == bits:
        return True, sketch  # already in: no new 1,024-bit int
    return False, sketch | bits
