"""The Log: a directory of topics, open in this process.

Directory layout::

    <path>/mqlog.json              layout version
    <path>/.lock                   every open Log holds a shared flock on it
    <path>/.meta.lock              exclusive flock around topic create/alter/delete
    <path>/topics/<name>/          one topic (see _topic), partitions inside
    <path>/topics/~creating-<hex>/ a topic being built by create_topic (metadata lock held)

Any number of processes may open the same directory. The last one to close
(it can take ``.lock`` exclusively) trims the preallocated tails of the active
segments so that a log at rest holds no slack.

Opening a Log removes what dead processes left: the temporary files of
``_files.atomic_write`` everywhere but under ``topics/`` (topics and partitions
do the same when opened), and ``~creating-`` directories of a create_topic
that died (removed under the metadata lock, which their creator held while
alive).

A Log opened ``read_only`` writes nothing at all, so it can read a log on
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
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

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
from mqlog.logstore._partition import (
    STATE_FILE,
    Partition,
    PartitionDescription,
    retire_partition,
)
from mqlog.logstore._producers import ProducerBatch
from mqlog.logstore._record import Record
from mqlog.logstore._segment import list_segment_bases
from mqlog.logstore._topic import Topic, write_metadata
from mqlog.logstore.config import TopicConfig, validate_topic_name

if TYPE_CHECKING:
    from mqlog.consumer._consumer import Consumer
    from mqlog.consumer._offsets import OffsetStore
    from mqlog.producer import Producer

_log = logging.getLogger("mqlog")

LAYOUT_FILE = "mqlog.json"
LAYOUT_VERSION = 1
TOPICS_DIR = "topics"
#: Name prefix of a topic directory create_topic is still building.
CREATING_PREFIX = "~creating-"
#: Records fetched per step by Log.iter.
ITER_CHUNK_RECORDS = 4096
#: Most partitions a topic may have (each is a directory with a few open files).
PARTITIONS_MAX = 10_000


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True)
class TopicDescription:
    name: str
    config: TopicConfig
    partitions: list[PartitionDescription]

    @property
    def record_count(self) -> int:
        return sum(p.record_count for p in self.partitions)

    @property
    def size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.partitions)


class Log:
    """A log directory open in this process. Thread-safe; open one per process
    (after any ``fork``) with :func:`mqlog.open`."""

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
        self._clock = clock or _wall_clock_ms
        #: Nothing is ever written through this Log (see the module docstring).
        self.read_only = bool(read_only)
        #: False: segments are deleted for retention only by enforce_retention().
        self.apply_retention = bool(apply_retention) and not self.read_only
        if not os.path.isdir(self.path):
            if not create or self.read_only:
                raise MqlogError(f"log directory {self.path} does not exist")
            os.makedirs(self.path, exist_ok=True)
        self._check_layout()
        if self.read_only:
            self._open_lock_fd = _shared_lock_for_reading(os.path.join(self.path, ".lock"))
        else:
            os.makedirs(os.path.join(self.path, TOPICS_DIR), exist_ok=True)
            self._remove_leftovers()
            self._open_lock_fd = os.open(os.path.join(self.path, ".lock"),
                                         os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._open_lock_fd, fcntl.LOCK_SH)
        self._lock = threading.RLock()
        self._topics: dict[str, Topic] = {}
        self._closed = False
        self._flusher = IntervalFlusher(self._interval_partitions)
        self._compactor = BackgroundCompactor()
        self._notifier = Notifier(self.path, read_only=self.read_only)
        self._offsets: OffsetStore | None = None
        #: Producers and consumers made by this Log: closed (flushed, groups left) with it.
        self._clients: weakref.WeakSet = weakref.WeakSet()

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
        fd = os.open(os.path.join(self.path, ".meta.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def create_topic(self, name: str, partitions: int = 1, **topic_config) -> TopicDescription:
        """Create a topic; raises TopicExistsError if the name is taken. The topic
        appears complete or not at all: a failure (a full disk, too many open
        files, a crash) leaves nothing behind."""
        return self._create_topic(name, partitions, internal=False, **topic_config)

    def _create_topic(self, name: str, partitions: int, internal: bool,
                      **topic_config) -> TopicDescription:
        """Build the topic in a ``~creating-`` directory -- metadata, then each
        partition opened, initialized and closed in turn, so that a wide topic
        never holds more than one partition's files open -- and rename it into
        place, all under the metadata lock; durable once this returns."""
        self._check_writable(f"create topic {name!r}")
        validate_topic_name(name, internal=internal)
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
        partition = Partition(path, topic, number, lambda: config, self._clock)
        try:
            partition.trim_active()
            return partition.describe()
        finally:
            partition.close()

    def topics(self) -> list[str]:
        """Names of the topics, sorted (internal ``__`` topics included)."""
        self._check_open()
        names = []
        try:
            entries = os.listdir(self._topics_dir())
        except FileNotFoundError:  # read-only: no topic was ever created
            return []
        for name in entries:
            try:
                validate_topic_name(name, internal=True)
            except MqlogError:
                continue  # staging or deleting directories
            names.append(name)
        return sorted(names)

    def _topic(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is not None:
            return topic
        self._check_open()
        validate_topic_name(name, internal=True)
        with self._lock:
            topic = self._topics.get(name)
            if topic is None:
                directory = os.path.join(self._topics_dir(), name)
                try:
                    topic = Topic(directory, name, self._clock, self._notifier.notify,
                                  on_open=self._lift_to_committed,
                                  on_roll=self._compactor.request,
                                  read_only=self.read_only,
                                  apply_retention=self.apply_retention)
                except FileNotFoundError:
                    raise UnknownTopicError(f"unknown topic {name!r}") from None
                self._topics[name] = topic
        return topic

    def _lift_to_committed(self, partition: Partition) -> None:
        """Lift a just-opened partition's end to the highest offset a consumer group
        committed for it, recording a gap (``Partition.ensure_end_at_least``): a
        recovery that lost records which a group had consumed and committed (a
        power loss under ``durability="interval"``) must not hand their offsets
        out again, or the group would skip the new records. Internal topics are
        not lifted, nor is anything in a read-only log; a log without committed
        offsets costs one ``stat``."""
        from mqlog.consumer._offsets import OFFSETS_TOPIC

        if self.read_only or partition.topic.startswith("__") or not os.path.isdir(
                os.path.join(self._topics_dir(), OFFSETS_TOPIC)):
            return
        try:
            committed = self._offset_store().highest_committed(partition.topic,
                                                               partition.number)
            end = partition.state().end_offset
            if committed is not None and committed > end:
                partition.ensure_end_at_least(
                    committed, f"a consumer group committed offset {committed}, beyond the "
                    f"partition's end {end}")
        except (MqlogError, OSError):  # offsets unreadable, disk full: still open it
            _log.exception("could not lift %s/%d to its committed offsets", partition.topic,
                           partition.number)

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

    def _partition(self, topic: str, partition: int) -> Partition:
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
        self._check_writable(f"alter topic {name!r}")
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
        self._check_writable(f"delete topic {name!r}")
        validate_topic_name(name, internal=True)
        directory = os.path.join(self._topics_dir(), name)
        with self._metadata_lock():
            if not os.path.isdir(directory):
                raise UnknownTopicError(f"unknown topic {name!r}")
            doomed = os.path.join(self._topics_dir(), f"~deleting-{uuid.uuid4().hex}")
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
               producer: ProducerBatch | None = None) -> int:
        """Append ``records`` (bytes values or Record objects) to one partition.

        Returns the offset of the first record; the others follow densely.
        All or nothing: readers, crashes and failed writes never leave part of
        the records in the log (see "Appends" in docs/concepts.md).
        Returns once the topic's durability is met (``always``: flushed).
        Raises TypeError / RecordTooLargeError before writing anything.
        ``producer`` makes the append idempotent: a retry with the same
        :class:`ProducerBatch` writes nothing and returns the first try's offset.
        """
        return self._append(self._partition(topic, partition), records, None, producer)

    def _append(self, target: Partition, records: Sequence, now_ms: int | None,
                producer: ProducerBatch | None = None, flush: bool | None = None) -> int:
        self._check_writable(f"append to {target.topic}/{target.number}")
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

    def producer(self, **config) -> Producer:
        """A new :class:`~mqlog.producer.Producer` sending to this log (see
        ``ProducerConfig`` for the settings)."""
        from mqlog.producer import Producer

        self._check_writable("create a producer")
        producer = Producer(self, **config)
        self._clients.add(producer)
        return producer

    def consumer(self, group: str | None = None, topics=(), **config) -> Consumer:
        """A new :class:`~mqlog.consumer.Consumer`; with ``group`` (and ``topics``,
        or a later ``subscribe``) a member of that consumer group. Settings: see
        ``ConsumerConfig``; an unknown one raises TypeError."""
        from mqlog.consumer._consumer import Consumer

        if group is not None:  # members write their files and commit offsets
            self._check_writable(f"join consumer group {group!r}")
        self._check_open()
        consumer = Consumer(self, group, topics, **config)
        self._clients.add(consumer)
        return consumer

    # -- consumer groups (see mqlog.consumer._admin) -------------------------------------

    def list_groups(self) -> list[str]:
        """Consumer groups with members or committed offsets, and queue groups."""
        from mqlog.consumer import _admin

        return _admin.list_groups(self)

    def describe_group(self, group: str):
        """A group's kind, state, generation, members and per-partition committed
        offset, end offset, lag and age of the oldest unconsumed record; for a queue
        group also ready, in flight, delayed, expired and dead-lettered counts."""
        from mqlog.consumer import _admin

        return _admin.describe_group(self, group)

    def reset_offsets(self, group: str, topic: str, partitions=None, *, to=None,
                      shift_by=None, by_duration=None, dry_run: bool = False):
        """Move a group's committed offsets, or a queue group's position (refused
        while it has live members); returns ``{TopicPartition: (current, new)}``. See
        :func:`mqlog.consumer._admin.reset_offsets`."""
        from mqlog.consumer import _admin

        if not dry_run:
            self._check_writable(f"reset the offsets of group {group!r}")
        return _admin.reset_offsets(self, group, topic, partitions, to=to, shift_by=shift_by,
                                    by_duration=by_duration, dry_run=dry_run)

    def delete_group(self, group: str) -> None:
        """Forget a group and its committed offsets or queue state (refused while it
        has members)."""
        from mqlog.consumer import _admin

        self._check_writable(f"delete group {group!r}")
        _admin.delete_group(self, group)

    # -- queues (see mqlog.consumer._queue) ------------------------------------------------

    def queue(self, group: str, topics, *, ack_timeout_s: float = 30.0, max_deliveries: int = 5,
              dead_letter_topic: str | None = None, backoff=None):
        """A worker of queue group ``group`` over ``topics``: per-message ack/nack,
        redelivery after ``ack_timeout_s`` or a nack, dead letters after
        ``max_deliveries`` (default topic ``<topic>.dlq``). Any number of workers,
        threads or processes, share the same partitions."""
        from mqlog.consumer._queue import QueueConsumer

        self._check_writable(f"start a worker of queue group {group!r}")
        worker = QueueConsumer(self, group, topics, ack_timeout_s=ack_timeout_s,
                               max_deliveries=max_deliveries,
                               dead_letter_topic=dead_letter_topic, backoff=backoff)
        self._clients.add(worker)
        return worker

    def request(self, topic: str, value, timeout: float, **options):
        """Send a request to ``topic`` and wait for the reply of a
        :class:`~mqlog.request.Responder` (see ``mqlog.request``)."""
        from mqlog.request import request

        return request(self, topic, value, timeout, **options)

    def responder(self, topic: str, handler, group: str = "responders", **queue_options):
        """A :class:`~mqlog.request.Responder` answering requests on ``topic``."""
        from mqlog.request import Responder

        self._check_writable("start a responder")
        responder = Responder(self, topic, handler, group, **queue_options)
        self._clients.add(responder)
        return responder

    def describe_queue(self, group: str) -> list[dict]:
        """Depth of a queue group per partition: position, end offset, lag, and
        ready / in flight / delayed / expired / dead-lettered counts."""
        from mqlog.consumer._queue import describe_queue

        return describe_queue(self, group)

    def redrive(self, dlq_topic: str, offsets=None, where=None) -> int:
        """Move dead letters back to where they came from; returns how many moved.
        See :func:`mqlog.consumer._queue.redrive`."""
        from mqlog.consumer._queue import redrive

        self._check_writable(f"redrive {dlq_topic!r}")
        return redrive(self, dlq_topic, offsets, where)

    def _offset_store(self) -> OffsetStore:
        """The committed-offsets store of this log (created on first use)."""
        with self._lock:
            if self._offsets is None:
                from mqlog.consumer._offsets import OffsetStore

                self._offsets = OffsetStore(self)
            return self._offsets

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
        """The log's clock: ms since the epoch (the ``clock`` given to open)."""
        return self._clock()

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
        target = self._partition(topic, partition)
        return self._read_from(target, target.read, offset, max_records, max_bytes)

    def read_columns(self, topic: str, partition: int, offset: int,
                     max_records: int = 10_000, max_bytes: int | None = None) -> RecordColumns:
        """The records :meth:`read` would return, as columns: numpy arrays of
        offsets, timestamps and payload positions over one bytes object, with no
        Python object per record (see :class:`~mqlog.RecordColumns`). For bulk
        work -- replays, exports, numpy -- several times faster than ``read``."""
        _check_read_limits(max_records, max_bytes)
        target = self._partition(topic, partition)
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
        target = self._partition(topic, partition)
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
        return self._partition(topic, partition).offset_for_time(checked_timestamp(ts_ms))

    def start_offset(self, topic: str, partition: int) -> int:
        """The first offset still in the log (retention moves it forward)."""
        return self._partition(topic, partition).state().log_start_offset

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next appended record will get."""
        return self._partition(topic, partition).state().end_offset

    def delete_records(self, topic: str, partition: int, before_offset: int) -> int:
        """Move the partition's log start offset up to ``before_offset`` (as
        kafka-delete-records and Redis ``XTRIM MINID`` do) and return the start
        offset now: whole segments below it are deleted, the records of the rest
        below it are no longer read, found or counted. Durable before it returns.
        At or below the start it changes nothing; beyond the end offset it raises
        OffsetOutOfRangeError; on a read-only Log, ReadOnlyError."""
        self._check_writable("delete records")
        return self._partition(topic, partition).delete_records(before_offset)

    def enforce_retention(self, topic: str | None = None) -> int:
        """Apply retention now to one topic or all; return segments deleted."""
        self._check_writable("apply retention")
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
        self._check_writable("compact")
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
        self._check_writable("flush")
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

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.path} is closed")

    def _check_writable(self, action: str) -> None:
        """Refuse ``action`` (a write) before anything is touched on a read-only Log."""
        self._check_open()
        if self.read_only:
            raise ReadOnlyError(f"cannot {action}: log {self.path} is open read-only")

    def close(self) -> None:
        """Close the producers (flushing them) and consumers (leaving their groups)
        made by this Log, flush what interval durability still owes, release
        files; idempotent."""
        if self._closed:
            return
        for client in list(self._clients):
            try:
                client.close()
            except Exception:  # e.g. a consumer's on_revoked failed: keep closing
                _log.exception("closing %r failed", client)
        self._compactor.stop()
        self._flusher.stop()
        last = not self.read_only and _try_exclusive(self._open_lock_fd)
        if last:  # no other Log is open: trim every partition's preallocation
            self._open_every_partition()
        with self._lock:
            self._closed = True
            topics, self._topics = list(self._topics.values()), {}
        for topic in topics:
            if last:
                for partition in topic.open_partitions():
                    partition.trim_active()
            topic.close()
        self._notifier.close()
        if self._open_lock_fd >= 0:
            os.close(self._open_lock_fd)

    def _open_every_partition(self) -> None:
        """Open the partitions other Logs wrote and closed, so close can trim them."""
        for name in self.topics():
            try:
                topic = self._topic(name)
            except MqlogError:
                continue  # deleted meanwhile
            for number in range(topic.partition_count):
                if os.path.exists(os.path.join(topic.directory, str(number), STATE_FILE)):
                    topic.partition(number)

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        read_only = " read-only" if self.read_only else ""
        return f"<mqlog.Log {self.path!r}{read_only}{' closed' if self._closed else ''}>"


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
    validate_topic_name(name)
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
    """A read-only Log's hold on ``.lock``: shared, as every open Log holds it (so
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


def open(path: str | os.PathLike, **config) -> Log:  # noqa: A001 - mirrors builtins.open
    """Open (creating if missing) the log directory at ``path``.

    ``config``: defaults for topics created through this Log (any TopicConfig
    field), ``create=False`` to refuse a missing directory, ``clock`` (a
    callable returning ms since the epoch) to control time in tests.

    ``read_only=True`` writes nothing at all (read-only media, a log owned by
    another user): no lock file, no recovery on disk (it is worked out in
    memory), no retention; every call that would write raises ReadOnlyError.
    ``apply_retention=False`` leaves retention to other processes (and to an
    explicit ``enforce_retention()``): opening a partition deletes nothing.
    """
    return Log(path, **config)
