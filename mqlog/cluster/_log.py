"""ClusterLog: what ``mqlog.open("kafka://...")`` returns, the Log API on a Kafka cluster.

A :class:`~mqlog.Log` in every way user code can see (``isinstance`` included):
the same methods, arguments and result types (Record, Message,
TopicDescription, GroupDescription, RecordMetadata...), over any
Kafka-protocol cluster through librdkafka (confluent-kafka). It owns an admin
client (topics, groups), a :class:`Reader` (reads by offset, offsets, time
lookups), a producer made on the first ``append``, and the producers and
consumers made through it, which it closes, in that order, when it closes.

What a cluster cannot do raises :class:`~mqlog.errors.UnsupportedError`
naming the operation: queue groups and everything built on them (queues,
requests, pending lists, receipts, dead letters), mqlog's own storage
settings (durability classes, local retention and compaction, ``flush``),
and requests the cluster does not offer (DeleteRecords, CreatePartitions on
some brokers). docs/cluster.md lists them. Every method of Log is defined
here: none reaches the storage engine a log directory has.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from mqlog.cluster._consumer import ClusterConsumer
from mqlog.cluster._errors import as_mqlog_error, translated
from mqlog.cluster._groups import ClusterGroups
from mqlog.cluster._producer import ClusterProducer
from mqlog.cluster._reader import Reader
from mqlog.cluster._topic_configs import kafka_configs, topic_config
from mqlog.cluster._url import ClusterAddress
from mqlog.consumer import (
    DeadLetter,
    GroupDescription,
    PendingMessage,
    PendingSummary,
    QueueConsumer,
    QueuePartitionDescription,
    ReceivedMessage,
    TopicPartition,
)
from mqlog.errors import (
    ConfigError,
    CorruptRecordError,
    LogClosedError,
    MqlogError,
    OffsetOutOfRangeError,
    ReadOnlyError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsupportedError,
)
from mqlog.log import Log
from mqlog.logstore import (
    Message,
    PartitionDescription,
    ProducerBatch,
    Record,
    RecordColumns,
    TopicConfig,
    TopicDescription,
    check_new_topic,
    columns_of_records,
)
from mqlog.producer import TOPIC_RECHECK_S
from mqlog.request import Handler, Responder

_log = logging.getLogger("mqlog.cluster")

#: Longest an admin request (topics, configs) waits for the cluster.
ADMIN_TIMEOUT_S = 30.0
#: A metadata request is retried this often within ADMIN_TIMEOUT_S, looking
#: between tries for a refused login.
METADATA_STEP_S = 2.0
_LOGIN_FAILURES = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
                   KafkaError._SSL}
#: How long a created topic may take to show in the cluster's metadata.
TOPIC_VISIBLE_S = 30.0
#: How long ``wait_for_append`` sleeps at most: a cluster tells no one of appends,
#: so a follower looks again this often.
FOLLOW_POLL_S = 0.2
#: Records ``iter`` reads per request.
ITER_CHUNK = 500
_QUEUES = "queue groups are mqlog's own; a Kafka cluster has none (see docs/cluster.md)"
_STORAGE = "the brokers own their storage; their own settings govern it (see docs/cluster.md)"


class ClusterLog(Log):
    """A Kafka cluster open in this process (see the module). Thread-safe; open
    with :func:`mqlog.open` and a ``kafka://`` URL."""

    def __init__(self, address: ClusterAddress, *, read_only: bool = False,
                 **topic_defaults: Any) -> None:
        self._address = address
        self._read_only = read_only
        self._topic_defaults = TopicConfig.from_options(**topic_defaults)
        self._defaults_given = dict(topic_defaults)
        #: The last error librdkafka reported outside a call (a failed login...).
        self._broker_error: KafkaError | None = None
        with translated("connect to the cluster"):
            settings: dict[str, Any] = {**address.config(), "error_cb": self._on_error}
            self._admin = AdminClient(settings)
        self._reader = Reader(address.config("consumer"))
        self._groups = ClusterGroups(self._admin, self._reader, self._partition_count)
        self._counts: dict[str, tuple[int, float]] = {}
        self._appender: ClusterProducer | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()

    @property
    def url(self) -> str:
        """The ``kafka://`` URL this log was opened with."""
        return self._address.url

    @property
    def path(self) -> str:
        """The URL (a cluster has no directory)."""
        return self._address.url

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def apply_retention(self) -> bool:
        """False: the brokers apply retention, not this process."""
        return False

    @property
    def topic_defaults(self) -> TopicConfig:
        return self._topic_defaults

    def __getattr__(self, name: str) -> NoReturn:
        """``engine`` (a log directory's storage engine) is not there: say why."""
        if name == "engine":
            raise UnsupportedError("the storage engine (Log.engine)", _STORAGE)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _check_writable(self, operation: str) -> None:
        self._check_open()
        if self._read_only:
            raise ReadOnlyError(f"cannot {operation}: the log was opened read-only")

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("the log is closed")

    # -- topics ----------------------------------------------------------------------

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (served by ``AdminClient.poll``)."""
        self._broker_error = error

    def _metadata(self) -> dict[str, int]:
        """Topic name -> partition count, as the cluster's metadata says now. A
        login the cluster refuses fails at once rather than at the timeout."""
        self._check_open()
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while True:
            try:
                with translated("list topics"):
                    metadata = self._admin.list_topics(timeout=METADATA_STEP_S)
                break
            except MqlogError:
                self._admin.poll(0)
                error = self._broker_error
                if error is not None and error.code() in _LOGIN_FAILURES:
                    raise as_mqlog_error(error, "connect to the cluster") from None
                if time.monotonic() >= deadline:
                    raise
        counts = {name: len(topic.partitions) for name, topic in metadata.topics.items()
                  if topic.error is None or topic.partitions}
        deadline = time.monotonic() + TOPIC_RECHECK_S
        self._counts = {name: (count, deadline) for name, count in counts.items()}
        return counts

    def _partition_count(self, topic: str, fresh: bool = False) -> int:
        """A topic's partition count, re-read every TOPIC_RECHECK_S, or now with
        ``fresh`` (UnknownTopicError)."""
        cached = self._counts.get(topic)
        if fresh or cached is None or time.monotonic() >= cached[1]:
            count = self._metadata().get(topic)
            if count is None:
                raise UnknownTopicError(f"unknown topic {topic!r}")
            return count
        return cached[0]

    def _check_partition(self, topic: str, partition: int) -> None:
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        count = self._partition_count(topic)
        if partition >= count:  # partitions added since the count was read?
            count = self._partition_count(topic, True)
        if not 0 <= partition < count:
            raise UnknownPartitionError(
                f"topic {topic!r} has partitions 0 to {count - 1}, not {partition}")

    def create_topic(self, name: str, partitions: int = 1, *, exist_ok: bool = False,
                     **topic_config: Any) -> TopicDescription:
        """Create a topic (replication: the cluster's default); TopicExistsError if
        the name is taken, unless ``exist_ok`` and it has these partitions and
        settings. mqlog-only settings other than their defaults raise
        UnsupportedError, before anything is created."""
        self._check_writable(f"create topic {name!r}")
        options = {**self._defaults_given, **topic_config}
        check_new_topic(name, partitions, **options)
        configs = kafka_configs(f"create topic {name!r}", options)
        try:
            with translated(f"create topic {name!r}"):
                self._admin.create_topics(
                    [NewTopic(name, partitions, -1, config=configs)],
                    request_timeout=ADMIN_TIMEOUT_S)[name].result(ADMIN_TIMEOUT_S)
        except TopicExistsError:
            if not exist_ok:
                raise TopicExistsError(f"topic {name!r} already exists") from None
            return self._same_topic(name, partitions, configs)
        return self._await_topic(name, partitions)

    def _await_topic(self, name: str, partitions: int) -> TopicDescription:
        """The new topic's description, once the cluster's metadata shows it whole."""
        deadline = time.monotonic() + TOPIC_VISIBLE_S
        while self._metadata().get(name, 0) < partitions and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.describe_topic(name)

    def _same_topic(self, name: str, partitions: int, configs: Mapping[str, str]
                    ) -> TopicDescription:
        """``create_topic(exist_ok=True)`` of a topic that exists: its description
        if it matches, else TopicExistsError naming the differences."""
        description = self.describe_topic(name)
        described = self._describe_configs(name)
        differences = [f"{key}={described.get(key)!r} (asked {value!r})"
                       for key, value in sorted(configs.items()) if described.get(key) != value]
        if len(description.partitions) != partitions:
            differences.insert(0, f"{len(description.partitions)} partitions (asked "
                                  f"{partitions})")
        if differences:
            raise TopicExistsError(f"topic {name!r} exists with other settings: "
                                   f"{', '.join(differences)}")
        return description

    def topics(self) -> list[str]:
        """Names of the topics, sorted (internal ``__`` topics included)."""
        return sorted(self._metadata())

    def _describe_configs(self, name: str) -> dict[str, str | None]:
        """The topic's configs as the cluster reports them ({} if it cannot)."""
        resource = ConfigResource("topic", name)
        try:
            with translated(f"describe the configs of {name!r}"):
                entries = self._admin.describe_configs(
                    [resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(
                    ADMIN_TIMEOUT_S)
        except UnsupportedError:
            return {}
        return {key: entry.value for key, entry in entries.items()}

    def describe_topic(self, name: str) -> TopicDescription:
        """Config and each partition's start and end offsets (a cluster reports no
        sizes or segments: ``size_bytes`` and ``segment_count`` are 0)."""
        count = self._metadata().get(name)
        if count is None:
            raise UnknownTopicError(f"unknown topic {name!r}")
        partitions = []
        for number in range(count):
            start, end = self._reader.watermarks(name, number)
            partitions.append(PartitionDescription(number, start, end, 0, 0))
        return TopicDescription(name, topic_config(self._describe_configs(name)), partitions)

    def alter_topic(self, name: str, partitions: int | None = None,
                    **topic_config: Any) -> TopicConfig:
        """Change a topic's settings and/or raise its partition count (never lower)."""
        self._check_writable(f"alter topic {name!r}")
        current = self.describe_topic(name)
        TopicConfig.from_options(current.config, **topic_config)  # validated first
        configs = kafka_configs(f"alter topic {name!r}", topic_config)
        if partitions is not None:
            check_new_topic(name, partitions)
            if partitions < len(current.partitions):
                raise ConfigError(f"topic {name!r} has {len(current.partitions)} partitions: "
                                  f"a partition count never goes down")
        if configs:
            resource = ConfigResource("topic", name, incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in configs.items()])
            with translated(f"alter topic {name!r}"):
                self._admin.incremental_alter_configs(
                    [resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(
                    ADMIN_TIMEOUT_S)
        if partitions is not None and partitions > len(current.partitions):
            with translated(f"add partitions to {name!r}"):
                self._admin.create_partitions(
                    [NewPartitions(name, partitions)],
                    request_timeout=ADMIN_TIMEOUT_S)[name].result(ADMIN_TIMEOUT_S)
            self._await_topic(name, partitions)
        return self.describe_topic(name).config

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its records."""
        self._check_writable(f"delete topic {name!r}")
        with translated(f"delete topic {name!r}"):
            self._admin.delete_topics([name], request_timeout=ADMIN_TIMEOUT_S)[name].result(
                ADMIN_TIMEOUT_S)
        self._counts.pop(name, None)
        deadline = time.monotonic() + TOPIC_VISIBLE_S
        while name in self._metadata() and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- records -----------------------------------------------------------------------

    def append(self, topic: str, partition: int, records: Sequence[bytes | Record], *,
               producer: ProducerBatch | None = None) -> int:
        """Send ``records`` to one partition and wait until the cluster has them all;
        returns the offset of the first. On a cluster another producer's records
        may fall between them, and a failure may leave some written."""
        self._check_writable(f"append to {topic!r}")
        if producer is not None:
            raise UnsupportedError("append with a ProducerBatch",
                                   "idempotence on a cluster is the producer's "
                                   "(log.producer(idempotent=True))")
        self._check_partition(topic, partition)
        if isinstance(records, (bytes, str)) or not records:
            raise TypeError("records must be a non-empty list of bytes or Record")
        with self._lock:
            if self._appender is None:
                self._appender = self.producer(idempotent=True)
            appender = self._appender
        sent = []
        for item in records:
            if isinstance(item, Record):
                sent.append(appender.send(topic, item.value, key=item.key, headers=item.headers,
                                          partition=partition, timestamp=item.timestamp))
            else:
                sent.append(appender.send(topic, item, partition=partition))
        appender.flush()
        return min(delivery.result().offset for delivery in sent)

    def read(self, topic: str, partition: int, offset: int, max_records: int = 500,
             max_bytes: int | None = None) -> list[Record]:
        """Records from ``offset`` on (at most ``max_records``, stopping before
        ``max_bytes`` of keys and values but returning at least one); [] at the end
        offset; OffsetOutOfRangeError outside [start_offset, end_offset]."""
        self._check_open()
        self._check_partition(topic, partition)
        return list(self._reader.read(topic, partition, offset, max_records, max_bytes))

    def read_columns(self, topic: str, partition: int, offset: int,
                     max_records: int = 10_000, max_bytes: int | None = None) -> RecordColumns:
        """The records :meth:`read` would return, as :class:`~mqlog.RecordColumns`."""
        records = self.read(topic, partition, offset, max_records, max_bytes)
        return columns_of_records(topic, partition, records)

    def iter(self, topic: str, partition: int, start: int = 0, end: int | None = None,
             on_corrupt: str | Callable[[CorruptRecordError], None] = "raise",
             ) -> Iterator[Record]:
        """Records from ``start`` up to ``end`` (exclusive; None: the end offset as it
        is when the iterator reaches it). A cluster has no damaged records to skip:
        ``on_corrupt`` is accepted and never used."""
        self._check_partition(topic, partition)
        return self._iter(topic, partition, start, end)

    def _iter(self, topic: str, partition: int, start: int, end: int | None
              ) -> Iterator[Record]:
        offset = start
        while end is None or offset < end:
            wanted = ITER_CHUNK if end is None else min(ITER_CHUNK, end - offset)
            records = self._reader.read(topic, partition, offset, wanted, None)
            if not records:
                return
            for record in records:
                if end is not None and record.offset >= end:
                    return
                yield record
            offset = records[-1].offset + 1

    def offset_for_time(self, topic: str, partition: int, ts_ms: int) -> int:
        """The first offset whose timestamp is >= ``ts_ms`` (the end offset if none)."""
        if not isinstance(ts_ms, int) or isinstance(ts_ms, bool):
            raise TypeError(f"ts_ms must be an int, not {type(ts_ms).__name__}")
        self._check_partition(topic, partition)
        return self._reader.offsets_for_time(topic, [partition], ts_ms)[partition]

    def start_offset(self, topic: str, partition: int) -> int:
        self._check_partition(topic, partition)
        return self._reader.watermarks(topic, partition)[0]

    def end_offset(self, topic: str, partition: int) -> int:
        self._check_partition(topic, partition)
        return self._reader.watermarks(topic, partition)[1]

    def append_counter(self) -> int:
        """A cluster tells no one of appends: a number that changes every call."""
        return time.monotonic_ns()

    def wait_for_append(self, seen: int, timeout_s: float) -> None:
        """Sleep ``timeout_s``, at most FOLLOW_POLL_S: callers look again after it."""
        time.sleep(max(min(timeout_s, FOLLOW_POLL_S), 0))

    def now_ms(self) -> int:
        """This machine's clock: ms since the epoch."""
        return int(time.time() * 1000)

    def delete_records(self, topic: str, partition: int, before_offset: int) -> int:
        """Move the partition's log start offset up to ``before_offset`` (Kafka's
        DeleteRecords); returns the start offset now."""
        self._check_writable(f"delete records of {topic!r}")
        self._check_partition(topic, partition)
        operation = f"delete records of {topic}/{partition}"
        try:
            with translated(operation):
                futures = self._admin.delete_records(
                    [KafkaPartition(topic, partition, before_offset)],
                    request_timeout=ADMIN_TIMEOUT_S)
                for future in futures.values():
                    future.result(ADMIN_TIMEOUT_S)
        except MqlogError as error:
            if not isinstance(error.__cause__, KafkaException) or (
                    error.__cause__.args[0].code() != KafkaError.OFFSET_OUT_OF_RANGE):
                raise
            start, end = self.start_offset(topic, partition), self.end_offset(topic, partition)
            raise OffsetOutOfRangeError(
                f"{operation}: offset {before_offset} is beyond the end offset {end}",
                offset=before_offset, start_offset=start, end_offset=end) from None
        return self.start_offset(topic, partition)

    def enforce_retention(self, topic: str | None = None) -> int:
        raise UnsupportedError("enforce_retention", _STORAGE)

    def compact(self, topic: str | None = None) -> int:
        raise UnsupportedError("compact", _STORAGE)

    def flush(self) -> None:
        raise UnsupportedError("flush", "the brokers decide when records reach disk (their "
                                        "flush settings); Producer.flush waits until the "
                                        "cluster acknowledged what was sent")

    # -- clients -----------------------------------------------------------------------

    def producer(self, **config: Any) -> ClusterProducer:
        """A producer sending to the cluster (``ProducerConfig``'s settings)."""
        self._check_writable("create a producer")
        return self._track(ClusterProducer(self._address.config("producer"),
                                           self._partition_count, **config))

    def consumer(self, group: str | None = None, topics: Iterable[str] | str = (),
                 **config: Any) -> ClusterConsumer:
        """A consumer; with ``group`` (and ``topics``, or a later ``subscribe``) a
        member of that consumer group of the cluster."""
        if group is not None:
            self._check_writable(f"join consumer group {group!r}")
        self._check_open()
        return self._track(ClusterConsumer(self._address.config("consumer"), self._reader,
                                           self._partition_count, group, topics, **config))

    def queue(self, group: str, topics: Iterable[str] | str, *, ack_timeout_s: float = 30.0,
              max_deliveries: int = 5, dead_letter_topic: str | None = None,
              backoff: Callable[[int], float] | None = None) -> QueueConsumer:
        raise UnsupportedError("queue", _QUEUES)

    def request(self, topic: str, value: bytes | str, timeout: float, **options: Any
                ) -> Message:
        raise UnsupportedError("request", "requests are answered by queue-group "
                                          "responders; " + _QUEUES)

    def responder(self, topic: str, handler: Handler, group: str = "responders",
                  **queue_options: Any) -> Responder:
        raise UnsupportedError("responder", "a responder is a queue-group worker; " + _QUEUES)

    # -- consumer groups ---------------------------------------------------------------

    def list_groups(self) -> list[str]:
        """The cluster's consumer groups."""
        self._check_open()
        return self._groups.list_groups()

    def describe_group(self, group: str) -> GroupDescription:
        """A group's state, members and per-partition committed offset, end offset,
        lag and age of the oldest unconsumed record (generation: -1, unknown)."""
        self._check_open()
        return self._groups.describe_group(group)

    def reset_offsets(self, group: str, topic: str, partitions: Iterable[int] | None = None, *,
                      to: str | int | datetime.datetime | None = None,
                      shift_by: int | None = None,
                      by_duration: datetime.timedelta | None = None, dry_run: bool = False,
                      ) -> dict[TopicPartition, tuple[int | None, int]]:
        """Move a group's committed offsets (refused while it has live members), as
        on a log directory."""
        if not dry_run:
            self._check_writable(f"reset the offsets of group {group!r}")
        return self._groups.reset_offsets(group, topic, partitions, to=to, shift_by=shift_by,
                                          by_duration=by_duration, dry_run=dry_run)

    def alter_offsets(self, group: str, offsets: Mapping[TopicPartition, int], *,
                      dry_run: bool = False) -> dict[TopicPartition, tuple[int | None, int]]:
        if not dry_run:
            self._check_writable(f"reset the offsets of group {group!r}")
        return self._groups.alter_offsets(group, offsets, dry_run=dry_run)

    def delete_offsets(self, group: str, topics: str | Iterable[str] | None = None,
                       partitions: Iterable[int] | None = None, *,
                       dry_run: bool = False) -> list[TopicPartition]:
        raise UnsupportedError("delete_offsets", "confluent-kafka has no OffsetDelete call; "
                                                 "reset the offsets instead, or delete the "
                                                 "group")

    def delete_group(self, group: str) -> None:
        """Forget a group and its committed offsets (refused while it has members)."""
        self._check_writable(f"delete group {group!r}")
        self._groups.delete_group(group)

    def describe_queue(self, group: str) -> list[QueuePartitionDescription]:
        raise UnsupportedError("describe_queue", _QUEUES)

    def pending(self, group: str, *, topic: str | None = None, partition: int | None = None,
                member_id: int | None = None, min_idle_s: float = 0.0,
                limit: int | None = None) -> list[PendingMessage]:
        raise UnsupportedError("pending", _QUEUES)

    def pending_summary(self, group: str) -> PendingSummary:
        raise UnsupportedError("pending_summary", _QUEUES)

    def receive_with_receipts(self, group: str, topics: Iterable[str] | str, *,
                              max_messages: int = 1, visibility_s: float = 30.0,
                              timeout: float | None = 0.0,
                              **queue_options: Any) -> list[ReceivedMessage]:
        raise UnsupportedError("receive_with_receipts", _QUEUES)

    def ack_receipts(self, group: str, receipts: Iterable[str]) -> None:
        raise UnsupportedError("ack_receipts", _QUEUES)

    def nack_receipt(self, group: str, receipt: str, *, delay_s: float | None = None,
                     reason: str | None = None) -> None:
        raise UnsupportedError("nack_receipt", _QUEUES)

    def extend_receipt(self, group: str, receipt: str, visibility_s: float) -> None:
        raise UnsupportedError("extend_receipt", _QUEUES)

    def redrive(self, dlq_topic: str, offsets: Iterable[int] | None = None,
                where: Callable[[Record], bool] | None = None, *, to: str | None = None,
                partition: int | None = None, reason: str | None = None,
                dry_run: bool = False) -> int:
        raise UnsupportedError("redrive", "dead letters come from queue groups; " + _QUEUES)

    def dead_letters(self, dlq_topic: str, *, partition: int | None = None,
                     offsets: Iterable[int] | None = None, reason: str | None = None,
                     pending_only: bool = False) -> list[DeadLetter]:
        raise UnsupportedError("dead_letters", "dead letters come from queue groups; "
                               + _QUEUES)

    def purge_dead_letters(self, dlq_topic: str, offsets: Iterable[int] | None = None, *,
                           partition: int | None = None, reason: str | None = None,
                           dry_run: bool = False) -> int:
        raise UnsupportedError("purge_dead_letters", "dead letters come from queue groups; "
                               + _QUEUES)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the producers (flushing them) and consumers (leaving their groups)
        made by this log, then its own clients; idempotent."""
        if self._closed:
            return
        for client in list(self._clients):
            try:
                client.close()
            except Exception:  # a consumer's on_revoked failed: keep closing
                _log.exception("closing %r failed", client)
        self._closed = True
        self._reader.close()
        del self._groups, self._admin  # librdkafka's admin client stops when dropped

    def __enter__(self) -> ClusterLog:
        return self

    def __repr__(self) -> str:
        read_only = " read-only" if self._read_only else ""
        closed = " closed" if self._closed else ""
        return f"<mqlog.Log {self._address.url!r}{read_only}{closed}>"

