"""One partition: a sequence of segments, its end published in the state file.

Owner: this object owns the partition's files as open in this process (segment
maps, file descriptors) and a thread lock. Across processes:

* Appends are serialized by the thread lock plus an exclusive ``flock`` on the
  state file, held for one call (a few batches at most). Under the lock the
  appender reads the published state, writes the batch at the published
  position, adds index entries and publishes the new end. Offsets are thus
  dense and unique and batches never interleave.
* Readers take no lock: they read the published state and only ever look at
  bytes below it, which were complete before it was published.
* Recovery runs under the same lock when a process opens the partition: the
  tail of the newest segment is re-verified from its last index entry and a
  torn or corrupt tail is cut (see :meth:`Partition._recover`).
* Deleting the topic unlinks each state file under its lock
  (:func:`retire_partition`); an appender that gets the lock afterwards finds
  its state file unlinked and raises UnknownTopicError, so no append can
  succeed into a deleted partition, in any process.
* A partition opened ``read_only`` writes nothing, takes no lock and runs no
  recovery on disk: it works out in memory what recovery would conclude
  (:meth:`Partition._recover_in_memory`) and reads by that until a writer
  publishes a state of its own.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from mqlog.errors import (
    CorruptRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    ReadOnlyError,
    StorageFailedError,
    UnknownTopicError,
)
from mqlog.logstore import _batch, _journal
from mqlog.logstore import _format as fmt
from mqlog.logstore._closed_index import index_disagreement, rebuild_indexes
from mqlog.logstore._columns import RecordColumns, decode_columns
from mqlog.logstore._files import fsync_directory
from mqlog.logstore._producers import Admission, AppendMetadata, ProducerBatch, ProducerTable
from mqlog.logstore._record import Message, Record
from mqlog.logstore._resync import Damage, DamagedRangeError, resync
from mqlog.logstore._retention import SegmentFacts, segments_to_delete
from mqlog.logstore._segment import (
    Segment,
    index_capacity,
    list_segment_bases,
    remove_segment_files,
)
from mqlog.logstore._space import storage_failed
from mqlog.logstore._state import PartitionState, StateFile, current_boot_id
from mqlog.logstore.config import TopicConfig

_log = logging.getLogger("mqlog.logstore")

#: Smallest timestamp: "no record yet" in running maxima.
NO_TIMESTAMP = -(2**63)
STATE_FILE = "state"
_TIMESTAMP = struct.Struct("<q")
#: Longest a flush waits for this process's appenders that are mid-write to join
#: it (durability="always"): a fraction of one fdatasync (~250 us here).
GATHER_S = 0.0002

ConfigSource = Callable[[], TopicConfig]


@dataclasses.dataclass(frozen=True)
class PartitionDescription:
    """Where a partition stands: offsets, bytes on disk and segment count.

    ``records_present`` is counted only for compacted topics (``cleanup_policy
    ="compact"``), whose offsets have gaps: the records of every batch from the
    log start offset on, read from the batch headers (one 48-byte header per
    batch, no record decoded). Elsewhere it is None and :attr:`record_count` is
    the offset span, which costs nothing."""

    partition: int
    start_offset: int
    end_offset: int
    size_bytes: int
    segment_count: int
    records_present: int | None = None

    @property
    def record_count(self) -> int:
        """The records in the partition: ``records_present`` when counted, else
        ``end_offset - start_offset``."""
        if self.records_present is not None:
            return self.records_present
        return self.end_offset - self.start_offset
Clock = Callable[[], int]


class Partition:
    """A partition directory open in this process. Thread-safe.

    Storage failures latch: the first StorageFailedError (a failed fdatasync
    or write) is kept in ``_failure``, and every later append, flush, commit
    or other write through this object raises StorageFailedError naming it,
    until the log is closed and opened again (which runs recovery)."""

    #: The first storage failure, once there is one (see the class docstring).
    _failure: StorageFailedError | None = None

    def __init__(self, directory: str, topic: str, number: int, config: ConfigSource,
                 clock: Clock, on_append: Callable[[], None] = lambda: None, *,
                 read_only: bool = False, apply_retention: bool = True) -> None:
        """Open (and recover) the partition in ``directory``. ``read_only``: write
        nothing at all (every write raises ReadOnlyError); ``apply_retention=False``:
        only an explicit :meth:`enforce_retention` deletes segments."""
        self.directory = directory
        self.topic = topic
        self.number = number
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._view_lock = threading.Lock()
        self._view = _View(-1, np.zeros(0, dtype=np.int64), {})
        #: (segment base, batch position) of the last batch read: where the next
        #: read of a reader that goes on usually starts (a hint, always checked).
        self._cursor = (-1, -1)
        #: Segments this process just created, handed to the next view.
        self._fresh: dict[int, Segment] = {}
        self._closed = False
        #: The idempotent producers' last batches (opened on first use).
        self._producer_table: ProducerTable | None = None
        #: Called after every append (wakes readers waiting in any process).
        self._on_append = on_append
        # Group commit (durability="always"): one thread flushes, the others wait.
        self._commit = threading.Condition()
        self._durable_offset = 0
        self._flushing = False
        #: Appenders of this process writing a durable append right now.
        self._writers = 0
        #: Highest offset this process flushed; carried into the next published state.
        self._flushed_here = 0
        #: Set when this process appended since the last interval flush.
        self.dirty = False
        self.read_only = read_only
        self.apply_retention = apply_retention
        #: Read-only: the state recovery would publish, worked out in memory, and
        #: the sequence of the file's slot it was worked out from (see state()).
        self._memory_state: PartitionState | None = None
        self._memory_sequence = -1
        self._state_file = StateFile(os.path.join(directory, STATE_FILE), read_only)
        try:
            if read_only:
                self._recover_in_memory(self._state_file.read())
            else:
                with self._locked() as state:
                    self._recover(state)
        except BaseException:
            self.close()
            raise

    # -- read-only opening ---------------------------------------------------------

    def _recover_in_memory(self, state: PartitionState | None) -> None:
        """What :meth:`_recover` would conclude, worked out without writing: the
        valid end of the newest segment. Kept as this process's state until a
        writer publishes one (it recovers the partition on disk first)."""
        try:
            bases = list_segment_bases(self.directory)
        except FileNotFoundError:
            raise UnknownTopicError(f"topic {self.topic!r} was deleted") from None
        if state is not None:
            while len(bases) > 1 and bases[1] <= state.log_start_offset:
                bases.pop(0)  # wholly below the log start: retention is deleting it
        if not bases:  # never written (or the segments went missing)
            start = state.end_offset if state is not None else 0
            self._use_memory_state(state, PartitionState(
                log_start_offset=start, end_offset=start, active_base_offset=start,
                active_position=0, active_max_timestamp=NO_TIMESTAMP,
                active_created_ms=self._clock(), flushed_offset=start, offset_index_count=0,
                time_index_count=0, epoch=state.epoch if state is not None else 0))
            return
        trusted_history = (state is not None and state.boot_id == current_boot_id()
                           and not self._state_file.slots().damaged)
        while trusted_history and len(bases) > 1 and bases[-1] > state.active_base_offset:
            bases.pop()  # a roll died unpublished
        segment, trusted, scan = self._scan_newest(bases, state, trusted_history,
                                                   self.config(), writable=False)
        newest = segment.base_offset
        self._fresh[newest] = segment
        cut = not trusted or scan.position != state.active_position
        recovered = PartitionState(
            log_start_offset=bases[0] if state is None else max(state.log_start_offset,
                                                                 bases[0]),
            end_offset=scan.offset,
            active_base_offset=newest,
            active_position=scan.position,
            active_max_timestamp=scan.max_timestamp,
            active_created_ms=state.active_created_ms if trusted else self._clock(),
            flushed_offset=min(state.flushed_offset, scan.offset) if trusted else 0,
            offset_index_count=scan.index_count,
            time_index_count=scan.index_count,
            epoch=(state.epoch + (1 if cut else 0)) if state is not None else 1,
        )
        if state is None or recovered != state.replace(sequence=0):
            self._use_memory_state(state, recovered)

    def _use_memory_state(self, on_disk: PartitionState | None,
                          recovered: PartitionState) -> None:
        self._memory_sequence = -1 if on_disk is None else on_disk.sequence
        self._memory_state = recovered

    def _state_after_memory(self, on_disk: PartitionState | None) -> PartitionState | None:
        """The state of a read-only partition recovered in memory: the in-memory one
        while the file still holds what it was worked out from, else the file's
        (a writer recovered the partition and published; views are reloaded)."""
        memory = self._memory_state
        if memory is None:  # another thread switched to the file just now
            return on_disk
        if on_disk is None or on_disk.sequence == self._memory_sequence:
            return memory
        with self._view_lock:
            self._memory_state = None
            self._view = _View(-1, np.zeros(0, dtype=np.int64), {})
        return on_disk

    def deleted(self) -> bool:
        """True once this partition's topic was deleted, by any process."""
        if self._state_file.fd >= 0:
            return os.fstat(self._state_file.fd).st_nlink == 0
        return not os.path.isdir(self.directory)

    # -- locking and state ---------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[PartitionState | None]:
        """Hold the partition's append lock; yields the published state."""
        if self.read_only:
            raise ReadOnlyError(f"partition {self.topic}/{self.number} is open read-only")
        with self._lock:
            if self._closed:
                raise LogClosedError(f"partition {self.topic}/{self.number} is closed")
            if self._failure is not None:
                self._check_failure()
            fcntl.flock(self._state_file.fd, fcntl.LOCK_EX)
            try:
                yield self._state_file.read()
            except StorageFailedError as error:
                self._fail(error)
                raise
            finally:
                fcntl.flock(self._state_file.fd, fcntl.LOCK_UN)

    def _check_failure(self) -> None:
        """Raise StorageFailedError if storage failed under this partition before."""
        failure = self._failure
        if failure is not None:
            raise StorageFailedError(
                f"partition {self.topic}/{self.number} refuses writes since storage "
                f"failed under it: {failure}", original=failure.original)

    def _fail(self, error: StorageFailedError) -> None:
        """Latch the first storage failure (see the class docstring)."""
        if self._failure is None:
            self._failure = error
            _log.error("partition %s/%d failed, writes refused until reopened: %s",
                       self.topic, self.number, error)

    def state(self) -> PartitionState:
        """The latest published state (lock-free)."""
        if self._closed:
            raise LogClosedError(f"partition {self.topic}/{self.number} is closed")
        state = self._state_file.read()
        if self._memory_state is not None:  # read-only, recovered in memory
            state = self._state_after_memory(state)
        if state is None:  # only before the first publish, which __init__ does
            raise LogClosedError(f"partition {self.topic}/{self.number} has no state")
        return state

    def _publish(self, state: PartitionState, previous: PartitionState | None) -> PartitionState:
        return self._state_file.publish(state, previous)

    # -- segments as seen by this process ------------------------------------------

    def _refresh(self, state: PartitionState) -> _View:
        """This process's view of the segment set, brought up to ``state.epoch``.

        Views only move forward and are replaced whole, so a reader holding one
        always sees a consistent set; segments dropped from the view close once
        no reader holds them."""
        view = self._view
        if state.epoch <= view.epoch:
            return view
        with self._view_lock:
            if state.epoch > self._view.epoch:
                self._view = self._load_view(state, self._view)
            return self._view

    def _load_view(self, state: PartitionState, current: _View) -> _View:
        try:
            bases = [b for b in list_segment_bases(self.directory)
                     if b <= state.active_base_offset]
        except FileNotFoundError:  # the topic was deleted by another process
            raise UnknownTopicError(f"topic {self.topic!r} was deleted") from None
        while len(bases) > 1 and bases[1] <= state.log_start_offset:
            bases.pop(0)  # wholly below the log start: retention is deleting it
        segments: dict[int, Segment] = {}
        for base in bases:
            segment = self._fresh.pop(base, None) or current.segments.get(base)
            if segment is not None and base != state.active_base_offset and segment.replaced():
                segment = None  # compacted: open the cleaned copy
            try:
                if segment is None:
                    segment = Segment(self.directory, base, read_only=self.read_only)
                if base != state.active_base_offset and segment.closed_index_count < 0:
                    segment.load_closed()
            except FileNotFoundError:  # deleted by retention meanwhile (or its indexes)
                continue
            segments[base] = segment
        if state.active_base_offset not in segments and (bases or not self.read_only):
            raise UnknownTopicError(f"topic {self.topic!r} was deleted")  # files gone
        return _View(state.epoch, np.array(list(segments), dtype=np.int64), segments)

    def _segment_for(self, offset: int, state: PartitionState,
                     view: _View) -> tuple[Segment, int, int, int]:
        """(segment, byte limit, index entry count, first offset after it) for the
        segment holding ``offset``."""
        slot = max(int(np.searchsorted(view.bases, offset, side="right")) - 1, 0)
        segment = view.segments[int(view.bases[slot])]
        end = int(view.bases[slot + 1]) if slot + 1 < len(view.bases) else state.end_offset
        if segment.base_offset == state.active_base_offset:
            return segment, state.active_position, state.offset_index_count, end
        return segment, segment.closed_size, segment.closed_index_count, end

    # -- reading -------------------------------------------------------------------

    def check_offset(self, offset: int, state: PartitionState) -> None:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < state.log_start_offset or offset > state.end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is out of range for {self.topic}/{self.number}: "
                f"valid offsets are {state.log_start_offset}..{state.end_offset}",
                offset=offset, start_offset=state.log_start_offset, end_offset=state.end_offset,
            )

    def read(self, offset: int, max_records: int, max_bytes: int | None,
             messages: bool | type[Message] = False, zero_copy: bool = False) -> list[Record]:
        """See :meth:`read_sized` (this returns only the records)."""
        return self.read_sized(offset, max_records, max_bytes, messages, zero_copy)[0]

    def read_sized(self, offset: int, max_records: int, max_bytes: int | None,
                   messages: bool | type[Message] = False, zero_copy: bool = False,
                   at_least_one: bool = True) -> tuple[list[Record], int]:
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
            topic_partition = (kind, self.topic, self.number)
        else:
            topic_partition = None

        def decode(buffer, position, header, first, stop, max_bytes, at_least_one):
            records, used = _batch.decode(buffer, position, header, first, stop, max_bytes,
                                          at_least_one, topic_partition, zero_copy)
            return records, len(records), used

        pieces, _count, used = self._read_pieces(offset, max_records, max_bytes, decode,
                                                 at_least_one)
        return joined(pieces), used

    def read_columns(self, offset: int, max_records: int,
                     max_bytes: int | None) -> RecordColumns:
        """The records :meth:`read` would return, as columns (``_columns``)."""
        return self.read_columns_sized(offset, max_records, max_bytes)[0]

    def read_columns_sized(self, offset: int, max_records: int, max_bytes: int | None,
                           at_least_one: bool = True) -> tuple[RecordColumns, int]:
        """The records :meth:`read_sized` would return, as columns, and their size."""
        chunks, _count, used = self._read_pieces(offset, max_records, max_bytes,
                                                 decode_columns, at_least_one)
        return RecordColumns(self.topic, self.number, chunks), used

    def _read_pieces(self, offset: int, max_records: int, max_bytes: int | None,
                     decode: Callable, at_least_one: bool) -> tuple[list, int, int]:
        """Run :meth:`_read` on a consistent snapshot, starting over when the
        partition changed under a read that met bytes it could not decode."""
        while True:
            state, view = self._snapshot()
            self.check_offset(offset, state)
            try:
                return self._read(view, state, offset, max_records, max_bytes, decode,
                                  at_least_one)
            except CorruptRecordError:
                if self.state().epoch == state.epoch:
                    raise

    def _snapshot(self) -> tuple[PartitionState, _View]:
        """The published state with a segment view no newer than it."""
        state = self.state()
        view = self._refresh(state)
        while view.epoch > state.epoch:  # another thread refreshed past this state
            state = self.state()
            view = self._refresh(state)
        return state, view

    def _read(self, view: _View, state: PartitionState, offset: int, max_records: int,
              max_bytes: int | None, decode: Callable,
              at_least_one: bool) -> tuple[list, int, int]:
        """Decode batches from ``offset`` on: (one piece per batch as ``decode``
        returns it, records in all, payload bytes in all). ``decode(buffer,
        position, header, first, stop, max_bytes, at_least_one)`` returns (piece,
        records taken, bytes) for records ``first`` .. ``stop - 1`` of a batch.

        Damage: the records before the first damaged batch met are returned; a
        read that meets damage before any record (it starts in a damaged range)
        raises CorruptRecordError naming the range and the next readable offset.
        Gap markers and compaction gaps are stepped over."""
        pieces: list = []
        count = 0
        used_total = 0
        while offset < state.end_offset and count < max_records:
            segment, limit, index_count, segment_end = self._segment_for(offset, state, view)
            cursor_base, cursor_position = self._cursor
            try:
                position, header = segment.locate(
                    offset, limit, index_count,
                    cursor_position if cursor_base == segment.base_offset else -1, segment_end)
            except DamagedRangeError as error:
                if count:
                    break
                raise self._corrupt(view, state, segment, offset, error.damage) from None
            except fmt.BatchError as error:  # the file itself is unreadable: range unknown
                if count:
                    break
                raise CorruptRecordError(
                    f"corrupt segment {segment.path} at offset {offset}: {error}",
                    topic=self.topic, partition=self.number, offset=offset, file=segment.path,
                ) from None
            relocate = False
            while header is not None:
                if header.base_offset > offset:
                    if not header.attributes & fmt.ATTR_COMPACTED:
                        if count:  # offsets missing, and nothing says why: damage
                            return pieces, count, used_total
                        raise self._corrupt(view, state, segment, offset, Damage(
                            f"offsets {offset}..{header.base_offset - 1} are missing",
                            position, offset, position, header.base_offset))
                    offset = header.base_offset  # removed by compaction
                if header.attributes & fmt.ATTR_GAP:
                    offset = header.next_offset  # records removed by repair
                else:
                    first = offset - header.base_offset
                    piece, taken, used = decode(
                        segment.buffer(position + header.batch_length), position, header,
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
                    self._cursor = (segment.base_offset, position)
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
                raise self._corrupt(view, state, segment, offset, Damage(
                    f"the segment's data ends before offset {segment_end}", limit, offset,
                    None, segment_end))
            offset = max(offset, segment_end)  # past a compacted segment's trailing gap
        return pieces, count, used_total

    def _corrupt(self, view: _View, state: PartitionState, segment: Segment, offset: int,
                 damage: Damage) -> CorruptRecordError:
        """The error for a read at ``offset`` that starts in ``damage``. A damage that
        reaches the end of its segment is followed into the next segments while
        they start damaged too, so that ``next_offset`` can be read."""
        next_offset = damage.next_offset
        reaches_end = damage.next_position is None
        current = segment
        while reaches_end and next_offset < state.end_offset:
            following, limit, index_count, end = self._segment_for(next_offset, state, view)
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
            topic=self.topic, partition=self.number, offset=offset, file=segment.path,
            damaged_start=damage.start_offset, damaged_end=next_offset - 1,
            next_offset=next_offset,
        )

    def timestamp_at(self, offset: int) -> int | None:
        """The timestamp of the record at ``offset`` (or the next one there is),
        without decoding its value; None at the end offset, or when the record
        at ``offset`` is damaged (its time is unknown; a read reports it)."""
        state, view = self._snapshot()
        self.check_offset(offset, state)
        while offset < state.end_offset:
            segment, limit, index_count, end = self._segment_for(offset, state, view)
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
            table = segment.buffer(limit)
            return _TIMESTAMP.unpack_from(
                table, position + fmt.BATCH_HEADER_SIZE + row * fmt.RECORD_DTYPE.itemsize)[0]
        return None

    def offset_for_time(self, timestamp: int) -> int:
        """First offset whose record timestamp is >= ``timestamp``; the end offset if
        none. Damaged records have no known time: see :meth:`_scan_for_time`."""
        state, view = self._snapshot()
        bases = view.bases.tolist()
        if not bases:  # read-only and never written
            return state.end_offset
        closed = np.flatnonzero(view.closed_max_timestamps(self) >= timestamp).tolist()
        for slot in [*closed, len(bases) - 1]:  # segments holding a late-enough record
            base = bases[slot]
            segment = view.segments[base]
            end = bases[slot + 1] if slot + 1 < len(bases) else state.end_offset
            if base == state.active_base_offset:
                segment_max = state.active_max_timestamp
                time_count = state.time_index_count
                limit, index_count = state.active_position, state.offset_index_count
            else:
                segment_max = self._closed_max_timestamp(segment, end)
                time_count = segment.closed_time_count
                limit, index_count = segment.closed_size, segment.closed_index_count
            if segment_max < timestamp:
                continue
            start = max(base + segment.time_index.floor_below(timestamp, time_count),
                        state.log_start_offset)
            found = self._scan_for_time(segment, start, end, limit, index_count, timestamp)
            if found is not None:
                return found
        return state.end_offset

    def _scan_for_time(self, segment: Segment, offset: int, end: int, limit: int,
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
                table = fmt.record_table(segment.buffer(limit), position, header.record_count)
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

    def _closed_max_timestamp(self, segment: Segment, end: int) -> int:
        """Largest timestamp of a closed segment: its final time-index entry, else a scan."""
        if segment.max_timestamp is not None:
            return segment.max_timestamp
        count = segment.closed_time_count
        length = end - segment.base_offset
        entries = segment.time_index.entries
        if count and int(entries["relative_offset"][count - 1]) == length:
            value = int(entries["timestamp"][count - 1])
        else:
            value = NO_TIMESTAMP
            position = 0
            limit = segment.file_size()
            while True:
                try:
                    header = segment.header_at(position, limit)
                except fmt.BatchError:
                    break
                value = max(value, header.max_timestamp)
                position += header.batch_length
        segment.max_timestamp = value
        return value

    # -- appending ---------------------------------------------------------------------

    def append(self, records: Sequence, now_ms: int | None = None,
               producer: ProducerBatch | None = None, flush: bool | None = None) -> int:
        """Append ``records`` as one or more batches; return the first offset.

        All or nothing, across batch splits, failed writes and crashes: the
        batches of one append go into one segment (rolled before them if they do
        not fit, never between them) and their end is published once, after the
        last of them is written. A write that fails (a full disk) publishes
        nothing and invalidates what it wrote; recovery cuts an append whose last
        batch is missing (every other batch carries ``ATTR_CONTINUES``).

        Records without a timestamp get ``now_ms`` (default: the clock now).
        ``producer`` makes the append idempotent (see ``_producers``): a
        duplicate of one of the producer's last 5 appends writes nothing and
        returns that append's first offset; sequences out of order raise
        ProducerSequenceError, an old epoch InvalidProducerEpochError. ``flush``
        overrides whether this append returns only once flushed (default: the
        topic's durability is ``always``)."""
        if producer is not None and not isinstance(producer, ProducerBatch):
            raise TypeError(f"producer must be a ProducerBatch, not {type(producer).__name__}")
        config = self.config()
        if now_ms is None:
            now_ms = self._clock()
        batches = _batch.encode(records, now_ms, config.max_record_bytes)
        if flush is None:
            flush = config.durability == "always"
        durable = flush and bool(batches)
        if durable:
            with self._commit:
                self._writers += 1  # a flush about to start waits briefly for us
        try:
            with self._locked() as state:
                if os.fstat(self._state_file.fd).st_nlink == 0:
                    raise UnknownTopicError(
                        f"topic {self.topic!r} was deleted (partition {self.number})")
                if not batches:
                    return state.end_offset
                admission = None if producer is None else self._already_written(
                    producer, sum(batch.count for batch in batches), state)
                epoch = state.epoch
                if admission is not None and admission.duplicate is not None:
                    first_offset = admission.duplicate
                else:
                    first_offset = state.end_offset
                    state = self._append_batches(state, batches, config, producer, admission)
        finally:
            if durable:  # written (or failed): a waiting flush may start now
                with self._commit:
                    self._writers -= 1
                    self._commit.notify_all()
        self.dirty = True
        self._on_append()
        if durable:
            if producer is not None:  # a retry after a power loss must still find it
                try:
                    self._producer_table.sync()
                except StorageFailedError as error:
                    self._fail(error)
                    raise
            self._make_durable(state.end_offset)
        if state.epoch != epoch and config.cleanup_policy == "compact":
            self.on_roll(self)  # maybe enough to clean: the log's compactor thread looks
        return first_offset

    def _already_written(self, producer: ProducerBatch, count: int,
                         state: PartitionState) -> Admission:
        """The producer table's verdict on an idempotent append of ``count``
        records: a duplicate (and where it was written) or new (lock held)."""
        if self._producer_table is None:
            self._producer_table = ProducerTable(self.directory)
        return self._producer_table.lookup(producer, count,
                                           lambda append: self._landed(append, state))

    def _landed(self, append: AppendMetadata, state: PartitionState) -> bool:
        """Whether a remembered idempotent append is in the log: the batch at its
        first offset is the one it wrote (same checksum). Lock held."""
        if append.end_offset > state.end_offset:
            return False
        if append.first_offset < state.log_start_offset:
            return True  # retention deleted it: no longer checkable, taken as written
        segment, limit, index_count, _end = self._segment_for(
            append.first_offset, state, self._refresh(state))
        try:
            _position, header = segment.locate(append.first_offset, limit, index_count)
        except fmt.BatchError:
            return False
        return header is not None and header.base_offset == append.first_offset and (
            header.checksum == append.checksum)

    def _append_batches(self, state: PartitionState, batches: list[_batch.EncodedBatch],
                        config: TopicConfig, producer: ProducerBatch | None,
                        admission: Admission | None) -> PartitionState:
        """Write the batches of one append into the active segment, index its start,
        record it in the producer table and publish its end (lock held)."""
        position = state.active_position
        if position and (
            position + (batches[0].length if len(batches) == 1  # the common case, cheaply
                        else sum(batch.length for batch in batches)) > config.segment_bytes
            or self._clock() - state.active_created_ms >= config.segment_ms
        ):
            state = self._roll(state, config)  # before the append: never inside it
            position = 0
        segment = self._refresh(state).segments[state.active_base_offset]
        first_position = position
        first_offset = offset = state.end_offset
        max_timestamp = state.active_max_timestamp
        try:
            for batch in batches:
                frame = batch.frame(offset)
                segment.write(position, frame, batch.length)
                if admission is not None and offset == first_offset:
                    checksum = fmt.BATCH_HEADER.unpack_from(frame[0])[0]
                position += batch.length
                offset += batch.count
                max_timestamp = max(max_timestamp, batch.max_timestamp)
            index_count = self._index_append_start(state, segment, first_position, config)
            if admission is not None:  # before the publish: see _producers
                self._producer_table.record(admission, AppendMetadata(
                    producer.base_sequence, producer.last_sequence(offset - first_offset),
                    first_offset, offset, checksum))
        except BaseException:
            _invalidate(segment, first_position)
            raise
        return self._publish(
            state.replace(
                end_offset=offset,
                active_position=position,
                active_max_timestamp=max_timestamp,
                offset_index_count=index_count,
                time_index_count=index_count,
                flushed_offset=max(state.flushed_offset,
                                   min(self._flushed_here, state.end_offset)),
            ),
            state,
        )

    @staticmethod
    def _index_append_start(state: PartitionState, segment: Segment, position: int,
                            config: TopicConfig) -> int:
        """Add an index entry for the append starting at ``position`` if it is far
        enough from the previous one; return the entry count. Entries only ever
        point at the start of an append, so a recovery scan starts at one."""
        index_count = state.offset_index_count
        if index_count > segment.index.capacity:  # another process grew the index files
            segment.index.remap()
            segment.time_index.remap()
        last_indexed = (
            int(segment.index.columns["position"][index_count - 1]) if index_count else 0
        )
        relative = state.end_offset - segment.base_offset
        if position - last_indexed >= config.index_interval_bytes and segment.index.write(
            index_count, (relative, position)
        ):
            segment.time_index.write(index_count,
                                     fmt.time_entry(state.active_max_timestamp, relative))
            index_count += 1
        return index_count

    def _roll(self, state: PartitionState, config: TopicConfig) -> PartitionState:
        """Close the active segment and start a new one at the end offset (lock held)."""
        old = self._refresh(state).segments[state.active_base_offset]
        if config.durability != "none":
            old.flush()
        time_count = state.time_index_count
        if old.time_index.write(time_count, fmt.time_entry(state.active_max_timestamp,
                                                           state.end_offset - old.base_offset)):
            time_count += 1
        for base in list_segment_bases(self.directory):
            if base > state.active_base_offset:  # left by a roll that died unpublished
                remove_segment_files(self.directory, base)
        new = self._create_segment(state.end_offset, config)
        if config.durability != "none":
            try:
                fsync_directory(self.directory)
            except OSError as error:  # latched by _locked, as a failed flush is
                raise storage_failed("fsync", self.directory, error) from error
        previous = state
        state = self._publish(
            state.replace(
                active_base_offset=new.base_offset, active_position=0,
                active_max_timestamp=NO_TIMESTAMP, active_created_ms=self._clock(),
                offset_index_count=0, time_index_count=0, epoch=state.epoch + 1,
            ),
            state,
        )
        # Trimmed only once the roll is published: an appender that still takes the
        # old segment as active (this process died before publishing) never finds
        # its files shorter than its maps.
        old.trim(previous.active_position, previous.offset_index_count, time_count)
        old.max_timestamp = previous.active_max_timestamp
        self._refresh(state)
        return self._enforce_retention_locked(state, config)

    def _create_segment(self, base_offset: int, config: TopicConfig) -> Segment:
        """A new, preallocated segment; on a full disk (DiskFullError) its files are
        removed again, so a retry once space is freed starts clean."""
        segment = Segment(self.directory, base_offset, create=True)
        try:
            segment.preallocate(config.segment_bytes,
                                index_capacity(config.segment_bytes, config.index_interval_bytes))
        except BaseException:
            segment.close()
            remove_segment_files(self.directory, base_offset)
            raise
        self._fresh[base_offset] = segment  # joins the view once its roll is published
        return segment

    # -- durability ----------------------------------------------------------------------

    def _make_durable(self, offset: int) -> None:
        """Return once every offset below ``offset`` is on stable storage.

        Group commit: one caller flushes for everyone who appended before the
        flush began; the others wait for it, so concurrent appenders share one
        fdatasync. A caller about to flush first waits (at most GATHER_S) for
        the appenders of this process that are writing right now, so that one
        flush covers them too.
        """
        with self._commit:
            while self._durable_offset < offset:
                self._check_failure()  # every waiter learns of a failed flush
                if not self._flushing:
                    self._flushing = True
                    deadline = time.monotonic() + GATHER_S
                    while self._writers > 0:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._commit.wait(remaining)
                    break
                self._commit.wait()
            else:
                return
        durable = self._durable_offset
        try:
            durable = self.flush()
        finally:
            with self._commit:
                self._flushing = False
                self._durable_offset = max(self._durable_offset, durable)
                self._commit.notify_all()
        if durable < offset:  # pragma: no cover - flush() covers every published offset
            raise AssertionError(f"flush covered {durable}, needed {offset}")

    def flush(self) -> int:
        """fdatasync what has been published (every segment holding offsets above
        the last flush); return the offset it covers.

        A failed fdatasync latches the partition failed (StorageFailedError, now
        and for every later write): the kernel may have marked the pages clean
        without writing them, so a later fdatasync that succeeds proves nothing
        about them and is never taken as covering them."""
        self._check_failure()
        self.dirty = False  # before reading the state: a later append sets it again
        state = self.state()
        if state.flushed_offset >= state.end_offset:
            return state.flushed_offset
        view = self._refresh(state)
        bases = view.bases.tolist()
        # Every segment holding offsets not yet flushed: under durability="none" a
        # roll does not flush the segment it closes, so more than one may be due.
        due = [base for slot, base in enumerate(bases)
               if slot + 1 == len(bases) or bases[slot + 1] > state.flushed_offset]
        try:
            for base in due:
                view.segments[base].flush()
            if due[-1] >= state.flushed_offset:  # created since the last flush: its
                # directory entry too (a roll under durability="none" does not sync it)
                try:
                    fsync_directory(self.directory)
                except FileNotFoundError:
                    pass  # the topic was deleted: nothing of it is left to keep
                except OSError as error:
                    raise storage_failed("fsync", self.directory, error) from error
        except StorageFailedError as error:
            self.dirty = True  # still not on disk
            self._fail(error)
            raise
        # Published with this process's next append (no extra lock round trip here).
        self._flushed_here = max(self._flushed_here, state.end_offset)
        return state.end_offset

    #: Called with this partition after an append rolled a segment of a
    #: ``compact`` topic (its Topic sets it to the log's background compactor).
    on_roll: Callable[[Partition], None] = staticmethod(lambda partition: None)

    def compact(self, force: bool = False, should_stop: Callable[[], None] | None = None):
        """Compact this partition if due (or ``force``: waiting for another cleaner
        to finish); returns what it did (see ``_compaction``)."""
        from mqlog.logstore import _compaction

        return _compaction.compact(self, self._clock(), force, should_stop=should_stop)

    # -- retention -------------------------------------------------------------------------

    def enforce_retention(self) -> int:
        """Apply the topic's retention now; return how many segments were deleted."""
        with self._locked() as state:
            before = len(self._refresh(state).bases)
            after = self._enforce_retention_locked(state, self.config(), explicit=True)
            return before - len(self._refresh(after).bases)

    def _enforce_retention_locked(self, state: PartitionState, config: TopicConfig,
                                  explicit: bool = False) -> PartitionState:
        if config.retention_ms is None and config.retention_bytes is None or not (
                explicit or self.apply_retention):
            return state
        view = self._refresh(state)
        bases = view.bases.tolist()
        closed = [
            SegmentFacts(base, view.segments[base].file_size(),
                         self._closed_max_timestamp(view.segments[base], bases[slot + 1]))
            for slot, base in enumerate(bases[:-1])
        ]
        count = segments_to_delete(closed, state.active_position, self._clock(),
                                   config.retention_ms, config.retention_bytes)
        if count == 0:
            return state
        state = self._publish(
            state.replace(log_start_offset=bases[count], epoch=state.epoch + 1), state
        )
        self._refresh(state)  # the new view no longer holds them; readers may still
        for facts in closed[:count]:
            remove_segment_files(self.directory, facts.base_offset)
        return state

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self, state: PartitionState | None) -> PartitionState:
        """Make the files and the published state agree (partition lock held).

        Trusts the state's history when the state file is intact and was written
        in this boot of the machine (page cache intact); still re-verifies the
        active segment from its last index entry up to the published position.
        Otherwise (first open, state damaged, machine rebooted) rebuilds the state
        from the newest segment: every batch from its last index entry known to be
        durable is verified and the index rebuilt, up to the last valid batch on
        disk, whatever a slot says. A cut tail is zeroed so it can never
        resurface. The end offset never goes below the end a valid slot records:
        offsets cut below it are recorded as a gap (see ``_format``), never handed
        out again. Closed segments are checked too (:meth:`_check_closed`). What
        was cut, skipped or rebuilt is logged and journaled (``_journal``).
        """
        config = self.config()
        slots = self._state_file.slots()
        floor = max((slot.end_offset for slot in slots.valid), default=0)
        if slots.damaged:
            self._journal("state", floor, floor, 0, self._state_file.path,
                          f"the state file is damaged ({len(slots.valid)} of 2 slots valid, "
                          f"or out of sequence): the newest segment is re-read")
        bases = list_segment_bases(self.directory)
        if state is not None and bases:
            while len(bases) > 1 and bases[1] <= state.log_start_offset:
                remove_segment_files(self.directory, bases.pop(0))  # retention left it
        if not bases:
            self._create_segment(floor, config)  # handed to the view by _refresh below
            # The segment's files must outlive a power loss once records are
            # acknowledged in them (a roll does the same for later segments).
            fsync_directory(self.directory)
            fresh = PartitionState(
                log_start_offset=floor, end_offset=floor, active_base_offset=floor,
                active_position=0, active_max_timestamp=NO_TIMESTAMP,
                active_created_ms=self._clock(), flushed_offset=floor, offset_index_count=0,
                time_index_count=0, epoch=(state.epoch + 1) if state is not None else 1,
            )
            published = self._publish(fresh, state)
            self._refresh(published)
            return published
        trusted_history = (state is not None and state.boot_id == current_boot_id()
                           and not slots.damaged)
        while trusted_history and len(bases) > 1 and bases[-1] > state.active_base_offset:
            remove_segment_files(self.directory, bases.pop())  # a roll died unpublished
        segment, trusted, scan = self._scan_newest(bases, state, trusted_history, config,
                                                   writable=True)
        newest = segment.base_offset
        self._fresh[newest] = segment
        if trusted and scan.position < state.active_position:
            kept = self._keep_published_damage(segment, scan, state)
            if kept:
                self._check_closed(bases, state, config, thorough=False)
                self._refresh(state)
                return self._enforce_retention_locked(state, config)
        published = (state.active_position if state is not None
                     and state.active_base_offset == newest else 0)
        leftover = segment.has_bytes_at(scan.position)
        cut = not trusted or scan.position != state.active_position
        if cut or leftover:
            segment.zero_from(scan.position)  # a torn write or a bad tail: never data again
        if leftover or published > scan.position:
            self._journal("cut", scan.offset, max(scan.offset, floor),
                          max(published - scan.position, 0), segment.path,
                          "the published end lies past the valid data (the file was "
                          "truncated, lost unflushed writes, or is damaged)"
                          if published > scan.position else "bytes after the last valid "
                          "batch: a torn write, or a batch written but never published")
        end_offset, position = scan.offset, scan.position
        if floor > end_offset and self._write_gap(segment, position, end_offset, floor,
                                                  "recovery cut offsets a valid state slot "
                                                  "records as written"):
            end_offset, position, cut = floor, position + fmt.BATCH_HEADER_SIZE, True
        start_offset = bases[0] if state is None else max(state.log_start_offset, bases[0])
        recovered = PartitionState(
            log_start_offset=min(start_offset, end_offset),
            end_offset=end_offset,
            active_base_offset=newest,
            active_position=position,
            active_max_timestamp=scan.max_timestamp,
            active_created_ms=state.active_created_ms if trusted else self._clock(),
            flushed_offset=min(state.flushed_offset, scan.offset) if trusted else 0,
            offset_index_count=scan.index_count,
            time_index_count=scan.index_count,
            epoch=(state.epoch + (1 if cut else 0)) if state is not None else 1,
        )
        if state is None or cut or recovered != state.replace(sequence=0):
            recovered = self._publish(recovered, state)
        else:
            recovered = state
        self._check_closed(bases, recovered, config, thorough=not trusted_history)
        self._refresh(recovered)
        return self._enforce_retention_locked(recovered, config)

    def _scan_newest(self, bases: list[int], state: PartitionState | None,
                     trusted_history: bool, config: TopicConfig,
                     writable: bool) -> tuple[Segment, bool, _TailScan]:
        """(segment, trusted, scan) for the active segment as recovery finds it: the
        newest of ``bases`` scanned from its last usable index entry (up to the
        published position when the state is ``trusted`` for it, else to the end
        of its file). An empty newest segment is left by a roll that died before
        publishing (or holds nothing anyway): it is dropped from ``bases`` and the
        one before it is the active segment. ``writable``: the segment is
        preallocated first (rebuilt index entries need room), its index entries
        rebuilt, and the files of an empty newest segment removed; otherwise
        nothing is written (a read-only open)."""
        while True:
            segment = Segment(self.directory, bases[-1], read_only=not writable)
            trusted = trusted_history and state.active_base_offset == bases[-1]
            if writable:
                segment.preallocate(
                    config.segment_bytes,
                    index_capacity(config.segment_bytes, config.index_interval_bytes),
                )
            scan = _TailScan(segment, config.index_interval_bytes, rebuild=writable)
            if trusted:
                limit = state.active_position
                scan.run(segment.index.valid_prefix(limit, state.offset_index_count), limit)
            else:
                scan.run(self._entries_known_durable(segment, state), segment.file_size())
            if trusted or scan.position or len(bases) == 1:
                return segment, trusted, scan
            segment.close()
            if writable:
                remove_segment_files(self.directory, bases[-1])
            bases.pop()

    def _keep_published_damage(self, segment: Segment, scan: _TailScan,
                               state: PartitionState) -> bool:
        """True, journaled, when the batch the trusted scan stopped at lies inside
        the published region and intact batches follow it: in this boot every
        published byte was written whole before it was published, so this is
        damage (a bit flip, a write from outside), not a torn append. It is left
        in place, as in a closed segment: reads step over it and report it
        (CorruptRecordError), ``mqlog repair`` moves it out; cutting there would
        drop the intact, acknowledged records after it. False (cut as usual)
        when nothing intact follows, e.g. the file was truncated."""
        damage = resync(segment, scan.position, scan.offset, state.active_position,
                        state.offset_index_count, state.end_offset,
                        "damaged batch inside the published region")
        if damage.next_position is None:
            return False
        self._journal("damage", scan.offset, damage.next_offset,
                      damage.next_position - scan.position, segment.path,
                      "damaged bytes inside the published region, intact batches after "
                      "them: left in place (reads skip them, mqlog repair moves them out)")
        return True

    def _journal(self, action: _journal.Action, first_offset: int, end_offset: int,
                 size: int, file: str, reason: str) -> None:
        _journal.record(_journal.log_root(self.directory), _journal.RecoveryEvent(
            self._clock(), self.topic, self.number, action, first_offset, end_offset, size,
            file, reason))

    def _write_gap(self, segment: Segment, position: int, first: int, end: int,
                   reason: str) -> bool:
        """Record offsets ``first`` .. ``end - 1`` as missing with a gap batch at
        ``position`` of ``segment`` (flushed before it is published); False, changing
        nothing, when the gap is too long to record (see ``fmt.GAP_OFFSETS_MAX``)."""
        if end - first > fmt.GAP_OFFSETS_MAX or end - segment.base_offset >= 2**32:
            _log.warning("%s/%d: cannot record a gap of offsets %d..%d (too long); the end "
                         "stays at %d", self.topic, self.number, first, end - 1, first)
            return False
        gap = fmt.gap_batch(first, end - first, self._clock())
        segment.write(position, (gap,), len(gap))
        segment.flush()
        self._journal("gap", first, end, 0, segment.path, reason)
        return True

    def ensure_end_at_least(self, offset: int, reason: str) -> bool:
        """Lift the end offset to ``offset`` if it is below, recording the offsets in
        between as a gap (flushed and journaled): offsets that someone may have
        seen, or that a consumer group committed, are then never handed out again.
        ``reason`` says why, for the journal. True if the end moved."""
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        with self._locked() as state:
            if state is None or offset <= state.end_offset:
                return False
            segment = self._refresh(state).segments[state.active_base_offset]
            if not self._write_gap(segment, state.active_position, state.end_offset, offset,
                                   reason):
                return False
            self._publish(state.replace(
                end_offset=offset, active_position=state.active_position + fmt.BATCH_HEADER_SIZE,
                epoch=state.epoch + 1), state)
        self._on_append()
        return True

    @staticmethod
    def _entries_known_durable(segment: Segment, state: PartitionState | None) -> int:
        """Index entries of ``segment`` a rebuild may start from without skipping data
        that could be missing: only those below the last published flush point (a
        power loss may drop any unflushed page, not only the last ones)."""
        segment.index.remap()
        segment.time_index.remap()
        valid = segment.index.valid_prefix(segment.file_size())
        if state is None or state.active_base_offset != segment.base_offset:
            return 0
        flushed = state.flushed_offset - segment.base_offset
        offsets = segment.index.entries["relative_offset"][:valid]
        return int(np.searchsorted(offsets, flushed, side="right"))

    def _check_closed(self, bases: list[int], state: PartitionState,
                      config: TopicConfig, thorough: bool) -> None:
        """Check each closed segment the view will hold (partition lock held): a tail
        that a roll left untrimmed is trimmed; a tail cut short (the file was
        truncated) is cut at its last valid batch and the missing offsets recorded
        as a gap; indexes that disagree with the data are rebuilt. The segments,
        loaded, are handed to the next view.

        Whether every index entry points at its batch is checked for the newest
        closed segment (the one a roll that died may have left behind), and for
        all of them when ``thorough`` (the state was from another boot or
        damaged: a power loss may have dropped any unflushed page); the other
        checks cost a page or two per segment, so that opening a partition stays
        independent of the size of its log after a process crash."""
        for slot, base in enumerate(bases[:-1]):
            following = bases[slot + 1]
            if following <= state.log_start_offset or base in self._fresh:
                continue
            segment = Segment(self.directory, base)
            try:
                segment.load_closed()
                self._check_closed_tail(segment, following, config)
                problem = index_disagreement(segment, config.index_interval_bytes,
                                             every_entry=thorough or slot == len(bases) - 2)
                if problem is not None:
                    rebuild_indexes(segment, config.index_interval_bytes, following)
                    self._journal("index", base, base, 0, segment.index.path,
                                  f"rebuilt the segment's indexes from its data: {problem}")
            except BaseException:
                segment.close()
                raise
            self._fresh[base] = segment

    def _check_closed_tail(self, segment: Segment, following: int, config: TopicConfig) -> None:
        """See :meth:`_check_closed`; ``following``: the next segment's base offset.
        Damage inside the data (a whole batch that fails its checks, or bytes
        after a zero length field) is left alone: reads report it
        (CorruptRecordError) and nothing is cut."""
        size = segment.closed_size
        scan = _TailScan(segment, config.index_interval_bytes, rebuild=False)
        scan.run(segment.closed_index_count, size)
        short = scan.offset < following and not segment.compacted
        if scan.position < size:
            tail = _closed_tail(segment.buffer(size), scan.position, scan.offset, size)
            if tail == "damaged" or (tail == "zeros" and not short):
                if tail == "zeros":  # a roll died before trimming the segment
                    segment.trim(scan.position, segment.closed_index_count,
                                 segment.closed_time_count)
                    segment.load_closed()
                return
        elif not short:
            return
        cut_bytes = size - scan.position
        segment.trim(scan.position, 0, 0)  # the entries are rebuilt below
        if cut_bytes:
            self._journal("cut", scan.offset, max(scan.offset, following), cut_bytes,
                          segment.path, "the closed segment's data ends inside a batch or in "
                          "zeros (the file was truncated, or lost unflushed pages)")
        if short:
            self._write_gap(segment, scan.position, scan.offset, following,
                            "the closed segment's data ends before the next segment starts")
        segment.load_closed()
        rebuild_indexes(segment, config.index_interval_bytes, following)

    def describe(self) -> PartitionDescription:
        state = self.state()
        view = self._refresh(state)
        closed_bytes = sum(view.segments[base].file_size() for base in view.bases.tolist()[:-1])
        present = (self._count_records(state, view)
                   if self.config().cleanup_policy == "compact" else None)
        return PartitionDescription(
            self.number, state.log_start_offset, state.end_offset,
            closed_bytes + state.active_position, len(view.bases), present,
        )

    def _count_records(self, state: PartitionState, view: _View) -> int:
        """Records in the batches at or after the log start offset, from their
        headers (gap batches hold none); a segment's count stops at damage."""
        total = 0
        bases = view.bases.tolist()
        for slot, base in enumerate(bases):
            segment = view.segments[base]
            last = slot == len(bases) - 1
            limit = state.active_position if last else segment.file_size()
            position = 0
            while position < limit:
                try:
                    header = segment.header_at(position, limit, verify=False)
                except fmt.BatchError:
                    break
                if not header.attributes & fmt.ATTR_GAP and \
                        header.base_offset >= state.log_start_offset:
                    total += header.record_count
                position += header.batch_length
        return total

    # -- lifecycle ---------------------------------------------------------------------------

    def trim_active(self) -> None:
        """Cut the active segment's preallocation (the last process is closing the log)."""
        if self._failure is not None:
            return  # no writes after a storage failure: recovery cuts it on the next open
        with self._locked() as state:
            if state is None:
                return
            segment = self._refresh(state).segments[state.active_base_offset]
            segment.trim(state.active_position, state.offset_index_count, state.time_index_count)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for segment in [*self._view.segments.values(), *self._fresh.values()]:
                segment.close()
            self._view = _View(self._view.epoch, np.zeros(0, dtype=np.int64), {})
            self._fresh.clear()
            if self._producer_table is not None:
                self._producer_table.close()
            self._state_file.close()


class _View:
    """The segments of a partition as one process sees them at one epoch
    (immutable but for a cache of the closed segments' newest timestamps)."""

    __slots__ = ("epoch", "bases", "segments", "_closed_max")

    def __init__(self, epoch: int, bases: np.ndarray, segments: dict[int, Segment]) -> None:
        self.epoch = epoch
        self.bases = bases
        self.segments = segments
        self._closed_max: np.ndarray | None = None

    def closed_max_timestamps(self, partition: Partition) -> np.ndarray:
        """The newest timestamp of each closed segment (all but the last), in order."""
        if self._closed_max is None:
            bases = self.bases.tolist()
            self._closed_max = np.array(
                [partition._closed_max_timestamp(self.segments[base], bases[slot + 1])
                 for slot, base in enumerate(bases[:-1])], dtype=np.int64)
        return self._closed_max


class _TailScan:
    """Re-verify a segment from an index entry forward, rebuilding index entries.

    After :meth:`run`: ``position``/``offset`` are the end of the valid batches
    that complete an append (a trailing run of ``ATTR_CONTINUES`` batches, an
    append cut short by a crash, is left out),
    ``max_timestamp`` the segment's largest timestamp, ``index_count`` the
    valid index entries (paired offset and time entries).
    """

    def __init__(self, segment: Segment, index_interval_bytes: int, rebuild: bool = True) -> None:
        self.segment = segment
        self.interval = index_interval_bytes
        self.rebuild = rebuild
        self.position = 0
        self.offset = segment.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.index_count = 0

    def run(self, index_count: int, limit: int) -> None:
        segment = self.segment
        index_count = min(index_count, segment.index.capacity, max(segment.time_index.capacity, 0))
        # Walk back from the last claimed entry to one that points at a good batch.
        while index_count > 0:
            relative, position = (int(v) for v in segment.index.entries[index_count - 1])
            timestamp, time_relative, check = (
                int(v) for v in segment.time_index.entries[index_count - 1])
            try:
                header = segment.header_at(position, limit)
                if header.base_offset == segment.base_offset + relative == (
                    segment.base_offset + time_relative
                ) and check == fmt.time_check(timestamp, time_relative):
                    self.position, self.offset = position, header.base_offset
                    self.max_timestamp = timestamp
                    break
            except fmt.BatchError:
                pass
            index_count -= 1
        self.index_count = index_count
        last_indexed = self.position if index_count else 0
        if index_count == 0:
            self.position, self.offset, self.max_timestamp = 0, segment.base_offset, NO_TIMESTAMP
        # An append is complete once a batch without ATTR_CONTINUES ends it; the scan
        # starts at an append's start (index entries point at those only) and ends
        # at the end of the last complete append.
        complete = (self.position, self.offset, self.max_timestamp, self.index_count)
        while self.position < limit:
            try:
                header = segment.header_at(self.position, limit)
            except fmt.BatchError:
                break
            if header.base_offset != self.offset and not (
                header.base_offset > self.offset and header.attributes & fmt.ATTR_COMPACTED
            ):
                break
            if (self.rebuild and complete[0] == self.position
                    and self.position - last_indexed >= self.interval
                    and segment.index.write(self.index_count,
                                            (self.offset - segment.base_offset, self.position))):
                segment.time_index.write(
                    self.index_count,
                    fmt.time_entry(self.max_timestamp, self.offset - segment.base_offset),
                )
                self.index_count += 1
                last_indexed = self.position
            self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
            self.offset = header.next_offset
            self.position += header.batch_length
            if not header.attributes & fmt.ATTR_CONTINUES:
                complete = (self.position, self.offset, self.max_timestamp, self.index_count)
        self.position, self.offset, self.max_timestamp, self.index_count = complete


def _invalidate(segment: Segment, position: int) -> None:
    """Zero the header of a failed append's first batch, beyond the published end,
    so that no recovery scan can take the append for written (best effort: if
    this fails too, the next append overwrites it)."""
    try:
        segment.write(position, (bytes(fmt.BATCH_HEADER_SIZE),), fmt.BATCH_HEADER_SIZE)
    except OSError:
        pass


def _closed_tail(buffer, position: int, offset: int, size: int) -> str:
    """What follows the last valid batch of a closed segment at ``position``:
    ``"zeros"`` up to the end of the file; ``"torn"``, a batch of the expected
    ``offset`` that the end of the file cuts short; else ``"damaged"``."""
    try:
        fmt.decode_header(buffer, position, size)
        return "damaged"  # a whole batch failing its checksum or offset
    except fmt.BatchError as error:
        reason = str(error)
    if reason == "end":
        rest = np.frombuffer(buffer, dtype=np.uint8, count=size - position, offset=position)
        return "damaged" if rest.any() else "zeros"
    if reason == "truncated header":
        return "torn"
    if reason == "truncated batch":
        header = fmt.BATCH_HEADER.unpack_from(buffer, position)
        return "torn" if header[5] == offset else "damaged"
    return "damaged"


def retire_partition(directory: str) -> None:
    """Unlink a partition's state file under its append lock (the topic is being
    deleted): appends in flight finish first, later ones see the unlinked file
    and raise UnknownTopicError."""
    path = os.path.join(directory, STATE_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.unlink(path)
    finally:
        os.close(fd)


def joined(pieces: list[list]) -> list:
    """The lists of ``pieces`` (fresh lists, the first of which is reused) as one."""
    if not pieces:
        return []
    out = pieces[0]
    for piece in pieces[1:]:
        out.extend(piece)
    return out
