"""Encoding appended records into batches and decoding batches into Records.

Encoding happens outside any lock (everything but the base offset and the
checksum is known before the partition is locked); :meth:`EncodedBatch.frame`
finishes the batch once the base offset is assigned.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import getitem
from typing import cast

import msgpack
import numpy as np

from mqlog.errors import ConfigError, RecordTooLargeError
from mqlog.logstore import _format as fmt
from mqlog.logstore._record import NO_HEADERS, Message, Record

_TABLE_ROW = fmt.RECORD_DTYPE.itemsize
_ROW = struct.Struct("<qiII")  # one record table row: timestamp, key, headers, payload end
#: Batches of up to this many records are decoded without numpy.
_SMALL_BATCH = 16
#: ``bytes.__sizeof__`` of an empty bytes object. ``bytes.__sizeof__(value)`` minus
#: this is the length of a bytes value, as fast as ``len()``, and raises TypeError
#: for anything else; for a bytes subclass it counts more (its larger object), so
#: the lengths no longer sum to the payload's size.
_BYTES_SIZEOF_EMPTY = bytes.__sizeof__(b"")
#: Most bytes one append may encode to: all its batches go into one segment
#: (see ``Partition.append``), and positions in a segment are below 2 GiB.
APPEND_BYTES_MAX = 2**31 - 1


class EncodedBatch:
    """A batch ready to be written once it has a base offset."""

    __slots__ = ("count", "attributes", "first_timestamp", "max_timestamp", "table", "payload",
                 "length")

    def __init__(self, table: np.ndarray | bytes, payload: bytes, attributes: int,
                 count: int = 0, timestamp: int = 0) -> None:
        """``table``: the record table as an array, or as bytes for a batch of
        ``count`` records that all carry ``timestamp``."""
        if isinstance(table, np.ndarray):
            count = len(table)
            _check_table(table, len(payload), attributes)
            timestamps = table["timestamp"]
            self.first_timestamp = int(timestamps[0])
            self.max_timestamp = int(timestamps.max())
            rows: memoryview | bytes = table.data
        else:
            self.first_timestamp = self.max_timestamp = timestamp
            rows = table
        self.count = count
        self.attributes = attributes
        self.table = rows
        self.payload = payload
        self.length = fmt.BATCH_HEADER_SIZE + count * _TABLE_ROW + len(payload)

    def frame(self, base_offset: int) -> tuple[bytearray, memoryview | bytes, bytes]:
        """The batch's buffers (header, table, payload) with base offset and checksum set."""
        header = fmt.pack_header(
            self.length, self.attributes, base_offset, self.count, self.first_timestamp,
            self.max_timestamp,
        )
        fmt.seal(header, (self.table, self.payload))
        return header, self.table, self.payload


def _check_table(table: np.ndarray, payload_length: int, attributes: int) -> None:
    """Assert that a record table frames ``payload_length`` bytes as the reader's
    checks (``_format.verify_batch``) expect: the last payload end at the
    payload's end and, in a batch with keys or headers, payload ends that never go
    back and each record at least as long as its key and headers. (Without keys
    and headers the ends are a running sum of byte lengths: the last one is the
    check, in O(1).) A batch that fails is a bug of the encoder, caught before it
    is written."""
    framed = len(table) > 0 and int(table["payload_end"][-1]) == payload_length
    if framed and attributes:
        ends = table["payload_end"].astype(np.int64)
        prefix = np.maximum(table["key_length"], 0) + table["headers_length"]
        framed = not np.any(np.diff(ends, prepend=0) < prefix)
    if not framed:
        raise AssertionError(f"encoded batch of {len(table)} records does not frame its "
                             f"{payload_length}-byte payload")


def _as_bytes(value: object, what: str, index: int) -> bytes:
    """``value`` as bytes: str is UTF-8 encoded; any other buffer (bytearray,
    memoryview, array.array, numpy array ...) is copied as its bytes in C order, so
    that its length is its byte count (``len()`` of a buffer counts items, not
    bytes)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    try:
        view = memoryview(value)  # type: ignore[arg-type]  # what is not a buffer raises
    except TypeError:
        raise TypeError(
            f"record {index}: {what} must be bytes or str, not {type(value).__name__}"
        ) from None
    with view:
        return view.tobytes()


def _encode_headers(headers: object, index: int) -> bytes:
    if headers is None:
        return b""
    if not isinstance(headers, Mapping):
        raise TypeError(f"record {index}: headers must be a mapping of str to bytes")
    if not headers:
        return b""
    clean = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            raise TypeError(f"record {index}: header names must be str, not {type(name).__name__}")
        clean[name] = _as_bytes(value, f"header {name!r}", index)
    return msgpack.packb(clean, use_bin_type=True)


def encode(records: Sequence, now_ms: int, max_record_bytes: int) -> list[EncodedBatch]:
    """Encode ``records`` (bytes values or Record objects) into one or more batches.

    Raises TypeError for an item of the wrong kind and RecordTooLargeError for a
    record over ``max_record_bytes`` (key + headers + value) or for records
    that encode to more than ``APPEND_BYTES_MAX``; nothing is written in either
    case. Inputs over ``BATCH_BYTES_MAX`` are split into several batches, in
    order; every batch but the last carries ``ATTR_CONTINUES``.
    """
    if isinstance(records, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(
        records, Sequence
    ):
        raise TypeError(
            f"records must be a list of bytes or Record, not {type(records).__name__}"
        )
    count = len(records)
    if count == 0:
        return []
    try:
        payload = b"".join(records)  # fast path: every item is a bytes-like value
    except TypeError:
        return _encode_general(records, now_ms, max_record_bytes)
    if count <= _SMALL_BATCH and (
        fmt.BATCH_HEADER_SIZE + count * _TABLE_ROW + len(payload) <= fmt.BATCH_BYTES_MAX
    ):
        return _encode_small(records, payload, now_ms, max_record_bytes)
    try:  # bytes only: len() of another buffer (an array, a memoryview) counts items
        lengths = np.fromiter(map(bytes.__sizeof__, records), dtype=np.int64, count=count)
    except TypeError:
        return _encode_general(records, now_ms, max_record_bytes)
    lengths -= _BYTES_SIZEOF_EMPTY
    ends = np.cumsum(lengths)
    if int(ends[-1]) != len(payload):  # a bytes subclass: its __sizeof__ counts more
        return _encode_general(records, now_ms, max_record_bytes)
    biggest = int(lengths.max())
    if biggest > max_record_bytes:
        index = int(lengths.argmax())
        raise RecordTooLargeError(
            f"record {index} is {biggest} bytes, over max_record_bytes={max_record_bytes}"
        )
    table = np.empty(count, dtype=fmt.RECORD_DTYPE)
    table["timestamp"] = now_ms
    table["key_length"] = -1
    table["headers_length"] = 0
    return _split(table, lengths, payload, 0, ends)


def _encode_small(records: Sequence, payload: bytes, now_ms: int,
                  max_record_bytes: int) -> list[EncodedBatch]:
    """A few plain values: the record table packed with struct (numpy's per-call
    cost would dominate a one-record append)."""
    rows = []
    end = 0
    for index, value in enumerate(records):
        if type(value) is not bytes:  # len() of another buffer counts items, not bytes
            return _encode_general(records, now_ms, max_record_bytes)
        length = len(value)
        if length > max_record_bytes:
            raise RecordTooLargeError(
                f"record {index} is {length} bytes, over max_record_bytes={max_record_bytes}"
            )
        end += length
        rows.append(_ROW.pack(now_ms, -1, 0, end))
    if end != len(payload):
        raise AssertionError(f"encoded batch: records sum to {end} bytes, payload is "
                             f"{len(payload)}")
    return [EncodedBatch(b"".join(rows), payload, 0, len(records), now_ms)]


def _encode_general(records: Sequence, now_ms: int, max_record_bytes: int) -> list[EncodedBatch]:
    count = len(records)
    table = np.empty(count, dtype=fmt.RECORD_DTYPE)
    rows = []
    sizes = []
    parts = []
    attributes = 0
    for index, item in enumerate(records):
        if isinstance(item, Record):
            value = _as_bytes(item.value, "value", index)
            key = None if item.key is None else _as_bytes(item.key, "key", index)
            headers = _encode_headers(item.headers, index)
            timestamp = now_ms if item.timestamp is None else item.timestamp
            if not isinstance(timestamp, int) or isinstance(timestamp, bool):
                raise TypeError(f"record {index}: timestamp must be an int (ms since the epoch)")
            if not -(2**63) <= timestamp < 2**63:
                raise ConfigError(f"record {index}: timestamp {timestamp} out of range")
        else:
            value = _as_bytes(item, "value", index)
            key, headers, timestamp = None, b"", now_ms
        key_length = -1 if key is None else len(key)
        size = max(key_length, 0) + len(headers) + len(value)
        if size > max_record_bytes:
            raise RecordTooLargeError(
                f"record {index} is {size} bytes (key + headers + value), "
                f"over max_record_bytes={max_record_bytes}"
            )
        if key is not None:
            attributes |= fmt.ATTR_HAS_KEYS
            parts.append(key)
        if headers:
            attributes |= fmt.ATTR_HAS_HEADERS
            parts.append(headers)
        parts.append(value)
        rows.append((timestamp, key_length, len(headers), 0))
        sizes.append(size)
    table[:] = rows
    return _split(table, np.array(sizes, dtype=np.int64), b"".join(parts), attributes)


def _split(table: np.ndarray, sizes: np.ndarray, payload: bytes, attributes: int,
           ends: np.ndarray | None = None) -> list[EncodedBatch]:
    """Fill ``payload_end`` from the record ``sizes`` (``ends``: their running sum,
    if known) and cut batches of at most BATCH_BYTES_MAX bytes (each batch's
    payload_end counts from its own payload); all but the last batch carry
    ATTR_CONTINUES."""
    if ends is None:
        ends = np.cumsum(sizes)
    total = fmt.BATCH_HEADER_SIZE + len(table) * _TABLE_ROW + len(payload)
    if total <= fmt.BATCH_BYTES_MAX:
        table["payload_end"] = ends
        return [EncodedBatch(table, payload, attributes)]
    footprint = np.cumsum(sizes + _TABLE_ROW)  # table row + payload, per record
    room = fmt.BATCH_BYTES_MAX - fmt.BATCH_HEADER_SIZE
    cuts = [0]
    while cuts[-1] < len(table):
        start = cuts[-1]
        used_before = int(footprint[start - 1]) if start else 0
        stop = int(np.searchsorted(footprint, used_before + room, side="right"))
        cuts.append(max(stop, start + 1))
    total += (len(cuts) - 2) * fmt.BATCH_HEADER_SIZE
    if total > APPEND_BYTES_MAX:
        raise RecordTooLargeError(
            f"{len(table)} records encode to {total} bytes, over the {APPEND_BYTES_MAX} "
            f"bytes one append may hold (an append lands in one segment)"
        )
    batches = []
    for start, stop in zip(cuts, cuts[1:]):
        low = int(ends[start - 1]) if start else 0
        chunk = table[start:stop].copy()
        chunk["payload_end"] = ends[start:stop] - low
        batches.append(EncodedBatch(chunk, payload[low : int(ends[stop - 1])],
                                    attributes | fmt.ATTR_CONTINUES))
    batches[-1].attributes = attributes  # the append is complete with it
    return batches


def table_span(buffer: fmt.ReadBuffer, position: int, count: int, first: int, stop: int,
               max_bytes: int | None, at_least_one: bool) -> tuple[np.ndarray, int, int, int]:
    """The record table of the batch at ``position`` (``count`` records) and which of
    records ``first`` .. ``stop - 1`` to take: those whose payload fits
    ``max_bytes`` (at least one when ``at_least_one``). Returns (table, the new
    stop, where their payload begins, where it ends); stop == first: none fit."""
    table = fmt.record_table(buffer, position, count)
    ends = table["payload_end"]
    low = int(ends[first - 1]) if first else 0
    if max_bytes is not None:
        fit = int(np.searchsorted(ends[first:stop], low + max_bytes, side="right"))
        stop = first + max(fit, 1 if at_least_one else 0)
        if stop == first:
            return table, stop, low, low
    return table, stop, low, int(ends[stop - 1])


def decode(
    buffer: fmt.ReadBuffer, position: int, header: fmt.BatchHeader, first: int = 0,
    stop: int | None = None, max_bytes: int | None = None, at_least_one: bool = True,
    topic_partition: tuple[type[Message], str, int] | None = None, zero_copy: bool = False,
) -> tuple[list[Record], int]:
    """Records ``first`` (inclusive) to ``stop`` (exclusive, default all) of the
    verified batch at ``position`` in ``buffer``, as Record objects with offsets,
    and their size in bytes (keys + headers + values).

    With ``max_bytes``, stops before the records' size would pass it, but
    returns at least one record when ``at_least_one``. With ``topic_partition``
    = (a Message class, topic, partition) the records are of that class and
    carry that topic and partition. With
    ``zero_copy``, keys and values are memoryviews of ``buffer`` (the segment's
    map) instead of bytes copies.
    """
    count = header.record_count
    if stop is None or stop > count:
        stop = count
    table_base = position + fmt.BATCH_HEADER_SIZE
    key_lengths: list[int] | None
    header_lengths: list[int] | None
    table_rows: np.ndarray  # the rows taken, when read with numpy
    if count <= _SMALL_BATCH:  # a few rows: struct reads beat numpy's per-call cost
        rows = [_ROW.unpack_from(buffer, table_base + row * _TABLE_ROW) for row in range(stop)]
        low = rows[first - 1][3] if first else 0
        rows = rows[first:]
        if max_bytes is not None:
            fit = bisect_right([row[3] for row in rows], low + max_bytes)
            rows = rows[: max(fit, 1 if at_least_one else 0)]
            if not rows:
                return [], 0
            stop = first + len(rows)
        timestamps, key_lengths, header_lengths, ends_list = (list(c) for c in zip(*rows))
        high = ends_list[-1]
        ends_list = [end - low for end in ends_list]
    else:
        table, stop, low, high = table_span(buffer, position, count, first, stop, max_bytes,
                                            at_least_one)
        if stop == first:
            return [], 0
        ends_list = (table["payload_end"][first:stop].astype(np.int64) - low).tolist()
        table_rows = table[first:stop]
        timestamps = table_rows["timestamp"].tolist()
        key_lengths = header_lengths = None  # read below only when the batch needs them
    payload_base = table_base + count * _TABLE_ROW
    data: bytes
    if zero_copy:
        # Typed as bytes: zero_copy hands out memoryviews where Record declares bytes.
        data = cast(bytes, memoryview(buffer)[payload_base + low : payload_base + high])
    else:
        piece = buffer[payload_base + low : payload_base + high]
        data = piece if isinstance(piece, bytes) else bytes(piece)
    starts = [0]
    starts += ends_list[:-1]
    offsets = range(header.base_offset + first, header.base_offset + stop)
    values: Iterable[bytes]
    keys: Iterable[bytes | None]
    headers: Iterable[Mapping[str, bytes]]
    if not header.attributes & fmt.ATTR_RECORD_LAYOUT:  # each payload is just the value
        # getitem of bytes by a slice is bytes (typeshed types it for any Sequence)
        values = cast("Iterator[bytes]", map(getitem, repeat(data), map(slice, starts,
                                                                         ends_list)))
        keys, headers = repeat(None), repeat(NO_HEADERS)
    else:
        if key_lengths is None or header_lengths is None:
            key_lengths = table_rows["key_length"].tolist()
            header_lengths = table_rows["headers_length"].tolist()
        values, keys, headers = _split_payloads(data, starts, ends_list, key_lengths,
                                                header_lengths)
    if topic_partition is None:
        return list(map(Record, values, keys, headers, timestamps, offsets)), high - low
    kind, topic, partition = topic_partition
    records: list[Record] = list(map(kind, values, keys, headers, timestamps, offsets,
                                     repeat(topic), repeat(partition)))
    return records, high - low


def _split_payloads(
    data: bytes, starts: list[int], ends: list[int], key_lengths: list[int],
    header_lengths: list[int],
) -> tuple[list[bytes], list[bytes | None], list[Mapping[str, bytes]]]:
    """The values, keys and headers of records whose payloads (key, headers,
    value) span ``data[starts[i]:ends[i]]``."""
    values: list[bytes] = []
    keys: list[bytes | None] = []
    headers: list[Mapping[str, bytes]] = []
    for start, end, key_length, header_length in zip(starts, ends, key_lengths,
                                                     header_lengths):
        if key_length < 0:
            keys.append(None)
        else:
            keys.append(data[start : start + key_length])
            start += key_length
        if header_length:
            headers.append(msgpack.unpackb(data[start : start + header_length], raw=False))
            start += header_length
        else:
            headers.append(NO_HEADERS)
        values.append(data[start:end])
    return values, keys, headers
