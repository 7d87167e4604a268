"""Columnar reads: a run of records as a few arrays and one bytes object.

``Log.read`` makes a Python object, and a bytes object, per record; that
costs about a microsecond a record and caps it near 1 M records/s. A
:class:`RecordColumns` holds the same records as numpy arrays (offsets,
timestamps, where each key, headers and value lie) over one bytes object
holding every record's payload back to back, in the order of the batches'
own payload sections (key, msgpack headers, value), so a read costs a few
numpy operations and one copy per batch. Values are sliced out only when
asked for (:meth:`RecordColumns.value`, iteration).

Invariants: every array has one entry per record, in offset order; a
record's key is ``payload[key_starts[i]:key_starts[i] + key_lengths[i]]``
(``key_lengths[i] == -1``: no key), its headers the msgpack map at
``payload[headers_starts[i]:value_starts[i]]`` (empty: no headers), and its
value ``payload[value_starts[i]:value_ends[i]]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import msgpack
import numpy as np

from mqlog.logstore import _format as fmt
from mqlog.logstore._batch import table_span
from mqlog.logstore._record import NO_HEADERS, Record


class ColumnChunk(NamedTuple):
    """The records ``first`` .. ``first + count - 1`` of one batch, as columns; the
    positions are relative to ``payload``."""

    first_offset: int
    timestamps: np.ndarray
    key_lengths: np.ndarray
    headers_lengths: np.ndarray
    ends: np.ndarray
    payload: bytes


def decode_columns(buffer: fmt.ReadBuffer, position: int, header: fmt.BatchHeader, first: int,
                   stop: int, max_bytes: int | None, at_least_one: bool
                   ) -> tuple[ColumnChunk | None, int, int]:
    """Records ``first`` to ``stop`` (exclusive) of the verified batch at
    ``position``, stopping before their payload passes ``max_bytes`` (but taking
    one when ``at_least_one``): (the chunk or None, records taken, payload bytes)."""
    count = header.record_count
    table, stop, low, high = table_span(buffer, position, count, first, min(stop, count),
                                        max_bytes, at_least_one)
    if stop == first:
        return None, 0, 0
    rows = table[first:stop]
    payload_base = position + fmt.BATCH_HEADER_SIZE + count * fmt.RECORD_DTYPE.itemsize
    payload = bytes(buffer[payload_base + low : payload_base + high])
    chunk = ColumnChunk(
        header.base_offset + first, rows["timestamp"].astype(np.int64),
        rows["key_length"].astype(np.int64), rows["headers_length"].astype(np.int64),
        rows["payload_end"].astype(np.int64) - low, payload)
    return chunk, stop - first, high - low


class RecordColumns:
    """Records of one partition as columns (see the module docstring)."""

    __slots__ = ("topic", "partition", "offsets", "timestamps", "payload", "key_starts",
                 "key_lengths", "headers_starts", "value_starts", "value_ends")

    def __init__(self, topic: str, partition: int, chunks: list[ColumnChunk]) -> None:
        self.topic = topic
        self.partition = partition
        counts = [len(chunk.timestamps) for chunk in chunks]
        self.offsets = np.concatenate(
            [np.arange(c.first_offset, c.first_offset + n, dtype=np.int64)
             for c, n in zip(chunks, counts)]) if chunks else np.zeros(0, np.int64)
        self.timestamps = _joined([c.timestamps for c in chunks])
        self.payload = b"".join(c.payload for c in chunks)
        bases = np.cumsum([0] + [len(c.payload) for c in chunks[:-1]], dtype=np.int64)
        ends = _joined([c.ends + base for c, base in zip(chunks, bases)])
        # Each record's payload begins where the one before ends, also across
        # chunks: a chunk's payload ends with its last record.
        starts = np.empty_like(ends)
        if len(ends):
            starts[0] = 0
            starts[1:] = ends[:-1]
        self.key_lengths = _joined([c.key_lengths for c in chunks])
        self.key_starts = starts
        self.headers_starts = starts + np.maximum(self.key_lengths, 0)
        self.value_starts = self.headers_starts + _joined([c.headers_lengths for c in chunks])
        self.value_ends = ends

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def next_offset(self) -> int | None:
        """The offset after the last record (where the next read starts); None if empty."""
        return int(self.offsets[-1]) + 1 if len(self.offsets) else None

    def value(self, index: int) -> bytes:
        return self.payload[int(self.value_starts[index]):int(self.value_ends[index])]

    def values(self) -> list[bytes]:
        """Every value, as bytes (one object per record: the costly part of a read)."""
        payload = self.payload
        return [payload[start:end] for start, end in
                zip(self.value_starts.tolist(), self.value_ends.tolist())]

    def key(self, index: int) -> bytes | None:
        length = int(self.key_lengths[index])
        if length < 0:
            return None
        start = int(self.key_starts[index])
        return self.payload[start:start + length]

    def headers(self, index: int) -> Mapping[str, bytes]:
        start, end = int(self.headers_starts[index]), int(self.value_starts[index])
        if start == end:
            return NO_HEADERS
        return msgpack.unpackb(self.payload[start:end], raw=False)

    def record(self, index: int) -> Record:
        return Record(self.value(index), self.key(index), self.headers(index),
                      int(self.timestamps[index]), int(self.offsets[index]))

    def __iter__(self) -> Iterator[Record]:
        return (self.record(index) for index in range(len(self)))

    def __repr__(self) -> str:
        span = f"{self.offsets[0]}..{self.offsets[-1]}" if len(self) else "empty"
        return (f"RecordColumns({self.topic!r}, {self.partition}, {len(self)} records, "
                f"offsets {span}, {len(self.payload)} payload bytes)")


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)


def columns_of_records(topic: str, partition: int, records: list[Record]) -> RecordColumns:
    """Records read elsewhere (a Kafka cluster's fetch), in offset order, as
    :class:`RecordColumns`: one chunk per run of consecutive offsets (a compacted
    topic has gaps), each record's payload laid out as a batch lays it out."""
    chunks: list[ColumnChunk] = []
    run: list[Record] = []
    previous = -2
    for record in records:
        assert record.offset is not None and record.timestamp is not None  # read records
        if run and record.offset != previous + 1:
            chunks.append(_chunk(run))
            run = []
        run.append(record)
        previous = record.offset
    if run:
        chunks.append(_chunk(run))
    return RecordColumns(topic, partition, chunks)


def _chunk(run: list[Record]) -> ColumnChunk:
    """One chunk of records with consecutive offsets."""
    parts: list[bytes] = []
    key_lengths, headers_lengths, ends = [], [], []
    size = 0
    for record in run:
        key = b"" if record.key is None else bytes(record.key)
        headers = msgpack.packb(dict(record.headers)) if record.headers else b""
        value = bytes(record.value)
        parts += (key, headers, value)
        size += len(key) + len(headers) + len(value)
        key_lengths.append(-1 if record.key is None else len(key))
        headers_lengths.append(len(headers))
        ends.append(size)
    first = run[0].offset
    assert first is not None  # read records
    return ColumnChunk(first, np.array([r.timestamp for r in run], np.int64),
                       np.array(key_lengths, np.int64), np.array(headers_lengths, np.int64),
                       np.array(ends, np.int64), b"".join(parts))
