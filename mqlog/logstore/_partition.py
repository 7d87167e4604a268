"""One partition: a sequence of segments, its end published in the state file.

:class:`Partition` is the object the rest of storage holds for a partition
directory open in this process. Its jobs live in one module each, as
functions taking the partition (the public ones bound here as its methods):

* ``_views``: the published state as this process reads it, and segment views;
* ``_reads``: reads, columns and time lookup (lock-free);
* this module: the append lock, appends, rolls and the failure latch;
* ``_group_commit``: flushing and group commit;
* ``_recovery`` (with ``_tail_scan``): open-time recovery, gaps;
* ``_retention``: retention and :meth:`Partition.delete_records`.

State owned here: the thread lock and the ``flock`` on the state file (see
:meth:`Partition.locked`), the state file (``state_file``; only holders of the
lock publish), the failure latch, the producer table and the closed flag.

Across processes:

* Appends are serialized by the thread lock plus an exclusive ``flock`` on the
  state file, held for one call (a few batches at most). Under the lock the
  appender reads the published state, writes the batch at the published
  position, adds index entries and publishes the new end. Offsets are thus
  dense and unique and batches never interleave.
* Readers take no lock: they read the published state and only ever look at
  bytes below it, which were complete before it was published.
* Recovery runs under the same lock when a process opens the partition: the
  tail of the newest segment is re-verified from its last index entry and a
  torn or corrupt tail is cut (see ``_recovery.recover``).
* Deleting the topic unlinks each state file under its lock
  (:func:`retire_partition`); an appender that gets the lock afterwards finds
  its state file unlinked and raises UnknownTopicError, so no append can
  succeed into a deleted partition, in any process.
* A partition opened ``read_only`` writes nothing, takes no lock and runs no
  recovery on disk: it works out in memory what recovery would conclude
  (``_recovery.recover_in_memory``) and reads by that until a writer
  publishes a state of its own.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mqlog.errors import (
    LogClosedError,
    ReadOnlyError,
    StorageFailedError,
    UnknownTopicError,
)
from mqlog.logstore import _batch, _group_commit, _reads, _recovery, _retention, _views
from mqlog.logstore import _format as fmt
from mqlog.logstore._counters import EngineCounters
from mqlog.logstore._files import fsync_directory
from mqlog.logstore._group_commit import GroupCommit
from mqlog.logstore._producers import Admission, AppendMetadata, ProducerBatch, ProducerTable
from mqlog.logstore._retention import enforce_retention_locked
from mqlog.logstore._segment import (
    Segment,
    list_segment_bases,
    remove_segment_files,
)
from mqlog.logstore._space import storage_failed
from mqlog.logstore._state import PartitionState, StateFile
from mqlog.logstore._views import NO_TIMESTAMP, empty_view
from mqlog.logstore.config import TopicConfig
from mqlog.logstore.layout import STATE_FILE

if TYPE_CHECKING:
    from mqlog.logstore._compaction import CompactionResult
    from mqlog.logstore._kafka_batch import ProducedBatch

    #: A batch ready to write once it has a base offset.
    Encoded = _batch.EncodedBatch | ProducedBatch

_log = logging.getLogger("mqlog.logstore")


ConfigSource = Callable[[], TopicConfig]
Clock = Callable[[], int]


class Partition:
    """A partition directory open in this process. Thread-safe.

    Storage failures latch: the first StorageFailedError (a failed fdatasync
    or write) is kept in ``_failure``, and every later append, flush, commit
    or other write through this object raises StorageFailedError naming it,
    until the log is closed and opened again (which runs recovery).

    Methods without a leading underscore that are not listed in the engine's
    public API (``locked``, ``publish``, ``refresh_view``, ``roll``,
    ``create_segment``, ``check_failure``, ``fail``) are storage-internal:
    for the partition's job modules, compaction and repair."""

    #: The first storage failure, once there is one (see the class docstring).
    _failure: StorageFailedError | None = None

    def __init__(self, directory: str, topic: str, number: int, config: ConfigSource,
                 clock: Clock, on_append: Callable[[], None] = lambda: None, *,
                 read_only: bool = False, apply_retention: bool = True,
                 counters: EngineCounters | None = None) -> None:
        """Open (and recover) the partition in ``directory``. ``read_only``: write
        nothing at all (every write raises ReadOnlyError); ``apply_retention=False``:
        only an explicit :meth:`enforce_retention` deletes segments; ``counters``:
        the engine's, where appends, reads and flushes are counted (default: a
        fresh one, for a partition opened outside an engine)."""
        self.directory = directory
        self.topic = topic
        self.number = number
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._view_lock = threading.Lock()  # this and the next three: see _views
        self._view = empty_view()
        self._fresh: dict[int, Segment] = {}
        self._memory_state: PartitionState | None = None
        self._memory_sequence = -1
        self._cursor = (-1, -1)  # see _reads
        self._closed = False
        #: The idempotent producers' last batches (opened on first use).
        self._producer_table: ProducerTable | None = None
        #: Called after every append (wakes readers waiting in any process).
        self.on_append = on_append
        #: Where appends, reads and flushes through this partition are counted.
        self.counters = counters if counters is not None else EngineCounters()
        self.group_commit = GroupCommit(self)
        #: Set when this process appended since the last interval flush.
        self.dirty = False
        self.read_only = read_only
        self.apply_retention = apply_retention
        self.state_file = StateFile(os.path.join(directory, STATE_FILE), read_only)
        try:
            if read_only:
                _recovery.recover_in_memory(self, self.state_file.read())
            else:
                with self.locked() as state:
                    _recovery.recover(self, state)
        except BaseException:
            self.close()
            raise

    # -- the jobs of other modules, as methods -------------------------------------------

    state = _views.state
    refresh_view = _views.refresh_view
    _refresh = _views.refresh_view  # the former name, which tests still call
    describe = _views.describe
    check_offset = _reads.check_offset
    read = _reads.read
    read_sized = _reads.read_sized
    read_columns = _reads.read_columns
    read_columns_sized = _reads.read_columns_sized
    read_kafka = _reads.read_kafka
    timestamp_at = _reads.timestamp_at
    offset_for_time = _reads.offset_for_time
    newest_record = _reads.newest_record
    flush = _group_commit.flush
    enforce_retention = _retention.enforce_retention
    delete_records = _retention.delete_records
    ensure_end_at_least = _recovery.ensure_end_at_least
    deleted = _views.deleted
    create_segment = _views.create_segment

    # -- locking and state ---------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[PartitionState | None]:
        """Hold the partition's append lock; yields the published state
        (storage-internal). A StorageFailedError raised inside latches the
        partition failed."""
        if self.read_only:
            raise ReadOnlyError(f"partition {self.topic}/{self.number} is open read-only")
        with self._lock:
            if self._closed:
                raise LogClosedError(f"partition {self.topic}/{self.number} is closed")
            if self._failure is not None:
                self.check_failure()
            fcntl.flock(self.state_file.fd, fcntl.LOCK_EX)
            try:
                yield self.state_file.read()
            except StorageFailedError as error:
                self.fail(error)
                raise
            finally:
                fcntl.flock(self.state_file.fd, fcntl.LOCK_UN)

    def check_failure(self) -> None:
        """Raise StorageFailedError if storage failed under this partition before."""
        failure = self._failure
        if failure is not None:
            raise StorageFailedError(
                f"partition {self.topic}/{self.number} refuses writes since storage "
                f"failed under it: {failure}", original=failure.original)

    def fail(self, error: StorageFailedError) -> None:
        """Latch the first storage failure (see the class docstring)."""
        if self._failure is None:
            self._failure = error
            _log.error("partition %s/%d failed, writes refused until reopened: %s",
                       self.topic, self.number, error)

    def publish(self, state: PartitionState, previous: PartitionState | None) -> PartitionState:
        """Publish ``state`` over ``previous`` (storage-internal; lock held); return
        it as published (with its sequence)."""
        return self._publish(state, previous)

    def _publish(self, state: PartitionState, previous: PartitionState | None) -> PartitionState:
        # What appends and rolls call directly (no extra call on the hot path).
        return self.state_file.publish(state, previous)

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
            now_ms = self.clock()
        return self.append_encoded(_batch.encode(records, now_ms, config.max_record_bytes),
                                   producer, flush, config)

    def append_encoded(self, batches: Sequence[Encoded], producer: ProducerBatch | None,
                       flush: bool | None, config: TopicConfig | None = None) -> int:
        """:meth:`append` of batches already encoded: native ones from
        ``_batch.encode``, or Kafka batches from ``_kafka_batch.parse_produced``."""
        if config is None:
            config = self.config()
        if flush is None:
            flush = config.durability == "always"
        durable = flush and bool(batches)
        commit = self.group_commit
        if durable:
            with commit.condition:
                commit.writers += 1  # a flush about to start waits briefly for us
        try:
            with self.locked() as state:
                if os.fstat(self.state_file.fd).st_nlink == 0:
                    raise UnknownTopicError(
                        f"topic {self.topic!r} was deleted (partition {self.number})")
                assert state is not None  # opening published one; only recovery meets None
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
                with commit.condition:
                    commit.writers -= 1
                    commit.condition.notify_all()
        self.dirty = True
        self.on_append()
        if durable:
            self.make_durable(state.end_offset)
        if state.epoch != epoch and config.cleanup_policy == "compact":
            self.on_roll(self)  # maybe enough to clean: the log's compactor thread looks
        return first_offset

    def make_durable(self, offset: int) -> None:
        """Return once every offset below ``offset`` is on stable storage (group
        commit: concurrent callers share one flush), the producer table first
        when this process wrote to it since its last sync, so that a retry after
        a power loss still finds the append."""
        table = self._producer_table
        if table is not None and table.unsynced:
            try:
                table.sync()
            except StorageFailedError as error:
                self.fail(error)
                raise
        self.group_commit.make_durable(offset)

    def unsynced_producer_table(self) -> ProducerTable | None:
        """The producer table if this process wrote to it since its last sync."""
        table = self._producer_table
        return table if table is not None and table.unsynced else None

    def _already_written(self, producer: ProducerBatch, count: int,
                         state: PartitionState) -> Admission:
        """The producer table's verdict on an idempotent append of ``count``
        records: a duplicate (and where it was written) or new (lock held)."""
        if self._producer_table is None:
            self._producer_table = ProducerTable(self.directory)
        return self._producer_table.lookup(producer, count,
                                           lambda append: _reads.landed(self, append, state))

    def _append_batches(self, state: PartitionState, batches: Sequence[Encoded],
                        config: TopicConfig, producer: ProducerBatch | None,
                        admission: Admission | None) -> PartitionState:
        """Write the batches of one append into the active segment, index its start,
        record it in the producer table and publish its end (lock held)."""
        position = state.active_position
        if position and (
            position + (batches[0].length if len(batches) == 1  # the common case, cheaply
                        else sum(batch.length for batch in batches)) > config.segment_bytes
            or self.clock() - state.active_created_ms >= config.segment_ms
        ):
            state = self.roll(state, config)  # before the append: never inside it
            position = 0
        segment = self.refresh_view(state).segments[state.active_base_offset]
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
                # An admission comes from _already_written, for a producer's append.
                assert self._producer_table is not None and producer is not None
                self._producer_table.record(admission, AppendMetadata(
                    producer.base_sequence, producer.last_sequence(offset - first_offset),
                    first_offset, offset, checksum))
        except BaseException:
            _invalidate(segment, first_position)
            raise
        published = self._publish(
            state.replace(
                end_offset=offset,
                active_position=position,
                active_max_timestamp=max_timestamp,
                offset_index_count=index_count,
                time_index_count=index_count,
                flushed_offset=max(state.flushed_offset,
                                   min(self.group_commit.flushed_here, state.end_offset)),
            ),
            state,
        )
        self.counters.appended(offset - first_offset, position - first_position)
        return published

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

    def roll(self, state: PartitionState, config: TopicConfig) -> PartitionState:
        """Close the active segment and start a new one at the end offset; return the
        state published (storage-internal: appends and repair; lock held)."""
        old = self.refresh_view(state).segments[state.active_base_offset]
        if config.durability != "none":
            started = time.perf_counter()
            old.flush()
            self.counters.flushed(time.perf_counter() - started)
        time_count = state.time_index_count
        if old.time_index.write(time_count, fmt.time_entry(state.active_max_timestamp,
                                                           state.end_offset - old.base_offset)):
            time_count += 1
        for base in list_segment_bases(self.directory):
            if base > state.active_base_offset:  # left by a roll that died unpublished
                remove_segment_files(self.directory, base)
        new = self.create_segment(state.end_offset, config)
        if config.durability != "none":
            try:
                fsync_directory(self.directory)
            except OSError as error:  # latched by locked(), as a failed flush is
                raise storage_failed("fsync", self.directory, error) from error
        previous = state
        state = self._publish(
            state.replace(
                active_base_offset=new.base_offset, active_position=0,
                active_max_timestamp=NO_TIMESTAMP, active_created_ms=self.clock(),
                offset_index_count=0, time_index_count=0, epoch=state.epoch + 1,
            ),
            state,
        )
        # Trimmed only once the roll is published: an appender that still takes the
        # old segment as active (this process died before publishing) never finds
        # its files shorter than its maps.
        old.trim(previous.active_position, previous.offset_index_count, time_count)
        old.max_timestamp = previous.active_max_timestamp
        self.refresh_view(state)
        return enforce_retention_locked(self, state, config)

    #: Called with this partition after an append rolled a segment of a
    #: ``compact`` topic (its Topic sets it to the log's background compactor).
    on_roll: Callable[[Partition], None] = staticmethod(lambda partition: None)

    def compact(self, force: bool = False, should_stop: Callable[[], None] | None = None
                ) -> CompactionResult | None:
        """Compact this partition if due (or ``force``: waiting for another cleaner
        to finish); returns what it did (see ``_compaction``)."""
        from mqlog.logstore import _compaction

        return _compaction.compact(self, self.clock(), force, should_stop=should_stop)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (the log closed, or it dropped the handle
        of a topic found deleted)."""
        return self._closed

    def trim_active(self) -> None:
        """Cut the active segment's preallocation (the last process is closing the
        log). A partition whose topic another process deleted has nothing to cut:
        its state file is unlinked, or its directory renamed away on the way to
        removal (the index files are cut by path)."""
        if self._failure is not None:
            return  # no writes after a storage failure: recovery cuts it on the next open
        with self.locked() as state:
            if state is None or os.fstat(self.state_file.fd).st_nlink == 0:
                return
            segment = self.refresh_view(state).segments[state.active_base_offset]
            try:
                segment.trim(state.active_position, state.offset_index_count,
                             state.time_index_count)
            except FileNotFoundError:  # the topic is being deleted
                return

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for segment in [*self._view.segments.values(), *self._fresh.values()]:
                segment.close()
            self._view = empty_view(self._view.epoch)
            self._fresh.clear()
            if self._producer_table is not None:
                self._producer_table.close()
            self.state_file.close()


def _invalidate(segment: Segment, position: int) -> None:
    """Zero the header of a failed append's first batch, beyond the published end,
    so that no recovery scan can take the append for written (best effort: if
    this fails too, the next append overwrites it)."""
    try:
        segment.write(position, (bytes(fmt.BATCH_HEADER_SIZE),), fmt.BATCH_HEADER_SIZE)
    except OSError:
        pass


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
