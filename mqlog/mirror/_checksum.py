"""The count and checksum of a run of records, to compare a source with its mirror.

The checksum is xxh3-64 over each record in offset order: its timestamp, its
key (or a marker for none), its headers in their order, and its value, each
length-prefixed so that no two different sequences of records feed the hash
the same bytes. Offsets are left out: they differ between a source and its
mirror by design.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable

import xxhash

from mqlog.logstore import Record

_TIMESTAMP_KEY = struct.Struct("<qq")
_LENGTH = struct.Struct("<q")
#: The key length written for a record without a key (a real key is >= 0 bytes).
NO_KEY = -1


@dataclasses.dataclass(frozen=True)
class Checksum:
    """How many records, and the xxh3-64 of them (hex)."""

    records: int
    xxh3: str


def checksum(records: Iterable[Record]) -> Checksum:
    """The :class:`Checksum` of ``records``, in the order given."""
    hasher = xxhash.xxh3_64()
    count = 0
    for record in records:
        key = record.key
        hasher.update(_TIMESTAMP_KEY.pack(record.timestamp or 0,
                                          NO_KEY if key is None else len(key)))
        if key is not None:
            hasher.update(key)
        headers = record.headers or {}
        hasher.update(_LENGTH.pack(len(headers)))
        for name, value in headers.items():
            encoded = name.encode()
            hasher.update(_LENGTH.pack(len(encoded)))
            hasher.update(encoded)
            hasher.update(_LENGTH.pack(len(value)))
            hasher.update(value)
        hasher.update(_LENGTH.pack(len(record.value)))
        hasher.update(record.value)
        count += 1
    return Checksum(count, hasher.hexdigest())
