"""Kafka's default partitioner (murmur2), so replay shards state exactly as Kafka does."""

from __future__ import annotations

from typing import Final

# Final: a compiled build inlines them (a plain global is a dict lookup at each use).
_MASK: Final = 0xFFFFFFFF
_M_LOW: Final = 0xE995  # the low and high halves of murmur2's m, 0x5BD1E995
_M_HIGH: Final = 0x5BD1


def _times_m(value: int) -> int:
    """``(value * m) mod 2**32`` for a 32-bit ``value``, from 16-bit halves. A compiled
    build multiplies machine integers only while the product stays small: the whole
    product (63 bits) took it through Python ints at every step, about 1 us a key."""
    low = value & 0xFFFF
    return (low * _M_LOW + (((low * _M_HIGH + (value >> 16) * _M_LOW) & 0xFFFF) << 16)) & _MASK


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 hash of ``data`` (``org.apache.kafka.common.utils.Utils``)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    base = length & ~3
    for i in range(0, base, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = _times_m(k)
        k ^= k >> 24
        h = _times_m(h) ^ _times_m(k)
    tail = length & 3
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = _times_m(h)
    h ^= h >> 13
    h = _times_m(h)
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a UTF-8 string key."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
