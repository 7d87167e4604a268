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
    ProducerSequenceError,
    UnknownTopicError,
)
from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._columns import RecordColumns, decode_columns
from mqlog.logstore._files import fsync_directory
from mqlog.logstore._producers import ProducerTable
from mqlog.logstore._record import Message, Record
from mqlog.logstore._retention import SegmentFacts, segments_to_delete
from mqlog.logstore._segment import (
    Segment,
    index_capacity,
    list_segment_bases,
    remove_segment_files,
)
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
    """Where a partition stands: offsets, bytes on disk and segment count."""

    partition: int
    start_offset: int
    end_offset: int
    size_bytes: int
    segment_count: int

    @property
    def record_count(self) -> int:
        return self.end_offset - self.start_offset
Clock = Callable[[], int]


class Partition:
    """A partition directory open in this process. Thread-safe."""

    def __init__(self, directory: str, topic: str, number: int, config: ConfigSource,
                 clock: Clock, on_append: Callable[[], None] = lambda: None) -> None:
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
        self._state_file = StateFile(os.path.join(directory, STATE_FILE))
        with self._locked() as state:
            self._recover(state)

    # -- locking and state ---------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[PartitionState | None]:
        """Hold the partition's append lock; yields the published state."""
        with self._lock:
            if self._closed:
                raise LogClosedError(f"partition {self.topic}/{self.number} is closed")
            fcntl.flock(self._state_file.fd, fcntl.LOCK_EX)
            try:
                yield self._state_file.read()
            finally:
                fcntl.flock(self._state_file.fd, fcntl.LOCK_UN)

    def state(self) -> PartitionState:
        """The latest published state (lock-free)."""
        if self._closed:
            raise LogClosedError(f"partition {self.topic}/{self.number} is closed")
        state = self._state_file.read()
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
        bases = [b for b in list_segment_bases(self.directory) if b <= state.active_base_offset]
        while len(bases) > 1 and bases[1] <= state.log_start_offset:
            bases.pop(0)  # wholly below the log start: retention is deleting it
        segments: dict[int, Segment] = {}
        for base in bases:
            segment = self._fresh.pop(base, None) or current.segments.get(base)
            if segment is not None and base != state.active_base_offset and segment.replaced():
                segment = None  # compacted: open the cleaned copy
            if segment is None:
                try:
                    segment = Segment(self.directory, base)
                except FileNotFoundError:  # deleted by retention meanwhile
                    continue
            if base != state.active_base_offset and segment.closed_index_count < 0:
                segment.load_closed()
            segments[base] = segment
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
        records taken, bytes) for records ``first`` .. ``stop - 1`` of a batch."""
        pieces: list = []
        count = 0
        used_total = 0
        while offset < state.end_offset and count < max_records:
            segment, limit, index_count, segment_end = self._segment_for(offset, state, view)
            try:
                cursor_base, cursor_position = self._cursor
                position, header = segment.locate(
                    offset, limit, index_count,
                    cursor_position if cursor_base == segment.base_offset else -1)
                while header is not None:
                    if header.base_offset > offset:
                        if not header.attributes & fmt.ATTR_COMPACTED:
                            raise fmt.BatchError(
                                f"offsets {offset}..{header.base_offset - 1} are missing"
                            )
                        offset = header.base_offset  # removed by compaction
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
                    header = segment.header_at(position, limit)
                    if header.base_offset < offset:
                        raise fmt.BatchError(
                            f"expected offset {offset} or above, found {header.base_offset}"
                        )
                if offset < segment_end and not segment.compacted:
                    raise fmt.BatchError(
                        f"the segment's data ends before offset {segment_end}"
                    )
                offset = segment_end  # past a compacted segment's trailing gap
            except fmt.BatchError as error:
                raise CorruptRecordError(
                    f"corrupt batch in {segment.path} at offset {offset}: {error}",
                    topic=self.topic, partition=self.number, offset=offset, file=segment.path,
                ) from None
        return pieces, count, used_total

    def timestamp_at(self, offset: int) -> int | None:
        """The timestamp of the record at ``offset`` (or the next one there is),
        without decoding its value; None at the end offset."""
        state, view = self._snapshot()
        self.check_offset(offset, state)
        if offset == state.end_offset:
            return None
        segment, limit, index_count, _end = self._segment_for(offset, state, view)
        try:
            position, header = segment.locate(offset, limit, index_count)
        except fmt.BatchError:
            return None  # damaged: the age is unknown, reads will report it
        if header is None:
            return None
        row = max(offset - header.base_offset, 0)
        table = segment.buffer(limit)
        return _TIMESTAMP.unpack_from(
            table, position + fmt.BATCH_HEADER_SIZE + row * fmt.RECORD_DTYPE.itemsize)[0]

    def offset_for_time(self, timestamp: int) -> int:
        """First offset whose record timestamp is >= ``timestamp``; the end offset if none."""
        state, view = self._snapshot()
        bases = view.bases.tolist()
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
        try:
            position, header = segment.locate(offset, limit, index_count)
            while header is not None:
                if header.max_timestamp >= timestamp:
                    table = fmt.record_table(segment.buffer(limit), position, header.record_count)
                    hits = np.flatnonzero(table["timestamp"] >= timestamp)
                    return header.base_offset + int(hits[0])
                position += header.batch_length
                if header.next_offset >= end or position >= limit:
                    return None
                header = segment.header_at(position, limit)
            return None
        except fmt.BatchError as error:
            raise CorruptRecordError(
                f"corrupt batch in {segment.path} near offset {offset}: {error}",
                topic=self.topic, partition=self.number, offset=offset, file=segment.path,
            ) from None

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
               producer: tuple[int, int] | None = None, flush: bool | None = None) -> int:
        """Append ``records`` as one or more batches; return the first offset.

        Records without a timestamp get ``now_ms`` (default: the clock now).
        ``producer`` = (producer id, sequence) makes the append idempotent: the
        same pair again returns the first append's offset and writes nothing
        (see ``_producers``); a sequence that skips ahead or goes back further
        raises ProducerSequenceError. ``flush`` overrides whether this append
        returns only once flushed (default: the topic's durability is
        ``always``)."""
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
                written = None if producer is None else self._already_written(producer, state)
                first_offset = state.end_offset if written is None else written
                epoch = state.epoch
                for batch in batches if written is None else ():
                    state = self._append_batch(state, batch, config, producer, first_offset)
        finally:
            if durable:  # written (or failed): a waiting flush may start now
                with self._commit:
                    self._writers -= 1
                    self._commit.notify_all()
        self.dirty = True
        self._on_append()
        if durable:
            self._make_durable(state.end_offset)
        if state.epoch != epoch and config.cleanup_policy == "compact":
            try:  # a segment was rolled: maybe enough to clean
                self.compact()
            except Exception:  # the append itself succeeded; the next roll retries
                _log.exception("compaction of %s/%d failed", self.topic, self.number)
        return first_offset

    def _already_written(self, producer: tuple[int, int], state: PartitionState) -> int | None:
        """The first offset of this producer's batch if it is written already."""
        producer_id, sequence = producer
        if self._producer_table is None:
            self._producer_table = ProducerTable(self.directory)
        last = self._producer_table.get(producer_id)
        if last is None or last.end_offset > state.end_offset:
            expected = 0 if last is None else last.sequence
            if sequence != expected:
                raise ProducerSequenceError(
                    f"producer {producer_id:x} sent sequence {sequence} to "
                    f"{self.topic}/{self.number}; expected {expected}")
            return None
        if sequence == last.sequence:
            return last.first_offset  # a retry of a batch that was written
        if sequence != last.sequence + 1:
            raise ProducerSequenceError(
                f"producer {producer_id:x} sent sequence {sequence} to "
                f"{self.topic}/{self.number} after {last.sequence}")
        return None

    def _append_batch(self, state: PartitionState, batch: _batch.EncodedBatch,
                      config: TopicConfig, producer: tuple[int, int] | None = None,
                      first_offset: int = 0) -> PartitionState:
        position = state.active_position
        if position and (
            position + batch.length > config.segment_bytes
            or self._clock() - state.active_created_ms >= config.segment_ms
        ):
            state = self._roll(state, config)
            position = 0
        segment = self._refresh(state).segments[state.active_base_offset]
        relative = state.end_offset - segment.base_offset
        segment.write(position, batch.frame(state.end_offset), batch.length)
        index_count = state.offset_index_count
        if index_count > segment.index.capacity:  # another process grew the index files
            segment.index.remap()
            segment.time_index.remap()
        last_indexed = (
            int(segment.index.columns["position"][index_count - 1]) if index_count else 0
        )
        if position - last_indexed >= config.index_interval_bytes and segment.index.write(
            index_count, (relative, position)
        ):
            segment.time_index.write(index_count,
                                     fmt.time_entry(state.active_max_timestamp, relative))
            index_count += 1
        if producer is not None:  # before the publish: see _producers
            self._producer_table.put(producer[0], producer[1], first_offset,
                                     state.end_offset + batch.count)
        return self._publish(
            state.replace(
                end_offset=state.end_offset + batch.count,
                active_position=position + batch.length,
                active_max_timestamp=max(state.active_max_timestamp, batch.max_timestamp),
                offset_index_count=index_count,
                time_index_count=index_count,
                flushed_offset=max(state.flushed_offset,
                                   min(self._flushed_here, state.end_offset)),
            ),
            state,
        )

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
            fsync_directory(self.directory)
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
        segment = Segment(self.directory, base_offset, create=True)
        segment.preallocate(
            config.segment_bytes, index_capacity(config.segment_bytes, config.index_interval_bytes)
        )
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
        """fdatasync what has been published; return the offset it covers."""
        self.dirty = False  # before reading the state: a later append sets it again
        state = self.state()
        if state.flushed_offset >= state.end_offset:
            return state.flushed_offset
        self._refresh(state).segments[state.active_base_offset].flush()
        # Published with this process's next append (no extra lock round trip here).
        self._flushed_here = max(self._flushed_here, state.end_offset)
        return state.end_offset

    def compact(self, force: bool = False):
        """Compact this partition if due (see ``_compaction``); returns what it did."""
        from mqlog.logstore._compaction import compact

        return compact(self, self._clock(), force)

    # -- retention -------------------------------------------------------------------------

    def enforce_retention(self) -> int:
        """Apply the topic's retention now; return how many segments were deleted."""
        with self._locked() as state:
            before = len(self._refresh(state).bases)
            after = self._enforce_retention_locked(state, self.config())
            return before - len(self._refresh(after).bases)

    def _enforce_retention_locked(self, state: PartitionState, config: TopicConfig
                                  ) -> PartitionState:
        if config.retention_ms is None and config.retention_bytes is None:
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

        Trusts the state's history when it was written in this boot of the
        machine (page cache intact); still re-verifies the active segment from
        its last index entry up to the published position. Otherwise (first
        open, state damaged, machine rebooted) rebuilds the state from the
        newest segment: every batch from its last valid index entry is verified
        and the index rebuilt. A cut tail is zeroed so it can never resurface.
        """
        config = self.config()
        bases = list_segment_bases(self.directory)
        if state is not None and bases:
            while len(bases) > 1 and bases[1] <= state.log_start_offset:
                remove_segment_files(self.directory, bases.pop(0))  # retention left it
        if not bases:
            start = state.end_offset if state is not None else 0
            self._create_segment(start, config)  # handed to the view by _refresh below
            fresh = PartitionState(
                log_start_offset=start, end_offset=start, active_base_offset=start,
                active_position=0, active_max_timestamp=NO_TIMESTAMP,
                active_created_ms=self._clock(), flushed_offset=start, offset_index_count=0,
                time_index_count=0, epoch=(state.epoch + 1) if state is not None else 1,
            )
            published = self._publish(fresh, state)
            self._refresh(published)
            return published
        trusted_history = state is not None and state.boot_id == current_boot_id()
        while trusted_history and len(bases) > 1 and bases[-1] > state.active_base_offset:
            remove_segment_files(self.directory, bases.pop())  # a roll died unpublished
        while True:
            newest = bases[-1]
            segment = Segment(self.directory, newest)
            trusted = trusted_history and state.active_base_offset == newest
            segment.preallocate(  # first: rebuilt index entries need room
                config.segment_bytes,
                index_capacity(config.segment_bytes, config.index_interval_bytes),
            )
            scan = _TailScan(segment, config.index_interval_bytes)
            if trusted:
                limit = state.active_position
                scan.run(segment.index.valid_prefix(limit, state.offset_index_count), limit)
            else:
                scan.run(self._entries_known_durable(segment, state), segment.file_size())
            if trusted or scan.position or len(bases) == 1:
                break
            # An empty newest segment is left by a roll that died before publishing
            # (or holds nothing anyway): the one before it is the active segment.
            segment.close()
            remove_segment_files(self.directory, bases.pop())
        self._fresh[newest] = segment
        cut = not trusted or scan.position != state.active_position
        if cut or segment.has_bytes_at(scan.position):
            segment.zero_from(scan.position)  # a torn write or a bad tail: never data again
        start_offset = bases[0] if state is None else max(state.log_start_offset, bases[0])
        recovered = PartitionState(
            log_start_offset=start_offset,
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
        if state is None or cut or recovered != state.replace(sequence=0):
            recovered = self._publish(recovered, state)
        else:
            recovered = state
        self._trim_previous_if_needed(bases, recovered)
        self._refresh(recovered)
        return self._enforce_retention_locked(recovered, config)

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

    def _trim_previous_if_needed(self, bases: list[int], state: PartitionState) -> None:
        """A process that died while rolling may leave the previous segment untrimmed."""
        if len(bases) < 2:
            return
        previous = Segment(self.directory, bases[-2])
        try:
            previous.load_closed()
            scan = _TailScan(previous, self.config().index_interval_bytes, rebuild=False)
            scan.run(previous.closed_index_count, previous.file_size())
            if scan.position < previous.file_size() and scan.offset == bases[-1]:
                previous.trim(scan.position, previous.closed_index_count,
                              previous.closed_time_count)
        finally:
            previous.close()

    def describe(self) -> PartitionDescription:
        state = self.state()
        view = self._refresh(state)
        closed_bytes = sum(view.segments[base].file_size() for base in view.bases.tolist()[:-1])
        return PartitionDescription(
            self.number, state.log_start_offset, state.end_offset,
            closed_bytes + state.active_position, len(view.bases),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def trim_active(self) -> None:
        """Cut the active segment's preallocation (the last process is closing the log)."""
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

    After :meth:`run`: ``position``/``offset`` are the end of the valid batches,
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
        while self.position < limit:
            try:
                header = segment.header_at(self.position, limit)
            except fmt.BatchError:
                break
            if header.base_offset != self.offset and not (
                header.base_offset > self.offset and header.attributes & fmt.ATTR_COMPACTED
            ):
                break
            if (self.rebuild and self.position - last_indexed >= self.interval
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
