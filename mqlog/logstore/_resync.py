"""Finding the intact batches past damage in a segment (resynchronisation).

Owner: none: functions over a segment's read-only map, plus a cache of what
they found per open segment (results only depend on bytes below a published
limit, which never change while the segment is open).

A segment's batches lie end to end from position 0, so a batch whose header
cannot be trusted hides where the next one starts. :func:`resync` finds the
first intact batch after a damaged position:

1. The *anchor*: the first offset-index entry past the damaged position that
   points at a batch which decodes, passes its checksum and carries the
   entry's offset (entries are sparse and have no checksum, so each one is
   checked against the batch it names); without one, the segment's data end.
2. A forward scan of every byte position from just after the damaged one up
   to the anchor. numpy first keeps the positions whose fixed header bytes
   look like a header (the magic byte, zero reserved fields, known attribute
   bits); each of those must then decode, pass its checksum and record-table
   checks, carry a base offset no lower than the offset expected at the
   damage and end (offsets and bytes) no later than the anchor, or the
   segment's end offset and data end. The first such batch is the answer.
3. Otherwise the anchor itself; without one, nothing: the damage reaches the
   end of the segment's data, and the next segment's base offset (or the
   partition's end offset) is the next readable offset.

The offsets between the one expected at the damage and the base offset of the
batch found are the damaged range: they cannot be read. A batch found this way
is the one an undamaged walk would have met, unless a record's payload itself
holds a well-formed batch with a fitting offset and a matching checksum (say,
a copy of another log's batch); random damage cannot make one (the checksum is
64 bits).
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Protocol

import numpy as np

from mqlog.logstore import _format as fmt

#: Bytes examined per numpy step of the scan: small first (damage is usually one
#: batch long), then larger (a damaged length field can hide a long stretch).
SCAN_FIRST_BYTES = 64 * 1024
SCAN_STEP_BYTES = 4 * 1024 * 1024
class IndexEntries(Protocol):
    """What resynchronisation reads of an offset index: its entry columns
    (``position``, ``relative_offset``) and how many entries it has room for."""

    @property
    def capacity(self) -> int: ...

    @property
    def columns(self) -> dict[str, np.ndarray]: ...


class SegmentData(Protocol):
    """What resynchronisation reads of a segment (an open ``Segment``, or
    ``repair``'s read-only mapping of one)."""

    @property
    def base_offset(self) -> int: ...

    @property
    def index(self) -> IndexEntries: ...

    def buffer(self, needed_bytes: int) -> fmt.ReadBuffer: ...

    def header_at(self, position: int, limit: int) -> fmt.BatchHeader: ...


#: Results remembered per open segment (each is one damaged position).
CACHE_ENTRIES_MAX = 256
_UNKNOWN_ATTRIBUTES = ~fmt.ATTR_ALL & 0xFF


@dataclasses.dataclass(frozen=True)
class Damage:
    """Unreadable bytes in one segment: from ``position`` (where a batch with
    ``start_offset`` should begin) to ``next_position`` (where an intact batch
    with ``next_offset`` begins; None when the damage reaches the data's end)."""

    reason: str
    position: int
    start_offset: int
    next_position: int | None
    next_offset: int


class DamagedRangeError(fmt.BatchError):
    """Internal: the offset asked for lies in damage (``damage`` says where)."""

    def __init__(self, damage: Damage) -> None:
        super().__init__(damage.reason)
        self.damage = damage


#: Per segment: (position, expected offset, end offset) -> (damage, the limit scanned to).
_cache: weakref.WeakKeyDictionary[SegmentData, dict[tuple[int, int, int], tuple[Damage, int]]] = (
    weakref.WeakKeyDictionary())


def resync(segment: SegmentData, position: int, expected_offset: int, limit: int,
           index_count: int, end_offset: int, reason: str) -> Damage:
    """The damage starting at ``position`` (where a batch holding
    ``expected_offset`` should begin) and the first intact batch after it, below
    ``limit`` (bytes) and ``end_offset`` (the segment's end: the next segment's
    base, or the partition's end offset). See the module docstring."""
    known = _cache.setdefault(segment, {})
    key = (position, expected_offset, end_offset)
    cached = known.get(key)
    if cached is not None:
        damage, scanned_limit = cached
        if damage.next_position is not None or scanned_limit == limit:
            return damage  # bytes below a published limit never change
    anchor = _anchor(segment, position, expected_offset, limit, index_count)
    bound, upper = (limit, end_offset) if anchor is None else (anchor[0], anchor[1].base_offset)
    found = _scan(segment, position + 1, bound, expected_offset, upper, limit) or anchor
    if found is None:
        damage = Damage(reason, position, expected_offset, None, end_offset)
    else:
        damage = Damage(reason, position, expected_offset, found[0], found[1].base_offset)
    if len(known) >= CACHE_ENTRIES_MAX:
        known.clear()
    known[key] = (damage, limit)
    return damage


def _intact(segment: SegmentData, position: int, limit: int) -> fmt.BatchHeader | None:
    try:
        return segment.header_at(position, limit)
    except fmt.BatchError:
        return None


def _anchor(segment: SegmentData, position: int, expected_offset: int, limit: int,
            index_count: int) -> tuple[int, fmt.BatchHeader] | None:
    """The first index entry past ``position`` that names an intact batch."""
    count = min(index_count, segment.index.capacity)
    if count <= 0:
        return None
    positions = segment.index.columns["position"][:count]
    relatives = segment.index.columns["relative_offset"][:count]
    for slot in np.flatnonzero((positions > position) & (positions < limit)).tolist():
        entry_position = int(positions[slot])
        header = _intact(segment, entry_position, limit)
        if header is not None and header.base_offset == segment.base_offset + int(
                relatives[slot]) and header.base_offset >= expected_offset:
            return entry_position, header
    return None


def _scan(segment: SegmentData, start: int, bound: int, lowest_offset: int, upper_offset: int,
          limit: int) -> tuple[int, fmt.BatchHeader] | None:
    """The first position in [start, bound) where an intact batch lies that ends
    by ``bound`` and holds offsets in [lowest_offset, upper_offset)."""
    try:
        buffer = segment.buffer(limit)
    except fmt.BatchError:  # the file is empty now
        return None
    last = bound - fmt.BATCH_HEADER_SIZE  # the last position a header fits at
    step = SCAN_FIRST_BYTES
    while start <= last:
        stop = min(start + step, last + 1)
        data = np.frombuffer(buffer, dtype=np.uint8,
                             count=stop - start + fmt.BATCH_HEADER_SIZE - 1, offset=start)
        span = stop - start
        looks = data[12:12 + span] == fmt.MAGIC
        for zero in (14, 15, 28, 29, 30, 31):  # reserved fields
            looks &= data[zero:zero + span] == 0
        looks &= (data[13:13 + span] & _UNKNOWN_ATTRIBUTES) == 0
        for hit in np.flatnonzero(looks).tolist():
            position = start + hit
            header = _intact(segment, position, bound)
            if header is not None and lowest_offset <= header.base_offset and (
                    header.next_offset <= upper_offset):
                return position, header
        start = stop
        step = SCAN_STEP_BYTES
    return None
