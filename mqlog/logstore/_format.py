"""The on-disk byte layout of record batches, offset indexes and time indexes.

This module is the single definition of the layout that ``docs/format.md``
describes; the two must agree (``tests/logstore/test_format.py`` holds golden
bytes). All integers are little-endian.

A batch::

    0   u64  checksum         xxh3_64 of bytes [8, batch_length)
    8   u32  batch_length     total bytes of the batch, header included
    12  u8   magic            format version, MAGIC
    13  u8   attributes       bit 0: some record has a key; bit 1: some record has headers;
                              bit 2: written by compaction; bit 3: a recorded gap (below);
                              bit 4: the append continues; bit 5: the payload is a
                              Kafka record batch, stored as sent (``_kafka_batch``)
    14  u16  reserved         0
    16  i64  base_offset      offset of the first record
    24  u32  record_count     >= 1
    28  u32  reserved         0
    32  i64  first_timestamp  timestamp (ms since epoch) of the first record
    40  i64  max_timestamp    largest record timestamp in the batch
    48  record table          record_count x RECORD_DTYPE (20 bytes each)
    ..  payload               per record: key bytes, headers (msgpack map), value bytes

A record table row holds the record's timestamp, key length (-1: no key),
headers length (0: none) and ``payload_end``: where the record's payload ends,
counted from the start of the payload. Record i's payload is
``[payload_end[i-1], payload_end[i])`` (from 0 for the first), so any record
is found without summing the lengths before it.

A batch whose ``batch_length`` reads as 0 marks the end of the written data of
a segment (segments are preallocated with zeros).

A *gap batch* (attribute ATTR_GAP) holds no records: it is the 48-byte header
alone, and its ``record_count`` offsets from ``base_offset`` on are recorded as
missing -- recovery cut them, or lifted the end past them, so that offsets a
reader may have seen are never handed out again. ``first_timestamp`` is when
the gap was recorded, ``max_timestamp`` is NO_TIMESTAMP (no record). Reads skip it.

Invariants checked by :func:`decode_header`/:func:`verify_batch`: magic matches,
``record_count >= 1``, ``batch_length`` equals header + table + payload (48
exactly for a gap batch), and the checksum matches. Nothing that fails one of
these is ever returned as a record.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from typing import NamedTuple, TypeAlias, overload

import numpy as np
import xxhash

MAGIC = 1

BATCH_HEADER = struct.Struct("<QIBBHqIIqq")
BATCH_HEADER_SIZE = BATCH_HEADER.size  # 48
assert BATCH_HEADER_SIZE == 48
#: "No record": the max_timestamp of a gap batch, and the start of running timestamp maxima.
NO_TIMESTAMP = -(2**63)

ATTR_HAS_KEYS = 0x01
ATTR_HAS_HEADERS = 0x02
#: Written by compaction: offsets before this batch may be missing (removed
#: records); anywhere else a gap in offsets is damage.
ATTR_COMPACTED = 0x04
#: A gap batch: no records, its offsets are recorded as missing (see the module).
ATTR_GAP = 0x08
#: Most offsets one gap batch covers (its record count is a u32; relative offsets
#: in a segment's index are u32 too, so a gap never comes near either limit).
GAP_OFFSETS_MAX = 2**31 - 1
#: Every batch of a multi-batch append but its last: the append is not complete
#: until a batch without this bit follows. Recovery cuts a trailing run of such
#: batches, so no crash leaves a prefix of an append in the log.
ATTR_CONTINUES = 0x10
#: The payload is one Kafka RecordBatch (magic 2) as a Kafka client produced it,
#: with no record table: ``_kafka_batch`` reads it.
ATTR_KAFKA = 0x20
#: The 61 bytes of a Kafka batch header: the least a Kafka batch's payload holds.
KAFKA_HEADER_SIZE = 61
#: The bits that say how records are encoded (the others are about the batch).
ATTR_RECORD_LAYOUT = ATTR_HAS_KEYS | ATTR_HAS_HEADERS
#: Every attribute bit a valid batch may carry.
ATTR_ALL = (ATTR_HAS_KEYS | ATTR_HAS_HEADERS | ATTR_COMPACTED | ATTR_GAP | ATTR_CONTINUES
            | ATTR_KAFKA)

#: One row of a batch's record table.
RECORD_DTYPE = np.dtype(
    [
        ("timestamp", "<i8"),
        ("key_length", "<i4"),
        ("headers_length", "<u4"),
        ("payload_end", "<u4"),
    ]
)
assert RECORD_DTYPE.itemsize == 20
_RECORD_ROW = struct.Struct("<qiII")
#: Up to this many records a batch's table is checked row by row, without numpy.
_SMALL_BATCH = 16

#: A batch is at most this long (the length field is a u32); Log.append splits above it.
BATCH_BYTES_MAX = 64 * 1024 * 1024

#: Sparse offset index entry: offset relative to the segment base, byte position in the segment.
OFFSET_INDEX_DTYPE = np.dtype([("relative_offset", "<u4"), ("position", "<u4")])
#: Sparse time index entry: largest timestamp of all records before ``relative_offset``
#: in the segment, the relative offset of the batch that starts there, and a check
#: word (see :func:`time_entry`): a damaged entry is found without reading the log.
TIME_INDEX_DTYPE = np.dtype(
    [("timestamp", "<i8"), ("relative_offset", "<u4"), ("check", "<u4")]
)

_MASK32 = 0xFFFFFFFF


@overload
def time_check(timestamp: int, relative_offset: int) -> int: ...
@overload
def time_check(timestamp: np.ndarray, relative_offset: np.ndarray) -> np.ndarray: ...
def time_check(timestamp: int | np.ndarray,
               relative_offset: int | np.ndarray) -> int | np.ndarray:
    """The check word of a time-index entry (works on ints and on numpy arrays).

    Each input is multiplied by an odd constant (a bijection modulo 2**32) and
    the products are xored, so any single flipped bit changes the word."""
    if isinstance(timestamp, np.ndarray):
        stamp = timestamp.astype(np.int64).view(np.uint64)
        low = (stamp & np.uint64(_MASK32)).astype(np.uint32)
        high = (stamp >> np.uint64(32)).astype(np.uint32)
        offsets = np.asarray(relative_offset).astype(np.uint32)
        with np.errstate(over="ignore"):
            return (low * np.uint32(0x9E3779B1)) ^ (high * np.uint32(0x85EBCA77)) ^ (
                offsets * np.uint32(0xC2B2AE3D)) ^ np.uint32(0x27D4EB2F)
    word = timestamp & 0xFFFFFFFFFFFFFFFF
    return (((word & _MASK32) * 0x9E3779B1) ^ ((word >> 32) * 0x85EBCA77)
            ^ (relative_offset * 0xC2B2AE3D) ^ 0x27D4EB2F) & _MASK32


def time_entry(timestamp: int, relative_offset: int) -> tuple[int, int, int]:
    """A time-index entry with its check word."""
    return timestamp, relative_offset, time_check(timestamp, relative_offset)

_checksum = xxhash.xxh3_64_intdigest

#: What batches are read from: a segment's memory map (or a view of it), or bytes.
ReadBuffer: TypeAlias = "mmap.mmap | memoryview | bytes | bytearray"


class BatchHeader(NamedTuple):
    """Decoded fixed part of a batch."""

    checksum: int
    batch_length: int
    magic: int
    attributes: int
    base_offset: int
    record_count: int
    first_timestamp: int
    max_timestamp: int

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.record_count


class BatchError(Exception):
    """Internal: bytes at a position are not a valid batch (callers map this to
    CorruptRecordError or truncate during recovery)."""


def pack_header(
    batch_length: int,
    attributes: int,
    base_offset: int,
    record_count: int,
    first_timestamp: int,
    max_timestamp: int,
) -> bytearray:
    """Return a 48-byte header with the checksum field zeroed (see :func:`seal`)."""
    header = bytearray(BATCH_HEADER_SIZE)
    BATCH_HEADER.pack_into(
        header, 0, 0, batch_length, MAGIC, attributes, 0, base_offset, record_count, 0,
        first_timestamp, max_timestamp,
    )
    return header


def seal(header: bytearray, body_parts: Iterable[bytes | bytearray | memoryview]) -> None:
    """Write the checksum into ``header`` (covering header[8:] and every body part)."""
    hasher = xxhash.xxh3_64(memoryview(header)[8:])
    for part in body_parts:
        hasher.update(part)
    struct.pack_into("<Q", header, 0, hasher.intdigest())


def decode_header(buffer: ReadBuffer, position: int, limit: int) -> BatchHeader:
    """Decode and sanity-check the header at ``position``; raise BatchError if it
    cannot start a valid batch ending at or before ``limit``.

    A zero ``batch_length`` raises BatchError("end") -- the preallocated tail.
    """
    if position + BATCH_HEADER_SIZE > limit:
        raise BatchError("end" if position >= limit else "truncated header")
    (checksum, length, magic, attributes, _r1, base, count, _r2, first_ts, max_ts) = (
        BATCH_HEADER.unpack_from(buffer, position)
    )
    if length == 0:
        raise BatchError("end")
    if magic != MAGIC:
        raise BatchError(f"bad magic {magic}")
    if attributes & ATTR_GAP:
        if count == 0 or length != BATCH_HEADER_SIZE:
            raise BatchError(f"bad gap batch: length {length}, {count} offsets")
    elif attributes & ATTR_KAFKA:
        if count == 0 or length < BATCH_HEADER_SIZE + KAFKA_HEADER_SIZE:
            raise BatchError(f"bad length {length} for a Kafka batch of {count} records")
    elif count == 0 or length < BATCH_HEADER_SIZE + count * RECORD_DTYPE.itemsize:
        raise BatchError(f"bad length {length} for {count} records")
    if position + length > limit:
        raise BatchError("truncated batch")
    return BatchHeader(checksum, length, magic, attributes, base, count, first_ts, max_ts)


def verify_batch(buffer: ReadBuffer, position: int, header: BatchHeader) -> None:
    """Raise BatchError unless the checksum and the record table agree with the header."""
    view = memoryview(buffer)[position + 8 : position + header.batch_length]
    if _checksum(view) != header.checksum:
        raise BatchError("checksum mismatch")
    if header.attributes & ATTR_GAP:
        return  # no record table
    if header.attributes & ATTR_KAFKA:
        _verify_kafka_framing(buffer, position, header)
        return
    count = header.record_count
    if count <= _SMALL_BATCH:  # a few rows: plain struct reads beat numpy's call overhead
        last = 0
        for row in range(count):
            _ts, key_length, headers_length, end = _RECORD_ROW.unpack_from(
                buffer, position + BATCH_HEADER_SIZE + row * RECORD_DTYPE.itemsize)
            if end - last < max(key_length, 0) + headers_length:
                raise BatchError("record table: a record is shorter than its key and headers")
            last = end
    else:
        table = record_table(buffer, position, count)
        ends = table["payload_end"].astype(np.int64)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1]
        prefix = np.maximum(table["key_length"], 0) + table["headers_length"]
        if np.any(ends - starts < prefix):
            raise BatchError("record table: a record is shorter than its key and headers")
        last = int(ends[-1])
    expected = BATCH_HEADER_SIZE + count * RECORD_DTYPE.itemsize + last
    if expected != header.batch_length:
        raise BatchError(
            f"record table sums to {expected} bytes, header says {header.batch_length}"
        )


#: The fields of a Kafka batch header an mqlog header must agree with: baseOffset,
#: batchLength, (partitionLeaderEpoch), magic, (crc, attributes), lastOffsetDelta
#: and (after 30 bytes) recordsCount.
_KAFKA_FRAMING = struct.Struct(">qi4xb6xi30xi")


def _verify_kafka_framing(buffer: ReadBuffer, position: int, header: BatchHeader) -> None:
    """The Kafka batch inside a checksummed mqlog batch must say what its mqlog
    header says (base offset, length, record count) and be magic 2."""
    base, length, magic, last_delta, count = _KAFKA_FRAMING.unpack_from(
        buffer, position + BATCH_HEADER_SIZE)
    if magic != 2 or length + 12 != header.batch_length - BATCH_HEADER_SIZE:
        raise BatchError(f"bad Kafka batch: magic {magic}, length {length}")
    if base != header.base_offset or count != header.record_count or last_delta != count - 1:
        raise BatchError(f"Kafka batch at offset {base} with {count} records does not match "
                         f"its header ({header.base_offset}, {header.record_count} records)")


def gap_batch(base_offset: int, count: int, recorded_ms: int) -> bytes:
    """A sealed gap batch recording offsets ``base_offset`` .. ``base_offset + count - 1``
    as missing."""
    if not 1 <= count <= GAP_OFFSETS_MAX:
        raise ValueError(f"a gap batch covers 1..{GAP_OFFSETS_MAX} offsets, not {count}")
    header = pack_header(BATCH_HEADER_SIZE, ATTR_GAP, base_offset, count, recorded_ms,
                         NO_TIMESTAMP)
    seal(header, ())
    return bytes(header)


def is_gap(header: BatchHeader) -> bool:
    """True for a gap batch (no records to decode)."""
    return bool(header.attributes & ATTR_GAP)


def record_table(buffer: ReadBuffer, position: int, record_count: int) -> np.ndarray:
    """The batch's record table as a structured array viewing ``buffer``."""
    return np.frombuffer(
        buffer, dtype=RECORD_DTYPE, count=record_count, offset=position + BATCH_HEADER_SIZE
    )
