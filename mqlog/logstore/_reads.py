"""Reading a partition: records, columns and time lookup, lock-free.

Functions here take the :class:`~mqlog.logstore._partition.Partition` they
read; the partition binds the public ones as its methods (``read``,
``read_columns``, ``timestamp_at``, ``offset_for_time``, ``newest_record`` ...).

State owned here: ``partition._cursor``, (segment base, batch position) of the
last batch read, where the next read of a reader that goes on usually starts
(a hint: :meth:`Segment.locate` checks it before using it).

Invariants: a read looks only at bytes below the published state it started
from (:func:`~mqlog.logstore._views.snapshot`), which were complete before it
was published, so readers take no lock; no record below the log start offset
is returned or found (``check_offset``, and time lookups start at it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np

from mqlog.errors import CorruptRecordError, OffsetOutOfRangeError
from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._columns import RecordColumns, decode_columns
from mqlog.logstore._kafka_batch import as_native, encode_records, kafka_bytes
from mqlog.logstore._producers import AppendMetadata
from mqlog.logstore._record import Message, Record
from mqlog.logstore._resync import Damage, DamagedRangeError
from mqlog.logstore._segment import Segment
from mqlog.logstore._state import PartitionState
from mqlog.logstore._views import View, closed_max_timestamp, segment_for, snapshot

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

_TIMESTAMP = struct.Struct("<q")


def check_offset(partition: Partition, offset: int, state: PartitionState) -> None:
    """Raise OffsetOutOfRangeError unless ``offset`` is readable in ``state``
    (log start offset .. end offset), TypeError unless it is an int."""
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    if offset < state.log_start_offset or offset > state.end_offset:
        raise OffsetOutOfRangeError(
            f"offset {offset} is out of range for {partition.topic}/{partition.number}: "
            f"valid offsets are {state.log_start_offset}..{state.end_offset}",
            offset=offset, start_offset=state.log_start_offset, end_offset=state.end_offset,
        )


#: The Message class a read makes with ``messages=`` that class.
M = TypeVar("M", bound=Message)


@overload
def read(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
         messages: Literal[False] = False, zero_copy: bool = False) -> list[Record]: ...
@overload
def read(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
         messages: Literal[True], zero_copy: bool = False) -> list[Message]: ...
@overload
def read(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
         messages: type[M], zero_copy: bool = False) -> list[M]: ...
@overload
def read(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
         messages: bool | type[Message] = False, zero_copy: bool = False) -> list[Record]: ...
def read(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
         messages: bool | type[Message] = False, zero_copy: bool = False) -> list[Any]:
    """See :meth:`read_sized` (this returns only the records). (Records or
    Messages, as ``messages`` says: the overloads above give the type.)"""
    return read_sized(partition, offset, max_records, max_bytes, messages, zero_copy)[0]


@overload
def read_sized(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
               messages: Literal[False] = False, zero_copy: bool = False,
               at_least_one: bool = True) -> tuple[list[Record], int]: ...
@overload
def read_sized(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
               messages: Literal[True], zero_copy: bool = False,
               at_least_one: bool = True) -> tuple[list[Message], int]: ...
@overload
def read_sized(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
               messages: type[M], zero_copy: bool = False,
               at_least_one: bool = True) -> tuple[list[M], int]: ...
@overload
def read_sized(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
               messages: bool | type[Message] = False, zero_copy: bool = False,
               at_least_one: bool = True) -> tuple[list[Record], int]: ...
def read_sized(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
               messages: bool | type[Message] = False, zero_copy: bool = False,
               at_least_one: bool = True) -> tuple[list[Any], int]:
    """Up to ``max_records`` records from ``offset`` (at least one if any is there,
    then stopping before ``max_bytes`` of keys + headers + values is passed),
    and their size; with ``messages`` (True, or a Message subclass), Message
    objects carrying topic and partition; with ``zero_copy``, values and keys
    are memoryviews of the segment's map; without ``at_least_one``,
    ``max_bytes`` is a hard bound.

    A read that meets bytes it cannot decode while the partition changed
    under it (retention or compaction) starts over with the new state; only
    damage that is still there then raises CorruptRecordError.
    """
    if messages:
        kind = Message if messages is True else messages
        topic_partition = (kind, partition.topic, partition.number)
    else:
        topic_partition = None

    def decode(buffer, position, header, first, stop, max_bytes, at_least_one):
        records, used = _batch.decode(buffer, position, header, first, stop, max_bytes,
                                      at_least_one, topic_partition, zero_copy)
        return records, len(records), used

    pieces, _count, used = read_pieces(partition, offset, max_records, max_bytes, decode,
                                       at_least_one)
    return joined(pieces), used


def read_columns(partition: Partition, offset: int, max_records: int,
                 max_bytes: int | None) -> RecordColumns:
    """The records :meth:`read` would return, as columns (``_columns``)."""
    return read_columns_sized(partition, offset, max_records, max_bytes)[0]


def read_columns_sized(partition: Partition, offset: int, max_records: int,
                       max_bytes: int | None,
                       at_least_one: bool = True) -> tuple[RecordColumns, int]:
    """The records :meth:`read_sized` would return, as columns, and their size."""
    chunks, _count, used = read_pieces(partition, offset, max_records, max_bytes,
                                       decode_columns, at_least_one)
    return RecordColumns(partition.topic, partition.number, chunks), used


def read_kafka(partition: Partition, offset: int, max_bytes: int) -> list[bytes]:
    """See :meth:`Engine.read_kafka_batches`."""

    def take(buffer, position, header, first, stop, max_bytes, at_least_one):
        if header.attributes & fmt.ATTR_KAFKA:
            stored = kafka_bytes(buffer, position, header)
            if len(stored) > max_bytes and not at_least_one:
                return None, 0, 0
            return bytes(stored), header.record_count - first, len(stored)
        records, used = _batch.decode(buffer, position, header, first, stop, max_bytes,
                                      at_least_one)
        if not records:
            return None, 0, 0
        return encode_records(records, header.base_offset + first), len(records), used

    return read_pieces(partition, offset, KAFKA_READ_RECORDS_MAX, max_bytes, take, True,
                       kafka=True)[0]


#: Records a Kafka read takes at most (its bytes bound it first).
KAFKA_READ_RECORDS_MAX = 2**31 - 1


def read_pieces(partition: Partition, offset: int, max_records: int, max_bytes: int | None,
                decode: Callable, at_least_one: bool,
                kafka: bool = False) -> tuple[list, int, int]:
    """Run :func:`read_batches` on a consistent snapshot, starting over when the
    partition changed under a read that met bytes it could not decode; count
    the read in the engine's counters."""
    while True:
        state, view = snapshot(partition)
        check_offset(partition, offset, state)
        try:
            found = read_batches(partition, view, state, offset, max_records, max_bytes,
                                 decode, at_least_one, kafka)
        except CorruptRecordError:
            if partition.state().epoch == state.epoch:
                raise
            continue
        partition.counters.read(found[1], found[2])
        return found


def read_batches(partition: Partition, view: View, state: PartitionState, offset: int,
                 max_records: int, max_bytes: int | None, decode: Callable,
                 at_least_one: bool, kafka: bool = False) -> tuple[list, int, int]:
    """Decode batches from ``offset`` on: (one piece per batch as ``decode``
    returns it, records in all, payload bytes in all). ``decode(buffer,
    position, header, first, stop, max_bytes, at_least_one)`` returns (piece,
    records taken, bytes) for records ``first`` .. ``stop - 1`` of a batch.
    Stored Kafka batches reach ``decode`` converted to native ones, or as
    they are with ``kafka``.

    Damage: the records before the first damaged batch met are returned; a
    read that meets damage before any record (it starts in a damaged range)
    raises CorruptRecordError naming the range and the next readable offset.
    Gap markers and compaction gaps are stepped over."""
    pieces: list = []
    count = 0
    used_total = 0
    while offset < state.end_offset and count < max_records:
        segment, limit, index_count, segment_end = segment_for(offset, state, view)
        cursor_base, cursor_position = partition._cursor
        try:
            position, header = segment.locate(
                offset, limit, index_count,
                cursor_position if cursor_base == segment.base_offset else -1, segment_end)
        except DamagedRangeError as error:
            if count:
                break
            raise corrupt(partition, view, state, segment, offset, error.damage) from None
        except fmt.BatchError as error:  # the file itself is unreadable: range unknown
            if count:
                break
            raise CorruptRecordError(
                f"corrupt segment {segment.path} at offset {offset}: {error}",
                topic=partition.topic, partition=partition.number, offset=offset, file=segment.path,
            ) from None
        relocate = False
        while header is not None:
            if header.base_offset > offset:
                if not header.attributes & fmt.ATTR_COMPACTED:
                    if count:  # offsets missing, and nothing says why: damage
                        return pieces, count, used_total
                    raise corrupt(partition, view, state, segment, offset, Damage(
                        f"offsets {offset}..{header.base_offset - 1} are missing",
                        position, offset, position, header.base_offset))
                offset = header.base_offset  # removed by compaction
            if header.attributes & fmt.ATTR_GAP:
                offset = header.next_offset  # records removed by repair
            else:
                first = offset - header.base_offset
                buffer: fmt.ReadBuffer = segment.buffer(position + header.batch_length)
                at, batch = position, header
                if header.attributes & fmt.ATTR_KAFKA and not kafka:
                    buffer, at, batch = as_native(buffer, position, header)
                piece, taken, used = decode(
                    buffer, at, batch,
                    first, first + max_records - count,
                    None if max_bytes is None else max_bytes - used_total,
                    at_least_one and not count,
                )
                if not taken:
                    return pieces, count, used_total
                pieces.append(piece)
                count += taken
                used_total += used
                offset += taken
                partition._cursor = (segment.base_offset, position)
                if offset < header.next_offset or count >= max_records:
                    return pieces, count, used_total  # stopped inside the batch: a limit
                if max_bytes is not None and used_total >= max_bytes:
                    return pieces, count, used_total
            position += header.batch_length
            if offset >= segment_end or position >= limit:
                break
            try:
                header = segment.header_at(position, limit)
            except fmt.BatchError:
                header = None
            if header is None or header.base_offset < offset:
                if count:
                    return pieces, count, used_total  # the records before the damage
                relocate = True  # only gaps stepped over: locate says what the damage is
                break
        if relocate:
            continue
        if offset < segment_end and not segment.compacted:
            if count:
                break
            raise corrupt(partition, view, state, segment, offset, Damage(
                f"the segment's data ends before offset {segment_end}", limit, offset,
                None, segment_end))
        offset = max(offset, segment_end)  # past a compacted segment's trailing gap
    return pieces, count, used_total


def corrupt(partition: Partition, view: View, state: PartitionState, segment: Segment,
            offset: int, damage: Damage) -> CorruptRecordError:
    """The error for a read at ``offset`` that starts in ``damage``. A damage that
    reaches the end of its segment is followed into the next segments while
    they start damaged too, so that ``next_offset`` can be read."""
    next_offset = damage.next_offset
    reaches_end = damage.next_position is None
    current = segment
    while reaches_end and next_offset < state.end_offset:
        following, limit, index_count, end = segment_for(next_offset, state, view)
        if following is current:
            break
        try:
            following.locate(next_offset, limit, index_count, -1, end)
            break
        except DamagedRangeError as error:
            next_offset = max(error.damage.next_offset, next_offset)
            reaches_end = error.damage.next_position is None
            current = following
        except fmt.BatchError:
            break  # unreadable in another way: the read there says how
    return CorruptRecordError(
        f"corrupt batch in {segment.path} at offset {offset}: {damage.reason}; offsets "
        f"{damage.start_offset}..{next_offset - 1} cannot be read, the next readable "
        f"offset is {next_offset}",
        topic=partition.topic, partition=partition.number, offset=offset, file=segment.path,
        damaged_start=damage.start_offset, damaged_end=next_offset - 1,
        next_offset=next_offset,
    )


def timestamp_at(partition: Partition, offset: int) -> int | None:
    """The timestamp of the record at ``offset`` (or the next one there is),
    without decoding its value; None at the end offset, or when the record
    at ``offset`` is damaged (its time is unknown; a read reports it)."""
    state, view = snapshot(partition)
    check_offset(partition, offset, state)
    while offset < state.end_offset:
        segment, limit, index_count, end = segment_for(offset, state, view)
        try:
            position, header = segment.locate(offset, limit, index_count, -1, end)
        except DamagedRangeError:
            return None
        if header is None:
            offset = end  # a compacted segment's trailing gap
            continue
        if fmt.is_gap(header):
            offset = header.next_offset
            continue
        row = max(offset - header.base_offset, 0)
        table, position, _header = as_native(segment.buffer(limit), position, header)
        return _TIMESTAMP.unpack_from(
            table, position + fmt.BATCH_HEADER_SIZE + row * fmt.RECORD_DTYPE.itemsize)[0]
    return None


def offset_for_time(partition: Partition, timestamp: int) -> int:
    """First offset whose record timestamp is >= ``timestamp``; the end offset if
    none. Damaged records have no known time: see :func:`scan_for_time`."""
    state, view = snapshot(partition)
    bases = view.bases.tolist()
    if not bases:  # read-only and never written
        return state.end_offset
    closed = np.flatnonzero(view.closed_max_timestamps() >= timestamp).tolist()
    for slot in [*closed, len(bases) - 1]:  # segments holding a late-enough record
        base = bases[slot]
        segment = view.segments[base]
        end = bases[slot + 1] if slot + 1 < len(bases) else state.end_offset
        if base == state.active_base_offset:
            segment_max = state.active_max_timestamp
            time_count = state.time_index_count
            limit, index_count = state.active_position, state.offset_index_count
        else:
            segment_max = closed_max_timestamp(segment, end)
            time_count = segment.closed_time_count
            limit, index_count = segment.closed_size, segment.closed_index_count
        if segment_max < timestamp:
            continue
        start = max(base + segment.time_index.floor_below(timestamp, time_count),
                    state.log_start_offset)
        found = scan_for_time(segment, start, end, limit, index_count, timestamp)
        if found is not None:
            return found
    return state.end_offset


def newest_record(partition: Partition) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record holding the partition's largest
    timestamp (Kafka's ListOffsets MAX_TIMESTAMP); None when no record is left.
    Each segment's newest timestamp is at hand (its final time-index entry, or
    the published state for the active one), except in the segment holding the
    log start offset, whose records below it no longer count: that one is
    scanned from the start offset. Damaged records have no known time."""
    state, view = snapshot(partition)
    bases = view.bases.tolist()
    start = state.log_start_offset
    if not bases or start >= state.end_offset:
        return None
    newest = [*view.closed_max_timestamps().tolist(), state.active_max_timestamp]
    first = max(int(np.searchsorted(view.bases, start, side="right")) - 1, 0)
    best = max(newest[first + 1:], default=fmt.NO_TIMESTAMP)
    if start == bases[first]:
        best = max(best, newest[first])
    else:
        segment, limit, index_count, end = segment_for(start, state, view)
        best = max(best, _newest_from(segment, start, end, limit, index_count))
    if best == fmt.NO_TIMESTAMP:
        return None
    offset = offset_for_time(partition, best)
    return (offset, best) if offset < state.end_offset else None


def _newest_from(segment: Segment, offset: int, end: int, limit: int,
                 index_count: int) -> int:
    """The largest timestamp of ``segment``'s records from ``offset`` on
    (NO_TIMESTAMP if none can be read)."""
    newest = fmt.NO_TIMESTAMP
    hint = -1
    while offset < end:
        try:
            position, header = segment.locate(offset, limit, index_count, hint, end)
        except DamagedRangeError as error:
            offset, hint = error.damage.next_offset, error.damage.next_position or -1
            continue
        if header is None:
            break
        if not fmt.is_gap(header) and header.max_timestamp > newest:
            first = max(offset - header.base_offset, 0)
            if first == 0:
                newest = header.max_timestamp
            else:  # the batch holding the start: only its records from there count
                buffer, at, _header = as_native(segment.buffer(limit), position, header)
                table = fmt.record_table(buffer, at, header.record_count)
                stamps = table["timestamp"][first:]
                if len(stamps):
                    newest = max(newest, int(stamps.max()))
        offset, hint = header.next_offset, position
    return newest


def scan_for_time(segment: Segment, offset: int, end: int, limit: int,
                  index_count: int, timestamp: int) -> int | None:
    """The first offset from ``offset`` in ``segment`` whose timestamp is >=
    ``timestamp``, or None. Damaged batches are stepped over; when the record
    found is the first one after a damaged range, the range's first offset is
    returned instead (a damaged record may be the first late-enough one, and
    a reader starting there is told about the damage)."""
    hint = -1
    damaged_from = None
    while offset < end:
        try:
            position, header = segment.locate(offset, limit, index_count, hint, end)
        except DamagedRangeError as error:
            if damaged_from is None:
                damaged_from = error.damage.start_offset
            offset, hint = error.damage.next_offset, error.damage.next_position or -1
            continue
        if header is None:
            return None
        if not fmt.is_gap(header) and header.max_timestamp >= timestamp:
            # the map holds the header just read: buffer() cannot fail here
            buffer, at, _header = as_native(segment.buffer(limit), position, header)
            table = fmt.record_table(buffer, at, header.record_count)
            first = max(offset - header.base_offset, 0)
            hits = np.flatnonzero(table["timestamp"][first:] >= timestamp)
            if len(hits):
                found = header.base_offset + first + int(hits[0])
                if damaged_from is not None and found == max(offset, header.base_offset):
                    return damaged_from
                return found
        damaged_from = None
        offset, hint = header.next_offset, position
    return None


def landed(partition: Partition, append: AppendMetadata, state: PartitionState) -> bool:
    """Whether a remembered idempotent append is in the log: the batch at its
    first offset is the one it wrote (same checksum). Lock held."""
    if append.end_offset > state.end_offset:
        return False
    if append.first_offset < state.log_start_offset:
        return True  # retention deleted it: no longer checkable, taken as written
    segment, limit, index_count, _end = segment_for(
        append.first_offset, state, partition.refresh_view(state))
    try:
        _position, header = segment.locate(append.first_offset, limit, index_count)
    except fmt.BatchError:
        return False
    return header is not None and header.base_offset == append.first_offset and (
        header.checksum == append.checksum)


def joined(pieces: list[list]) -> list:
    """The lists of ``pieces`` (fresh lists, the first of which is reused) as one."""
    if not pieces:
        return []
    out = pieces[0]
    for piece in pieces[1:]:
        out.extend(piece)
    return out
