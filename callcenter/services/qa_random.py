"""The sampling's counter-based random generator: Bob Jenkins' lookup3 hash of a call id, seeded.

This is bit for bit PostgreSQL's ``hashint8extended(value, seed)`` (``src/common/hashfn.c``:
``hash_uint32_extended`` after folding the 64-bit value to 32 bits, the function hash partitioning
relies on), so PostgreSQL computes the same numbers in SQL at C speed while SQLite deployments
compute them here. ``uniform`` takes the top 52 bits: a double in (0, 1), exact in both places.
"""

from __future__ import annotations

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
TWO_52 = 4503599627370496.0
GOLDEN = (0x9E3779B9 + 4 + 3923095) & MASK32  # lookup3's start value for a 4-byte key


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & MASK32


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & MASK32
    a ^= _rot(c, 4)
    c = (c + b) & MASK32
    b = (b - a) & MASK32
    b ^= _rot(a, 6)
    a = (a + c) & MASK32
    c = (c - b) & MASK32
    c ^= _rot(b, 8)
    b = (b + a) & MASK32
    a = (a - c) & MASK32
    a ^= _rot(c, 16)
    c = (c + b) & MASK32
    b = (b - a) & MASK32
    b ^= _rot(a, 19)
    a = (a + c) & MASK32
    c = (c - b) & MASK32
    c ^= _rot(b, 4)
    b = (b + a) & MASK32
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c ^= b
    c = (c - _rot(b, 14)) & MASK32
    a ^= c
    a = (a - _rot(c, 11)) & MASK32
    b ^= a
    b = (b - _rot(a, 25)) & MASK32
    c ^= b
    c = (c - _rot(b, 16)) & MASK32
    a ^= c
    a = (a - _rot(c, 4)) & MASK32
    b ^= a
    b = (b - _rot(a, 14)) & MASK32
    c ^= b
    c = (c - _rot(b, 24)) & MASK32
    return a, b, c


def hash_int8(value: int, seed: int) -> int:
    """``hashint8extended(value, seed)`` as an unsigned 64-bit number."""
    folded = value & MASK64
    low, high = folded & MASK32, (folded >> 32) & MASK32
    low ^= high if value >= 0 else (~high & MASK32)
    seed &= MASK64
    a = b = c = GOLDEN
    if seed:
        a = (a + (seed >> 32)) & MASK32
        b = (b + (seed & MASK32)) & MASK32
        a, b, c = _mix(a, b, c)
    a = (a + low) & MASK32
    a, b, c = _final(a, b, c)
    return (b << 32) | c


def uniform(seed: int, call_id: int) -> float:
    """The generator's number for one call, in (0, 1): the hash's top 52 bits, centred."""
    return (float(hash_int8(call_id, seed) >> 12) + 0.5) / TWO_52


# The same in SQL (``:seed`` bound as an integer).
UNIFORM_SQL = (
    "(((hashint8extended(call_id::int8, CAST(:seed AS int8)) >> 12) & 4503599627370495)::float8"
    " + 0.5::float8) / 4503599627370496.0::float8"
)
