"""The storage engine: a log directory of topics, open in this process.

``Engine`` is the one API the layers above storage use (the clients in
``mqlog.consumer``/``mqlog.producer``, the ``Log`` session of ``mqlog.log``,
the CLI and servers): topics (create, alter, delete, internal ones too),
appends with a producer identity and a flush choice, reads as records or
columns, offsets and time lookup, waiting for appends, retention and
compaction. It knows nothing of consumer groups or queues; what those layers
need from it is named here (``set_end_floor``, ``attachment``). It counts what
it does in this process (``counters``: records and bytes appended and read,
flushes), for metrics.

The directory's files are ``_directory``'s (layout, locks, leftovers of dead
processes) and ``_topic_files``' (building, removing topics); the last engine
of a directory to close trims the active segments' preallocated tails.

An Engine opened ``read_only`` writes nothing at all, so it can read a log on
read-only media or one owned by another user: it creates no file, takes
``.lock`` shared only if it can open it for reading (a lock is no write), runs
recovery in memory (see ``Partition``), never applies retention, never starts
the flusher, and every call that would write raises ReadOnlyError.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from typing import TypeVar

from mqlog.errors import (
    ConfigError,
    CorruptRecordError,
    LogClosedError,
    MqlogError,
    ReadOnlyError,
    TopicExistsError,
    UnknownTopicError,
)
from mqlog.logstore import _directory
from mqlog.logstore._arguments import (
    check_new_topic,
    check_partition_count,
    check_read_limits,
    checked_timestamp,
)
from mqlog.logstore._columns import RecordColumns
from mqlog.logstore._compactor import BackgroundCompactor
from mqlog.logstore._counters import EngineCounters
from mqlog.logstore._flusher import IntervalFlusher
from mqlog.logstore._group_commit import make_durable_together
from mqlog.logstore._iteration import check_on_corrupt, iterate
from mqlog.logstore._kafka_batch import parse_produced
from mqlog.logstore._notify import Notifier
from mqlog.logstore._partition import Partition
from mqlog.logstore._producers import ProducerBatch
from mqlog.logstore._record import Record
from mqlog.logstore._segment import list_segment_bases
from mqlog.logstore._topic import write_metadata
from mqlog.logstore._topic_files import TopicDescription, build_topic, doom_topic, remove_doomed
from mqlog.logstore._topic_match import check_existing_topic
from mqlog.logstore._topic_table import EndFloor, TopicTable
from mqlog.logstore.config import TopicConfig
from mqlog.logstore.layout import STATE_FILE, TOPICS_DIR
from mqlog.names import validate_name

T = TypeVar("T")
_Found = TypeVar("_Found", bound=Sized)  # what a read returns: records or columns

__all__ = ["Engine", "EndFloor", "TopicDescription", "check_new_topic", "checked_timestamp"]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Engine:
    """A log directory's storage, open in this process. Thread-safe; open one per
    process (after any ``fork``). Users get one inside :func:`mqlog.open`'s
    ``Log`` (``log.engine``); layers above storage hold it directly."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True, read_only: bool = False,
                 apply_retention: bool = True, clock: Callable[[], int] | None = None,
                 **topic_defaults: object) -> None:
        path = os.fspath(path)
        if not isinstance(path, str):
            raise TypeError(f"path must be a str or os.PathLike of str, not {type(path).__name__}")
        if not path:
            raise ConfigError("path is empty")
        if clock is not None and not callable(clock):
            raise TypeError("clock must be a callable returning ms since the epoch")
        self.path = os.path.abspath(path)
        self.topic_defaults = TopicConfig.from_options(**topic_defaults)
        #: The engine's clock: a callable returning ms since the epoch.
        self.clock: Callable[[], int] = clock or _wall_clock_ms
        #: Nothing is ever written through this engine (see the module docstring).
        self.read_only = bool(read_only)
        #: False: segments are deleted for retention only by enforce_retention().
        self.apply_retention = bool(apply_retention) and not self.read_only
        _directory.prepare(self.path, create=create, read_only=self.read_only)
        self._open_lock_fd = _directory.hold_open_lock(self.path, self.read_only)
        self._lock = threading.RLock()
        self._closed = False
        self._flusher = IntervalFlusher(self._interval_partitions)
        self._compactor = BackgroundCompactor()
        self._notifier = Notifier(self.path, read_only=self.read_only)
        #: What this engine did in this process: records and bytes appended and
        #: read, flushes and their durations (see :class:`EngineCounters`).
        self.counters = EngineCounters()
        self._table = TopicTable(os.path.join(self.path, TOPICS_DIR), self.clock,
                                 self._notifier.notify, self._compactor.request,
                                 self.check_open, self._notifier.topic_changes,
                                 read_only=self.read_only, apply_retention=self.apply_retention,
                                 counters=self.counters)
        self._attachments: dict[object, object] = {}

    # -- topics ----------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1, *, internal: bool = False,
                     exist_ok: bool = False, **topic_config: object) -> TopicDescription:
        """Create a topic; raises TopicExistsError if the name is taken. The topic
        appears complete or not at all: a failure (a full disk, too many open
        files, a crash) leaves nothing behind. ``internal=True`` allows the
        reserved ``__`` names of the layers above (committed offsets, replies).
        With ``exist_ok`` (as ``mkdir -p``), an existing topic with ``partitions``
        partitions and the given config is described instead; one that differs
        raises TopicExistsError naming the differences (see
        :func:`check_existing_topic`)."""
        try:
            return self._create_topic(name, partitions, internal, topic_config)
        except TopicExistsError:
            if not exist_ok:
                raise
        return check_existing_topic(self.describe_topic(name), partitions, topic_config)

    def _create_topic(self, name: str, partitions: int, internal: bool,
                      topic_config: dict[str, object]) -> TopicDescription:
        """Create the topic for :meth:`create_topic` (see ``_topic_files``)."""
        self.check_writable(f"create topic {name!r}")
        validate_name("topic", name, internal=internal)
        check_partition_count(partitions)
        config = TopicConfig.from_options(self.topic_defaults, **topic_config)
        with _directory.metadata_lock(self.path):
            if os.path.exists(os.path.join(self._table.topics_dir, name)):
                raise TopicExistsError(f"topic {name!r} already exists")
            description = build_topic(self._table.topics_dir, name, partitions, config,
                                      self.clock)
            self._notifier.count_topic_change()
            return description

    def topics(self) -> list[str]:
        """Names of the topics, sorted (internal ``__`` topics included)."""
        self.check_open()
        names = []
        try:
            entries = os.listdir(self._table.topics_dir)
        except FileNotFoundError:  # read-only: no topic was ever created
            return []
        for name in entries:
            try:
                validate_name("topic", name, internal=True)
            except MqlogError:
                continue  # staging or deleting directories
            names.append(name)
        return sorted(names)

    def has_topic(self, name: str) -> bool:
        """Whether topic ``name`` exists (internal names allowed); opens nothing."""
        self.check_open()
        validate_name("topic", name, internal=True)
        return os.path.isdir(os.path.join(self._table.topics_dir, name))

    def topic_config(self, name: str) -> TopicConfig:
        """The config of topic ``name`` as this process last read it (re-read when
        another process altered it); UnknownTopicError if there is no such topic."""
        return self._table.topic(name).config()

    def partition_count(self, name: str) -> int:
        """How many partitions topic ``name`` has now (another process's alter_topic
        included: costs one ``stat``); UnknownTopicError if there is no such topic."""
        topic = self._table.topic(name)
        topic.reload_if_changed()
        return topic.partition_count

    def set_end_floor(self, end_floor: EndFloor | None) -> None:
        """Register the layer above's lowest end offset for a partition.

        Each time this process opens a partition of a non-internal topic,
        ``end_floor(topic, partition)`` is asked for the lowest end offset the
        partition may have (None: no floor). If the partition's end is below it,
        the end is lifted to it and the missing offsets recorded as a gap
        (``Partition.ensure_end_at_least``): a recovery that lost records which a
        consumer group had already consumed and committed (a power loss under
        ``durability="interval"``) must not hand their offsets out again, or the
        group would skip the new records. A floor that fails (offsets
        unreadable, disk full) is logged and the partition opens as it is.
        Nothing is lifted in a read-only engine."""
        self._table.end_floor = end_floor

    def attachment(self, key: object, factory: Callable[[], T]) -> T:
        """The object stored under ``key`` for this engine, made by ``factory()`` on
        first use (once, under the engine's lock): how a layer above keeps one
        shared service per open log (e.g. the committed-offsets store) without
        storage knowing it. Attachments are dropped when the engine closes."""
        with self._lock:
            found = self._attachments.get(key)
            if found is None:
                self.check_open()
                found = self._attachments[key] = factory()
            return found  # type: ignore[return-value]

    def partition(self, topic: str, partition: int) -> Partition:
        """The handle of one partition (opened on first use, then cached): what
        clients hold to poll it without a lookup per call. UnknownTopicError /
        UnknownPartitionError if there is no such partition."""
        return self._table.partition(topic, partition)

    def describe_topic(self, name: str) -> TopicDescription:
        """Config and per-partition offsets, sizes and segment counts."""
        topic = self._table.topic(name)
        topic.reload_if_changed()
        partitions = [self._table.partition(name, number).describe()
                      for number in range(topic.partition_count)]
        return TopicDescription(name, topic.config(), partitions)

    def alter_topic(self, name: str, partitions: int | None = None,
                    **topic_config: object) -> TopicConfig:
        """Change a topic's config and/or raise its partition count (never lower:
        keyed records would move). Validated before anything is written;
        unknown options raise TypeError."""
        return self._alter(name, partitions, lambda _current: topic_config)

    def change_topic_config(self, name: str,
                            change: Callable[[TopicConfig], Mapping[str, object]]
                            ) -> TopicConfig:
        """Set the options ``change(current)`` returns, ``current`` being the
        topic's config as read under the log's metadata lock: a read, modify and
        write that no alter by another thread or process can slip into (what
        Kafka's APPEND and SUBTRACT of a list setting need). ``change`` may
        raise: then nothing is written."""
        return self._alter(name, None, change)

    def _alter(self, name: str, partitions: int | None,
               change: Callable[[TopicConfig], Mapping[str, object]]) -> TopicConfig:
        self.check_writable(f"alter topic {name!r}")
        topic = self._table.topic(name)
        with _directory.metadata_lock(self.path):
            topic.reload_if_changed()
            current = topic.config()
            config = TopicConfig.from_options(current, **change(current))
            count = topic.partition_count
            if partitions is not None:
                check_partition_count(partitions)
                if partitions < count:
                    raise ConfigError(
                        f"topic {name!r} has {count} partitions; the count can only grow"
                    )
                for number in range(count, partitions):
                    os.makedirs(os.path.join(topic.directory, str(number)), exist_ok=True)
                count = partitions
            write_metadata(topic.directory, count, config)
            topic.reload_if_changed()
        return config

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its data."""
        self.check_writable(f"delete topic {name!r}")
        validate_name("topic", name, internal=True)
        directory = os.path.join(self._table.topics_dir, name)
        with _directory.metadata_lock(self.path):
            if not os.path.isdir(directory):
                raise UnknownTopicError(f"unknown topic {name!r}")
            doomed = doom_topic(self._table.topics_dir, name)
            self._notifier.count_topic_change()
        self._table.close_topic(name)
        remove_doomed(doomed)

    # -- records -----------------------------------------------------------------------

    def append(self, topic: str, partition: int, records: Sequence[bytes | Record], *,
               producer: ProducerBatch | None = None, flush: bool | None = None,
               now_ms: int | None = None) -> int:
        """Append ``records`` (bytes values or Record objects) to one partition.

        Returns the offset of the first record; the others follow densely.
        All or nothing: readers, crashes and failed writes never leave part of
        the records in the log (see "Appends" in docs/concepts.md).
        Returns once the topic's durability is met (``always``: flushed);
        ``flush=True``/``False`` overrides the topic's choice for this append.
        Raises TypeError / RecordTooLargeError before writing anything.
        ``producer`` makes the append idempotent: a retry with the same
        :class:`ProducerBatch` writes nothing and returns the first try's offset.
        ``now_ms`` stamps records that carry no timestamp (default: the clock).
        """
        return self.append_to(self._io_partition(topic, partition), records, producer=producer,
                              flush=flush, now_ms=now_ms)

    def append_to(self, target: Partition, records: Sequence[bytes | Record], *,
                  producer: ProducerBatch | None = None, flush: bool | None = None,
                  now_ms: int | None = None) -> int:
        """:meth:`append` to a partition handle from :meth:`partition` (no lookup:
        the producers' path). A topic another process deleted raises
        UnknownTopicError, and the next call opens the topic anew; a failed
        background flush of interval durability is raised here, once."""
        self.check_writable(f"append to {target.topic}/{target.number}")
        return self._write(target, lambda: target.append(records, now_ms, producer, flush))

    def append_kafka_batches(self, topic: str, partition: int, data: bytes | memoryview, *,
                             flush: bool | None = None, now_ms: int | None = None) -> int:
        """Append Kafka RecordBatch v2 bytes (what a Kafka client produced for one
        partition) as they are, with the broker's fields set: they are stored
        whole and fetched back whole (docs/format.md, "Kafka batches"); embedded
        readers see their records like any others. A producer id in the batch
        makes the append idempotent, as :meth:`append`'s ``producer`` does.
        Returns the offset of the first record. InvalidRecordBatchError /
        RecordTooLargeError (the topic's ``max_record_bytes`` bounds a batch)
        before anything is written."""
        target = self.partition(topic, partition)
        self.check_writable(f"append to {topic}/{partition}")
        config = target.config()
        batches = parse_produced(data, config.max_record_bytes,
                                 self.now_ms() if now_ms is None else now_ms)
        return self._write(target, lambda: target.append_encoded(
            batches, batches[0].producer, flush, config))

    def make_durable(self, topic: str, partition: int, offset: int) -> None:
        """Return once every record of the partition below ``offset`` is on stable
        storage, as an append with ``flush=True`` does before it returns: for a
        caller that appends with ``flush=False`` and waits for durability later
        (a server appending pipelined requests in order while earlier ones are
        flushed). Concurrent callers share one flush (group commit); the
        producer table of idempotent appends is flushed too. StorageFailedError
        if the flush fails."""
        self.partition(topic, partition).make_durable(offset)

    def make_durable_together(self, wanted: Sequence[tuple[str, int, int]]
                              ) -> dict[tuple[str, int], MqlogError]:
        """:meth:`make_durable` for several ``(topic, partition, offset)`` at once,
        with one ``syncfs`` for all of them where Linux offers it (5.8 and later):
        for a server whose requests wait on several partitions' flushes. Returns
        the error of each ``(topic, partition)`` that could not be made durable
        (StorageFailedError, or UnknownTopicError for a topic deleted since);
        every other one is durable up to its offset when this returns."""
        failures: dict[tuple[str, int], MqlogError] = {}
        targets: dict[Partition, int] = {}
        for topic, number, offset in wanted:
            try:
                target = self.partition(topic, number)
            except MqlogError as error:
                failures[(topic, number)] = error
                continue
            targets[target] = max(offset, targets.get(target, 0))
        for target, failure in make_durable_together(list(targets.items())).items():
            failures[(target.topic, target.number)] = failure
        return failures

    def _write(self, target: Partition, append: Callable[[], int]) -> int:
        """Run ``append`` on ``target``: a failed background flush is raised here
        first (once), a topic deleted meanwhile is forgotten (UnknownTopicError).
        A handle closed while the engine is open is one the engine dropped as
        its topic was deleted (see ``TopicTable``): UnknownTopicError too."""
        if self._flusher.error is not None:
            error, self._flusher.error = self._flusher.error, None
            raise MqlogError(f"a background flush failed: {error}") from error
        try:
            first = append()
        except UnknownTopicError:  # deleted by another process: forget our copy
            self._table.forget(target.topic, target)
            raise
        except LogClosedError:
            self.check_open()
            raise UnknownTopicError(f"topic {target.topic!r} was deleted "
                                    f"(partition {target.number})") from None
        except FileNotFoundError:  # its directory was renamed away mid-append (a roll)
            if not target.deleted():
                raise
            self._table.forget(target.topic, target)
            raise UnknownTopicError(f"topic {target.topic!r} was deleted "
                                    f"(partition {target.number})") from None
        if target.config().durability == "interval":
            self._flusher.start()
        return first

    def append_counter(self) -> int:
        """A number that changes whenever any process appends to this log; pass it
        to :meth:`wait_for_append` after finding nothing new to read."""
        return self._notifier.value()

    def topic_changes(self) -> int:
        """A number that changes whenever any process creates or deletes a topic
        (a creation or deletion also wakes :meth:`wait_for_append`): holders of
        partition handles compare it to know when to check theirs."""
        return self._notifier.topic_changes()

    def wait_for_append(self, seen: int, timeout_s: float) -> None:
        """Sleep until an append (by any thread or process) wakes this thread, or
        ``timeout_s`` passes (at most one wait slice); may return early, so callers
        re-check what they wait for. The counter only says "something changed":
        appends of several processes can race on it, so a wake-up, not the
        value, ends the wait."""
        if self._notifier.value() == seen:
            self._notifier.wait(seen, timeout_s)

    def now_ms(self) -> int:
        """The engine's clock: ms since the epoch (the ``clock`` given to open)."""
        return self.clock()

    def read(self, topic: str, partition: int, offset: int, max_records: int = 500,
             max_bytes: int | None = None) -> list[Record]:
        """Records from ``offset`` on: at most ``max_records``, and stopping before
        ``max_bytes`` (keys + headers + values) is passed but never returning
        nothing when a record is there. Reading at the end offset returns [];
        outside [start_offset, end_offset] raises OffsetOutOfRangeError.

        A batch damaged on disk ends the read before it; a read that starts in
        one raises CorruptRecordError, whose ``next_offset`` is where reading
        can go on (``damaged_start``..``damaged_end`` cannot be read)."""
        check_read_limits(max_records, max_bytes)
        target = self._io_partition(topic, partition)
        return self._read_from(target, target.read, offset, max_records, max_bytes)

    def read_columns(self, topic: str, partition: int, offset: int,
                     max_records: int = 10_000, max_bytes: int | None = None) -> RecordColumns:
        """The records :meth:`read` would return, as columns: numpy arrays of
        offsets, timestamps and payload positions over one bytes object, with no
        Python object per record (see :class:`~mqlog.RecordColumns`). For bulk
        work -- replays, exports, numpy -- several times faster than ``read``."""
        check_read_limits(max_records, max_bytes)
        target = self._io_partition(topic, partition)
        return self._read_from(target, target.read_columns, offset, max_records, max_bytes)

    def read_kafka_batches(self, topic: str, partition: int, offset: int,
                           max_bytes: int) -> list[bytes]:
        """Kafka RecordBatch v2 bytes of the records from ``offset`` on, about
        ``max_bytes`` of them (at least one batch when a record is there): stored
        Kafka batches whole, the one holding ``offset`` included (a Kafka client
        skips the records before the offset it asked for), native batches encoded
        from ``offset``. Errors as :meth:`read`."""
        check_read_limits(1, max_bytes)
        target = self._io_partition(topic, partition)
        return self._read_from(target, target.read_kafka, offset, max_bytes)

    def _io_partition(self, topic: str, partition: int) -> Partition:
        """:meth:`partition` for a read or an append by name: UnknownTopicError
        ("was deleted") once after this process dropped the topic's handle as
        deleted, so that a reader by name learns of a deletion even when a
        topic was created again under the name before its next call."""
        try:
            target = self.partition(topic, partition)
        except UnknownTopicError:
            self._table.deletions.discard(topic)  # told now
            raise
        if self._table.deletions and self._table.take_deletion(topic):
            raise UnknownTopicError(f"topic {topic!r} was deleted")
        return target

    def _read_from(self, target: Partition, read: Callable[..., _Found],
                   *args: object) -> _Found:
        """What ``read(*args)`` returns from ``target``; UnknownTopicError instead
        when another process deleted the topic and there is nothing more to read
        (records the handle still had are returned first), after which the next
        call opens the topic anew: a topic created again under that name, from
        offset 0."""
        try:
            found = read(*args)
            if len(found) or not target.deleted():
                return found
        except UnknownTopicError:
            pass
        self._table.forget(target.topic, target)
        raise UnknownTopicError(f"topic {target.topic!r} was deleted")

    def iter(self, topic: str, partition: int, start: int = 0, end: int | None = None,
             on_corrupt: str | Callable[[CorruptRecordError], None] = "raise",
             ) -> Iterator[Record]:
        """Iterate records from ``start`` up to ``end`` (exclusive); with ``end=None``,
        up to the end offset as it is when the iterator reaches it.

        At damaged records (see CorruptRecordError): ``on_corrupt="raise"``
        raises once the records before them were yielded; ``"skip"`` logs a
        warning and goes on from the next readable offset; a callable is
        called with the error, then the damage is skipped."""
        check_on_corrupt(on_corrupt)
        target = self._io_partition(topic, partition)
        target.check_offset(start, target.state())
        return iterate(target, start, end, on_corrupt)

    def offset_for_time(self, topic: str, partition: int, ts_ms: int) -> int:
        """The first offset whose timestamp is >= ``ts_ms`` (the end offset if none);
        TypeError unless ``ts_ms`` is an integer."""
        return self.partition(topic, partition).offset_for_time(checked_timestamp(ts_ms))

    def newest_record(self, topic: str, partition: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record holding the partition's largest
        timestamp, as Kafka's ListOffsets MAX_TIMESTAMP answers; None when the
        partition holds no record."""
        return self.partition(topic, partition).newest_record()

    def start_offset(self, topic: str, partition: int) -> int:
        """The first offset still in the log (retention moves it forward)."""
        return self.partition(topic, partition).state().log_start_offset

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next appended record will get."""
        return self.partition(topic, partition).state().end_offset

    def delete_records(self, topic: str, partition: int, before_offset: int) -> int:
        """Move the partition's log start offset up to ``before_offset`` (as
        kafka-delete-records and Redis ``XTRIM MINID`` do) and return the start
        offset now: whole segments below it are deleted, the records of the rest
        below it are no longer read, found or counted. Durable before it returns.
        At or below the start it changes nothing; beyond the end offset it raises
        OffsetOutOfRangeError; on a read-only engine, ReadOnlyError."""
        self.check_writable("delete records")
        return self.partition(topic, partition).delete_records(before_offset)

    def enforce_retention(self, topic: str | None = None) -> int:
        """Apply retention now to one topic or all; return segments deleted."""
        self.check_writable("apply retention")
        names = [topic] if topic is not None else self.topics()
        deleted = 0
        for name in names:
            handle = self._table.topic(name)
            for number in range(handle.partition_count):
                directory = os.path.join(handle.directory, str(number))
                before = len(list_segment_bases(directory)) if os.path.isdir(directory) else 0
                # opening it may apply it too
                self._table.partition(name, number).enforce_retention()
                deleted += before - len(list_segment_bases(directory))
        return deleted

    def compact(self, topic: str | None = None) -> int:
        """Compact now the ``compact`` topics (one, or all), on this thread (waiting
        for a cleaner already at work on a partition); return segments rewritten.
        Compaction otherwise runs by itself, on a background thread, after rolls."""
        self.check_writable("compact")
        names = [topic] if topic is not None else self.topics()
        rewritten = 0
        for name in names:
            handle = self._table.topic(name)
            if handle.config().cleanup_policy != "compact":
                continue
            for number in range(handle.partition_count):
                result = self._table.partition(name, number).compact(force=True)
                rewritten += result.segments_rewritten if result is not None else 0
        return rewritten

    def flush(self) -> None:
        """fdatasync everything this process appended."""
        self.check_writable("flush")
        for topic in self._table.open_topics():
            for partition in topic.open_partitions():
                partition.flush()

    # -- lifecycle -------------------------------------------------------------------------

    def _interval_partitions(self) -> Iterator[tuple[Partition, int]]:
        for topic in self._table.open_topics():
            config = topic.config()
            if config.durability == "interval":
                for partition in topic.open_partitions():
                    yield partition, config.flush_ms

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def check_open(self) -> None:
        """LogClosedError if the engine is closed."""
        if self._closed:
            raise LogClosedError(f"log {self.path} is closed")

    def check_writable(self, action: str) -> None:
        """Refuse ``action`` (a write) before anything is touched on a read-only engine."""
        self.check_open()
        if self.read_only:
            raise ReadOnlyError(f"cannot {action}: log {self.path} is open read-only")

    def close(self) -> None:
        """Stop the background flusher and compactor, flush what interval
        durability still owes, release files; idempotent. The last engine of a
        directory to close trims the active segments' preallocation. Close the
        clients using it first (``Log.close`` does)."""
        if self._closed:
            return
        self._compactor.stop()
        self._flusher.stop()
        last = not self.read_only and _directory.is_last_open(self._open_lock_fd)
        if last:  # no other engine is open: trim every partition's preallocation
            self._open_every_partition()
        with self._lock:
            self._closed = True
            topics = self._table.take_all()
            self._attachments.clear()
        for topic in topics:
            if last:
                for partition in topic.open_partitions():
                    partition.trim_active()
            topic.close()
        self._notifier.close()
        if self._open_lock_fd >= 0:
            os.close(self._open_lock_fd)

    def _open_every_partition(self) -> None:
        """Open the partitions other engines wrote and closed, so close can trim them."""
        for name in self.topics():
            try:
                topic = self._table.topic(name)
            except MqlogError:
                continue  # deleted meanwhile
            for number in range(topic.partition_count):
                if os.path.exists(os.path.join(topic.directory, str(number), STATE_FILE)):
                    try:
                        self._table.partition(name, number)
                    except MqlogError:
                        break  # deleted meanwhile

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        read_only = " read-only" if self.read_only else ""
        return f"<mqlog.Engine {self.path!r}{read_only}{' closed' if self._closed else ''}>"
