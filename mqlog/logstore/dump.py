"""Decode one segment data file, batch by batch: what ``mqlog dump`` prints.

:func:`dump_segment` walks a ``.log`` file from its start and yields each
batch as its header says it is (:class:`DumpedBatch`), with its records when
the batch is intact. Gap batches (offsets recovery recorded as missing, see
``_format``) are valid batches without records.

Only reads: the file is opened ``O_RDONLY`` and mapped ``PROT_READ``, so it is
safe on a damaged segment and on one another process is appending to (the
dump then stops where the written data ended when it was mapped).

A file that is not a segment is refused at the call (:class:`NotASegmentError`)
rather than dumped as one broken batch: its first bytes do not frame a batch
header and its name is not a segment's (``<20 digits>.log``, see ``layout``).
A file named like a segment is a segment, damaged or not: its broken first
batch is yielded like any other.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
from collections.abc import Iterator, Mapping

from mqlog.errors import MqlogError
from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._files import map_read_only
from mqlog.logstore._kafka_batch import as_native
from mqlog.logstore._record import Record
from mqlog.logstore.layout import segment_base

#: What ``decode_header`` says where the written data of a segment ends (a zero
#: length field, or the end of the file).
_END = "end"


class NotASegmentError(MqlogError, ValueError):
    """The file given to :func:`dump_segment` is not a segment data file."""


@dataclasses.dataclass(frozen=True)
class DumpedRecord:
    """One record of a dumped batch."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes]


@dataclasses.dataclass(frozen=True)
class DumpedBatch:
    """One batch of a segment file as its header says it is.

    ``valid`` is False when framing or checksum fail; ``error`` then says why
    and ``records`` is empty (nothing unverified is decoded). A batch whose
    framing fails is the last one yielded: where the next one starts is unknown.
    """

    position: int
    base_offset: int
    record_count: int
    first_timestamp: int
    max_timestamp: int
    batch_length: int
    magic: int
    attributes: int
    checksum: int
    valid: bool
    error: str | None = None
    records: tuple[DumpedRecord, ...] = ()

    @property
    def next_offset(self) -> int:
        """The offset after the batch's last."""
        return self.base_offset + self.record_count

    @property
    def gap(self) -> bool:
        """A gap batch: its offsets are recorded as missing, it holds no records."""
        return bool(self.attributes & fmt.ATTR_GAP)


def dump_segment(path: str | os.PathLike[str], records: bool = True) -> Iterator[DumpedBatch]:
    """Decode the batches of one segment (``.log``) file, in file order.

    Stops at the end of the written data (a zero length field, as in the
    preallocated tail, or the end of the file) or after yielding a batch whose
    framing is broken. A batch failing only its checksum is yielded invalid and
    the walk continues after it. ``records=False`` skips decoding the records.

    Raises at the call, before anything is yielded: OSError (FileNotFoundError,
    IsADirectoryError) when the file cannot be read, NotASegmentError when it is
    not a segment file (see the module).
    """
    name = os.fspath(path)
    buffer = map_read_only(name)
    if segment_base(os.path.basename(name)) is None:
        _check_first_header(name, buffer)
    return _dump_batches(buffer, records)


def _check_first_header(path: str, buffer: bytes | mmap.mmap) -> None:
    """Raise NotASegmentError unless ``buffer`` is empty, starts with the end marker
    or starts with a batch header that frames."""
    try:
        fmt.decode_header(buffer, 0, len(buffer))
    except fmt.BatchError as error:
        if str(error) != _END:
            raise NotASegmentError(f"{path}: not a segment file: {error}") from None


def _dump_batches(buffer: bytes | mmap.mmap, records: bool) -> Iterator[DumpedBatch]:
    size = len(buffer)
    position = 0
    while True:
        try:
            header = fmt.decode_header(buffer, position, size)
        except fmt.BatchError as error:
            if str(error) != _END:
                yield _broken_batch(buffer, position, str(error))
            return
        try:
            fmt.verify_batch(buffer, position, header)
            decoded = _decode_records(buffer, position, header) if records else ()
        except fmt.BatchError as error:  # bad framing, or a Kafka batch that does not parse
            yield _dumped(position, header, str(error), ())
        else:
            yield _dumped(position, header, None, decoded)
        position += header.batch_length


def _dumped(position: int, header: fmt.BatchHeader, error: str | None,
            records: tuple[DumpedRecord, ...]) -> DumpedBatch:
    return DumpedBatch(
        position=position, base_offset=header.base_offset, record_count=header.record_count,
        first_timestamp=header.first_timestamp, max_timestamp=header.max_timestamp,
        batch_length=header.batch_length, magic=header.magic, attributes=header.attributes,
        checksum=header.checksum, valid=error is None, error=error, records=records,
    )


def _broken_batch(buffer: bytes | mmap.mmap, position: int, error: str) -> DumpedBatch:
    """What the header bytes at ``position`` say (zero-padded if the file ends inside them)."""
    raw = bytes(buffer[position : position + fmt.BATCH_HEADER_SIZE])
    (checksum, length, magic, attributes, _r1, base, count, _r2, first_ts, max_ts) = (
        fmt.BATCH_HEADER.unpack(raw.ljust(fmt.BATCH_HEADER_SIZE, b"\0"))
    )
    header = fmt.BatchHeader(checksum, length, magic, attributes, base, count, first_ts, max_ts)
    return _dumped(position, header, error, ())


def _decode_records(buffer: bytes | mmap.mmap, position: int,
                    header: fmt.BatchHeader) -> tuple[DumpedRecord, ...]:
    if fmt.is_gap(header):
        return ()
    decoded, _size = _batch.decode(*as_native(buffer, position, header))
    return tuple(map(_dumped_record, decoded))


def _dumped_record(record: Record) -> DumpedRecord:
    """A record as decoded from a batch: its offset, timestamp and headers are set."""
    assert record.offset is not None and record.timestamp is not None
    assert record.headers is not None
    return DumpedRecord(record.offset, record.timestamp, record.key, record.value,
                        dict(record.headers))
