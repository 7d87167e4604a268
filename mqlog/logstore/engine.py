"""The storage engine: a log directory of topics, open in this process.

``Engine`` is the one API the layers above storage use (the clients in
``mqlog.consumer``/``mqlog.producer``, the ``Log`` session of ``mqlog.log``,
the CLI and servers): topics (create, alter, delete, internal ones too),
appends with a producer identity and a flush choice, reads as records or
columns, offsets and time lookup, waiting for appends, retention and
compaction. It knows nothing of consumer groups or queues; what those layers
need from it is named here (``set_end_floor``, ``attachment``).

Directory layout (the names are ``layout``'s)::

    <path>/mqlog.json              layout version
    <path>/.lock                   every open Engine holds a shared flock on it
    <path>/.meta.lock              exclusive flock around topic create/alter/delete
    <path>/topics/<name>/          one topic (see _topic), partitions inside
    <path>/topics/~creating-<hex>/ a topic being built by create_topic (metadata lock held)

Any number of processes may open the same directory. The last one to close
(it can take ``.lock`` exclusively) trims the preallocated tails of the active
segments so that a log at rest holds no slack.

Opening an Engine removes what dead processes left: the temporary files of
``_files.atomic_write`` everywhere but under ``topics/`` (topics and partitions
do the same when opened), and ``~creating-`` directories of a create_topic
that died (removed under the metadata lock, which their creator held while
alive).

An Engine opened ``read_only`` writes nothing at all, so it can read a log on
read-only media or one owned by another user: it creates no file, takes
``.lock`` shared only if it can open it for reading (a lock is no write), runs
recovery in memory (see ``Partition``), never applies retention, never starts
the flusher, and every call that would write raises ReadOnlyError.
"""

from __future__ import annotations

import builtins
import dataclasses
import fcntl
import gc
import json
import logging
import operator
import os
import shutil
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from mqlog.errors import (
    ConfigError,
    CorruptMetadataError,
    CorruptRecordError,
    LogClosedError,
    MqlogError,
    ReadOnlyError,
    TopicExistsError,
    UnknownTopicError,
)
from mqlog.logstore._columns import RecordColumns
from mqlog.logstore._compactor import BackgroundCompactor
from mqlog.logstore._files import atomic_write, fsync_directory, remove_stale_temporaries
from mqlog.logstore._flusher import IntervalFlusher
from mqlog.logstore._notify import Notifier
from mqlog.logstore._partition import Partition, retire_partition
from mqlog.logstore._producers import ProducerBatch
from mqlog.logstore._record import Record
from mqlog.logstore._segment import list_segment_bases
from mqlog.logstore._topic import Topic, write_metadata
from mqlog.logstore._topic_match import check_existing_topic
from mqlog.logstore._views import PartitionDescription
from mqlog.logstore.config import TopicConfig
from mqlog.logstore.layout import (
    CREATING_PREFIX,
    DELETING_PREFIX,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    META_LOCK_FILE,
    OPEN_LOCK_FILE,
    STATE_FILE,
    TOPICS_DIR,
)
from mqlog.names import validate_name

T = TypeVar("T")
#: The lowest end offset a partition must have when opened, if any (see
#: ``Engine.set_end_floor``).
EndFloor = Callable[[str, int], "int | None"]

_log = logging.getLogger("mqlog")

#: Records fetched per step by Engine.iter.
ITER_CHUNK_RECORDS = 4096
#: Most partitions a topic may have (each is a directory with a few open files).
PARTITIONS_MAX = 10_000


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True)
class TopicDescription:
    """A topic's name, config and per-partition offsets, sizes and segment counts
    (from ``describe_topic``; a snapshot, not kept up to date)."""

    name: str
    config: TopicConfig
    partitions: list[PartitionDescription]

    @property
    def record_count(self) -> int:
        return sum(p.record_count for p in self.partitions)

    @property
    def size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.partitions)


class Engine:
    """A log directory's storage, open in this process. Thread-safe; open one per
    process (after any ``fork``). Users get one inside :func:`mqlog.open`'s
    ``Log`` (``log.engine``); layers above storage hold it directly."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True, read_only: bool = False,
                 apply_retention: bool = True, clock: Callable[[], int] | None = None,
                 **topic_defaults) -> None:
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
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ConfigError(f"{self.path} is a file, not a log directory")
        if not os.path.isdir(self.path):
            if not create or self.read_only:
                raise MqlogError(f"log directory {self.path} does not exist")
            os.makedirs(self.path, exist_ok=True)
        self._check_layout()
        if self.read_only:
            self._open_lock_fd = _shared_lock_for_reading(os.path.join(self.path, OPEN_LOCK_FILE))
        else:
            os.makedirs(os.path.join(self.path, TOPICS_DIR), exist_ok=True)
            self._remove_leftovers()
            self._open_lock_fd = os.open(os.path.join(self.path, OPEN_LOCK_FILE),
                                         os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._open_lock_fd, fcntl.LOCK_SH)
        self._lock = threading.RLock()
        self._topics: dict[str, Topic] = {}
        self._closed = False
        self._flusher = IntervalFlusher(self._interval_partitions)
        self._compactor = BackgroundCompactor()
        self._notifier = Notifier(self.path, read_only=self.read_only)
        self._end_floor: EndFloor | None = None
        self._attachments: dict[object, object] = {}

    def _check_layout(self) -> None:
        path = os.path.join(self.path, LAYOUT_FILE)
        try:
            with builtins.open(path, "rb") as handle:
                version = json.loads(handle.read()).get("layout_version")
        except (ValueError, AttributeError) as error:
            raise CorruptMetadataError(f"{path} is damaged ({type(error).__name__}: {error})",
                                       file=path) from None
        except FileNotFoundError:
            if self.read_only:
                raise MqlogError(f"{self.path} is not a log directory (it has no "
                                 f"{LAYOUT_FILE}); a read-only open creates nothing") from None
            atomic_write(path, (json.dumps({"layout_version": LAYOUT_VERSION}) + "\n").encode())
            return
        if version != LAYOUT_VERSION:
            raise MqlogError(
                f"{self.path} has layout version {version}; this mqlog reads {LAYOUT_VERSION}"
            )

    def _remove_leftovers(self) -> None:
        """Remove what dead processes left (see the module docstring)."""
        for directory, subdirectories, names in os.walk(self.path):
            if directory == self.path and TOPICS_DIR in subdirectories:
                subdirectories.remove(TOPICS_DIR)
            remove_stale_temporaries(directory, names)
        if any(name.startswith(CREATING_PREFIX) for name in os.listdir(self._topics_dir())):
            with self._metadata_lock():  # held by every live creator: these are dead
                for name in os.listdir(self._topics_dir()):
                    if name.startswith(CREATING_PREFIX):
                        shutil.rmtree(os.path.join(self._topics_dir(), name),
                                      ignore_errors=True)

    # -- topics ----------------------------------------------------------------------

    def _topics_dir(self) -> str:
        return os.path.join(self.path, TOPICS_DIR)

    @contextmanager
    def _metadata_lock(self) -> Iterator[None]:
        fd = os.open(os.path.join(self.path, META_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

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
        """Create the topic for :meth:`create_topic`.

        The topic is built in a ``~creating-`` directory -- metadata, then each
        partition opened, initialized and closed in turn, so that a wide topic
        never holds more than one partition's files open -- and renamed into
        place, all under the metadata lock; durable once this returns."""
        self.check_writable(f"create topic {name!r}")
        validate_name("topic", name, internal=internal)
        _check_partition_count(partitions)
        config = TopicConfig.from_options(self.topic_defaults, **topic_config)
        final = os.path.join(self._topics_dir(), name)
        with self._metadata_lock():
            if os.path.exists(final):
                raise TopicExistsError(f"topic {name!r} already exists")
            staging = os.path.join(self._topics_dir(), f"{CREATING_PREFIX}{uuid.uuid4().hex}")
            renamed = False
            try:
                os.makedirs(staging)
                write_metadata(staging, partitions, config)
                described = [self._initialize_partition(staging, name, number, config)
                             for number in range(partitions)]
                fsync_directory(staging)
                os.rename(staging, final)
                renamed = True
                fsync_directory(self._topics_dir())
            except BaseException as error:
                if renamed:
                    os.rename(final, staging)
                # Files a half-opened partition holds stay open while its frame is
                # referenced by the traceback: release them (out of descriptors,
                # rmtree needs some). What rmtree cannot remove, the next open does.
                traceback.clear_frames(error.__traceback__)
                gc.collect()
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return TopicDescription(name, config, described)

    def _initialize_partition(self, directory: str, topic: str, number: int,
                              config: TopicConfig) -> PartitionDescription:
        """Create partition ``number`` of a topic being built in ``directory``, with
        its state and first segment (trimmed: it is preallocated when opened)."""
        path = os.path.join(directory, str(number))
        os.makedirs(path)
        partition = Partition(path, topic, number, lambda: config, self.clock)
        try:
            partition.trim_active()
            return partition.describe()
        finally:
            partition.close()

    def topics(self) -> list[str]:
        """Names of the topics, sorted (internal ``__`` topics included)."""
        self.check_open()
        names = []
        try:
            entries = os.listdir(self._topics_dir())
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
        return os.path.isdir(os.path.join(self._topics_dir(), name))

    def topic_config(self, name: str) -> TopicConfig:
        """The config of topic ``name`` as this process last read it (re-read when
        another process altered it); UnknownTopicError if there is no such topic."""
        return self._topic(name).config()

    def partition_count(self, name: str) -> int:
        """How many partitions topic ``name`` has now (another process's alter_topic
        included: costs one ``stat``); UnknownTopicError if there is no such topic."""
        topic = self._topic(name)
        topic.reload_if_changed()
        return topic.partition_count

    def _topic(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is not None:
            return topic
        self.check_open()
        validate_name("topic", name, internal=True)
        with self._lock:
            topic = self._topics.get(name)
            if topic is None:
                directory = os.path.join(self._topics_dir(), name)
                try:
                    topic = Topic(directory, name, self.clock, self._notifier.notify,
                                  on_open=self._apply_end_floor,
                                  on_roll=self._compactor.request,
                                  read_only=self.read_only,
                                  apply_retention=self.apply_retention)
                except FileNotFoundError:
                    raise UnknownTopicError(f"unknown topic {name!r}") from None
                self._topics[name] = topic
        return topic

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
        self._end_floor = end_floor

    def _apply_end_floor(self, partition: Partition) -> None:
        """``on_open`` hook of every topic: apply the end floor (see set_end_floor)."""
        end_floor = self._end_floor
        if end_floor is None or self.read_only or partition.topic.startswith("__"):
            return
        try:
            floor = end_floor(partition.topic, partition.number)
            end = partition.state().end_offset
            if floor is not None and floor > end:
                partition.ensure_end_at_least(
                    floor, f"the end floor (a committed offset {floor}) is beyond the "
                    f"partition's end {end}")
        except (MqlogError, OSError):  # offsets unreadable, disk full: still open it
            _log.exception("could not lift %s/%d to its committed offsets", partition.topic,
                           partition.number)

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

    def _forget_topic(self, name: str, deleted: Partition) -> None:
        """Close and drop this process's handle of a topic that another process
        deleted (``deleted`` is one of its partitions), so that the next call opens
        the topic anew: a topic of that name created since, or UnknownTopicError."""
        with self._lock:
            topic = self._topics.get(name)
            if topic is None or deleted not in topic.open_partitions():
                return  # already forgotten
            del self._topics[name]
        topic.close()

    def partition(self, topic: str, partition: int) -> Partition:
        """The handle of one partition (opened on first use, then cached): what
        clients hold to poll it without a lookup per call. UnknownTopicError /
        UnknownPartitionError if there is no such partition."""
        handle = self._topic(topic)
        try:
            return handle.partition(partition)
        except UnknownTopicError:  # deleted by another process: forget our copy
            with self._lock:
                if self._topics.get(topic) is handle:
                    del self._topics[topic]
            handle.close()
            raise

    def describe_topic(self, name: str) -> TopicDescription:
        """Config and per-partition offsets, sizes and segment counts."""
        topic = self._topic(name)
        topic.reload_if_changed()
        partitions = [
            topic.partition(number).describe() for number in range(topic.partition_count)
        ]
        return TopicDescription(name, topic.config(), partitions)

    def alter_topic(self, name: str, partitions: int | None = None,
                    **topic_config) -> TopicConfig:
        """Change a topic's config and/or raise its partition count (never lower:
        keyed records would move). Validated before anything is written;
        unknown options raise TypeError."""
        self.check_writable(f"alter topic {name!r}")
        topic = self._topic(name)
        with self._metadata_lock():
            topic.reload_if_changed()
            config = TopicConfig.from_options(topic.config(), **topic_config)
            count = topic.partition_count
            if partitions is not None:
                _check_partition_count(partitions)
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
        directory = os.path.join(self._topics_dir(), name)
        with self._metadata_lock():
            if not os.path.isdir(directory):
                raise UnknownTopicError(f"unknown topic {name!r}")
            doomed = os.path.join(self._topics_dir(), f"{DELETING_PREFIX}{uuid.uuid4().hex}")
            os.rename(directory, doomed)
            fsync_directory(self._topics_dir())
        for entry in os.listdir(doomed):
            if entry.isdigit():
                retire_partition(os.path.join(doomed, entry))
        with self._lock:
            topic = self._topics.pop(name, None)
        if topic is not None:
            topic.close()
        shutil.rmtree(doomed, ignore_errors=True)

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
        return self.append_to(self.partition(topic, partition), records, producer=producer,
                              flush=flush, now_ms=now_ms)

    def append_to(self, target: Partition, records: Sequence[bytes | Record], *,
                  producer: ProducerBatch | None = None, flush: bool | None = None,
                  now_ms: int | None = None) -> int:
        """:meth:`append` to a partition handle from :meth:`partition` (no lookup:
        the producers' path). A topic another process deleted raises
        UnknownTopicError, and the next call opens the topic anew; a failed
        background flush of interval durability is raised here, once."""
        self.check_writable(f"append to {target.topic}/{target.number}")
        if self._flusher.error is not None:
            error, self._flusher.error = self._flusher.error, None
            raise MqlogError(f"a background flush failed: {error}") from error
        try:
            first = target.append(records, now_ms, producer, flush)
        except UnknownTopicError:  # deleted by another process: forget our copy
            self._forget_topic(target.topic, target)
            raise
        except FileNotFoundError:  # its directory was renamed away mid-append (a roll)
            if os.path.isdir(target.directory):
                raise
            self._forget_topic(target.topic, target)
            raise UnknownTopicError(f"topic {target.topic!r} was deleted "
                                    f"(partition {target.number})") from None
        if target.config().durability == "interval":
            self._flusher.start()
        return first

    def append_counter(self) -> int:
        """A number that changes whenever any process appends to this log; pass it
        to :meth:`wait_for_append` after finding nothing new to read."""
        return self._notifier.value()

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
        _check_read_limits(max_records, max_bytes)
        target = self.partition(topic, partition)
        return self._read_from(target, target.read, offset, max_records, max_bytes)

    def read_columns(self, topic: str, partition: int, offset: int,
                     max_records: int = 10_000, max_bytes: int | None = None) -> RecordColumns:
        """The records :meth:`read` would return, as columns: numpy arrays of
        offsets, timestamps and payload positions over one bytes object, with no
        Python object per record (see :class:`~mqlog.RecordColumns`). For bulk
        work -- replays, exports, numpy -- several times faster than ``read``."""
        _check_read_limits(max_records, max_bytes)
        target = self.partition(topic, partition)
        return self._read_from(target, target.read_columns, offset, max_records, max_bytes)

    def _read_from(self, target: Partition, read: Callable, *args):
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
        self._forget_topic(target.topic, target)
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
        if on_corrupt not in ("raise", "skip") and not callable(on_corrupt):
            raise ValueError(f"on_corrupt must be 'raise', 'skip' or a callable, "
                             f"not {on_corrupt!r}")
        target = self.partition(topic, partition)
        target.check_offset(start, target.state())
        offset = start
        while end is None or offset < end:
            want = ITER_CHUNK_RECORDS if end is None else min(ITER_CHUNK_RECORDS, end - offset)
            try:
                records = target.read(offset, want, None)
            except CorruptRecordError as error:
                if on_corrupt == "raise" or error.next_offset is None or (
                        error.next_offset <= offset):
                    raise
                if on_corrupt == "skip":
                    _log.warning("skipping damaged records: %s", error)
                else:
                    on_corrupt(error)
                offset = error.next_offset
                continue
            if end is not None and records and records[-1].offset >= end:
                records = [r for r in records if r.offset < end]  # compaction gaps
                yield from records
                return
            if not records:
                return
            yield from records
            offset = records[-1].offset + 1

    def offset_for_time(self, topic: str, partition: int, ts_ms: int) -> int:
        """The first offset whose timestamp is >= ``ts_ms`` (the end offset if none);
        TypeError unless ``ts_ms`` is an integer."""
        return self.partition(topic, partition).offset_for_time(checked_timestamp(ts_ms))

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
            handle = self._topic(name)
            for number in range(handle.partition_count):
                directory = os.path.join(handle.directory, str(number))
                before = len(list_segment_bases(directory)) if os.path.isdir(directory) else 0
                handle.partition(number).enforce_retention()  # opening it may apply it too
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
            handle = self._topic(name)
            if handle.config().cleanup_policy != "compact":
                continue
            for number in range(handle.partition_count):
                result = handle.partition(number).compact(force=True)
                rewritten += result.segments_rewritten if result is not None else 0
        return rewritten

    def flush(self) -> None:
        """fdatasync everything this process appended."""
        self.check_writable("flush")
        for topic in list(self._topics.values()):
            for partition in topic.open_partitions():
                partition.flush()

    # -- lifecycle -------------------------------------------------------------------------

    def _interval_partitions(self):
        for topic in list(self._topics.values()):
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
        last = not self.read_only and _try_exclusive(self._open_lock_fd)
        if last:  # no other engine is open: trim every partition's preallocation
            self._open_every_partition()
        with self._lock:
            self._closed = True
            topics, self._topics = list(self._topics.values()), {}
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
                topic = self._topic(name)
            except MqlogError:
                continue  # deleted meanwhile
            for number in range(topic.partition_count):
                if os.path.exists(os.path.join(topic.directory, str(number), STATE_FILE)):
                    topic.partition(number)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        read_only = " read-only" if self.read_only else ""
        return f"<mqlog.Engine {self.path!r}{read_only}{' closed' if self._closed else ''}>"


def _check_read_limits(max_records: object, max_bytes: object) -> None:
    """TypeError unless ``max_records`` is an int and ``max_bytes`` None or an int;
    ConfigError unless ``max_records`` >= 1 and ``max_bytes`` >= 0."""
    if not isinstance(max_records, int) or isinstance(max_records, bool):
        raise TypeError(f"max_records must be a positive int, not {max_records!r}")
    if max_records < 1:
        raise ConfigError(f"max_records must be a positive int, not {max_records!r}")
    if max_bytes is not None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool):
            raise TypeError(f"max_bytes must be None or an int, not {type(max_bytes).__name__}")
        if max_bytes < 0:
            raise ConfigError(f"max_bytes must be >= 0, not {max_bytes}")


def check_new_topic(name: object, partitions: object, **topic_config) -> TopicConfig:
    """Raise what ``create_topic(name, partitions, **topic_config)`` on a log without
    topic defaults raises for bad input, without a log: so that a command can
    refuse bad input before it creates the log directory. Returns the config."""
    validate_name("topic", name)
    _check_partition_count(partitions)
    return TopicConfig.from_options(**topic_config)


def checked_timestamp(ts_ms: object) -> int:
    """``ts_ms`` (ms since the epoch: an int or numpy integer, not a bool) clamped to
    the 64-bit range of record timestamps, so that a far past or future moment
    finds the first or end offset; TypeError for anything else."""
    if isinstance(ts_ms, bool):
        raise TypeError("a timestamp must be an int (ms since the epoch), not bool")
    try:
        value = operator.index(ts_ms)
    except TypeError:
        raise TypeError(f"a timestamp must be an int (ms since the epoch), not "
                        f"{type(ts_ms).__name__}") from None
    return min(max(value, -(2**63)), 2**63 - 1)


def _check_partition_count(partitions: object) -> None:
    if not isinstance(partitions, int) or isinstance(partitions, bool) or not (
        1 <= partitions <= PARTITIONS_MAX
    ):
        raise ConfigError(f"partitions must be an int from 1 to {PARTITIONS_MAX}, "
                          f"not {partitions!r}")


def _shared_lock_for_reading(path: str) -> int:
    """A read-only engine's hold on ``.lock``: shared, as every open one holds it (so
    a closing writer does not take itself for the last one), through a descriptor
    opened for reading; -1 where the file cannot be opened (never created, or not
    readable by this user): reading works without it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, PermissionError):
        return -1
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _try_exclusive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
