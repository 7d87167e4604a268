"""The producer of a cluster log: ``Producer``'s API over librdkafka's producer.

Owns a librdkafka producer and a poller thread that serves its delivery
reports every POLLER_INTERVAL_S (so that deliveries complete, and
``on_delivery`` callbacks run, without the caller polling, as with a log
directory's sender thread); a thread waiting for a result, and a thread
sending many records, serve them too, as a raw librdkafka program would. And a
cache of partition counts per topic, re-read every TOPIC_RECHECK_S, so that a
send to a missing topic or partition fails at once, as on a log directory,
rather than when librdkafka gives up on it (the poller thread drops the counts
that expired, so that a send reads no clock).

Partitioning is librdkafka's ``murmur2_random`` (as the Java client: a key
lands in the partition any Kafka client picks for it; keyless records stick
to a partition per batch), or the ``partitioner`` given. ``send`` returns a
:class:`~mqlog.Delivery` and ``send_many`` a :class:`~mqlog.BatchDelivery`,
whose results are :class:`~mqlog.RecordMetadata` as on a log directory.
What only queue groups use (``delay_s``, ``deliver_at``, ``ttl_s``,
``priority``) raises UnsupportedError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from mqlog.cluster._errors import as_mqlog_error, translated
from mqlog.errors import (
    ConfigError,
    LogClosedError,
    UnknownPartitionError,
    UnsupportedError,
)
from mqlog.producer import (
    SEND_BLOCK_S,
    TOPIC_RECHECK_S,
    BatchDelivery,
    Delivery,
    Producer,
    ProducerConfig,
    RecordMetadata,
)

Callback = Callable[[RecordMetadata | None, BaseException | None], None]
#: How long a wait for a delivery serves delivery reports in one call.
POLL_STEP_S = 0.05
#: How often the poller thread serves the delivery reports that came meanwhile:
#: in batches, so that it rarely takes the interpreter from a sending thread.
POLLER_INTERVAL_S = 0.01
#: A sending thread serves the delivery reports itself every this many sends.
SENDS_PER_POLL = 1024
#: librdkafka's "no partition chosen: let the partitioner pick".
_ANY_PARTITION = -1
#: Longest a send waits for the topic's metadata read again.
METADATA_TIMEOUT_S = 10.0


def _unknown_partition(error: KafkaException) -> bool:
    """Whether librdkafka refused a record for a partition its metadata lacks."""
    reason = error.args[0] if error.args else None
    return isinstance(reason, KafkaError) and reason.code() == KafkaError._UNKNOWN_PARTITION


#: ``_Sent._error`` until the delivery report came.
_PENDING = object()


class _Sent(Delivery):
    """The delivery of one record, and librdkafka's delivery report callback for it:
    ``send`` hands the object itself to ``produce``, so that a send makes one
    object and no bound method. The report (on a thread serving reports) keeps
    the record's partition, offset and timestamp, not librdkafka's message
    (which holds a copy of the record), so that deliveries kept by the caller
    stay small.

    ``send`` makes it with no argument (no ``__init__`` frame per send) and sets
    ``_producer``, ``_topic`` and ``_error`` (``_PENDING``). The report sets
    ``_partition``, ``_offset`` and ``_timestamp`` on success, then ``_error``
    (None, or what failed) last: done once ``_error`` is not ``_PENDING``."""

    __slots__ = ("_producer", "_topic", "_partition", "_offset", "_timestamp", "_error")
    __init__ = object.__init__  # _Sent() calls no Python

    _producer: ClusterProducer
    _topic: str
    _partition: int
    _offset: int
    _timestamp: int
    _error: object

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        """librdkafka's delivery report: ``message`` is a ``confluent_kafka.Message``,
        complete once delivered."""
        if error is None:
            self._partition = message.partition()
            self._offset = message.offset()
            self._timestamp = message.timestamp()[1]
            self._error = None
        else:
            self._error = as_mqlog_error(error, f"send to {self._topic}")

    def _metadata(self) -> RecordMetadata:
        return RecordMetadata(self._topic, self._partition, self._offset, self._timestamp)

    def done(self) -> bool:
        return self._error is not _PENDING

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait until the record is written; raise what writing it raised, or
        TimeoutError after ``timeout`` seconds."""
        if self._error is _PENDING and not self._producer.wait(self.done, timeout):
            raise TimeoutError(f"record not written within {timeout} s")
        error = self._error
        if isinstance(error, BaseException):
            raise error
        return self._metadata()


class _SentNotifying(_Sent):
    """A :class:`_Sent` whose report then calls the sender's ``on_delivery(metadata,
    error)`` (``_callback``, set by ``send``)."""

    __slots__ = ("_callback",)

    _callback: Callback

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        _Sent.__call__(self, error, message)
        failure = self._error
        if isinstance(failure, BaseException):
            self._callback(None, failure)
        else:
            self._callback(self._metadata(), None)


class _SentMany(BatchDelivery):
    """The delivery of one ``send_many``: the offsets each partition got."""

    __slots__ = ("_producer", "_pending", "_offsets", "_error", "_on_delivery")

    def __init__(self, producer: ClusterProducer, count: int,
                 on_delivery: Callable[[dict[int, range] | None, BaseException | None], None]
                 | None = None) -> None:
        self._producer = producer
        self._pending = count
        self._offsets: dict[int, list[int]] = {}
        self._error: BaseException | None = None
        self._on_delivery = on_delivery

    def report(self, error: KafkaError | None, message: Any) -> None:
        offset = message.offset()
        if error is None and offset is not None:
            span = self._offsets.setdefault(message.partition(), [offset, offset])
            span[0] = min(span[0], offset)
            span[1] = max(span[1], offset)
        elif error is not None and self._error is None:
            self._error = as_mqlog_error(error, f"send to {message.topic()}")
        self._pending -= 1
        if self._pending == 0 and self._on_delivery is not None:
            self._on_delivery(None if self._error is not None else self._ranges(), self._error)

    def _ranges(self) -> dict[int, range]:
        return {partition: range(first, last + 1)
                for partition, (first, last) in sorted(self._offsets.items())}

    def done(self) -> bool:
        return self._pending == 0

    def result(self, timeout: float | None = None) -> dict[int, range]:
        """Wait until every record is written; ``{partition: offsets}`` from the first
        to the last offset the records got there (on a cluster, another producer's
        records may fall between them)."""
        if not self._producer.wait(lambda: self._pending == 0, timeout):
            raise TimeoutError(f"records not written within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._ranges()


class ClusterProducer(Producer):
    """Sends records to a cluster's topics. Thread-safe; create with
    ``log.producer()`` (see the module)."""

    def __init__(self, config: Mapping[str, str], partition_count: Callable[[str, bool], int],
                 **options: Any) -> None:
        self.config = ProducerConfig(**options)
        settings: dict[str, Any] = {
            "partitioner": "murmur2_random",
            "linger.ms": self.config.linger_ms,
            "batch.size": max(self.config.batch_bytes, 1),
            "queue.buffering.max.kbytes": max(self.config.buffer_bytes // 1024, 1),
            "enable.idempotence": self.config.idempotent,
            "retries": self.config.retries,
            **config,
        }
        with translated("create a producer"):
            self._kafka = confluent_kafka.Producer(settings)
        #: ``produce(topic, value, key, partition, on_delivery, None, timestamp, headers)``.
        self._produce_now = self._kafka.produce
        self._partition_count = partition_count
        self._partitioner = self.config.partitioner
        #: Partition count per topic; the poller thread drops each at its expiry.
        self._counts: dict[str, int] = {}
        self._count_expiries: dict[str, float] = {}
        self._sends = 0
        self._closed = False
        self._poller = threading.Thread(target=self._poll, name="mqlog-cluster-producer",
                                        daemon=True)
        self._poller.start()

    # -- sending ---------------------------------------------------------------------

    def send(self, topic: str, value: bytes | str, *, key: bytes | str | None = None,
             headers: Mapping[str, bytes] | None = None, partition: int | None = None,
             timestamp: int | None = None, on_delivery: Callback | None = None,
             delay_s: float | None = None, deliver_at: int | None = None,
             ttl_s: float | None = None, priority: int = 0) -> Delivery:
        """Queue one record; returns at once with its :class:`~mqlog.Delivery`.
        Raises TypeError, UnknownTopicError or UnknownPartitionError before
        anything is queued; UnsupportedError for the queue-group options."""
        if delay_s is not None or deliver_at is not None or ttl_s is not None or priority:
            raise UnsupportedError("send with delay_s, deliver_at, ttl_s or priority",
                                   "they serve queue groups, which a Kafka cluster does not "
                                   "have (see docs/cluster.md)")
        if type(value) is not bytes:
            value = _as_bytes(value, "value")
        if key is not None and type(key) is not bytes:
            key = _as_bytes(key, "key")
        listed: list[tuple[str, str | bytes | None]] | None = None
        if headers is not None:
            if not isinstance(headers, Mapping):
                raise TypeError("headers must be a mapping of str to bytes")
            listed = list(headers.items())
        if timestamp is not None and (type(timestamp) is not int or timestamp < 0):
            raise TypeError(f"timestamp must be an int of ms >= 0, not {timestamp!r}")
        count = self._counts.get(topic)
        if count is None:
            count = self._recount(topic)
        if partition is not None or self._partitioner is not None:
            chosen = self._partition(topic, partition, key, count)
        else:
            chosen = _ANY_PARTITION
        if self._closed:
            raise LogClosedError("producer is closed")
        sent: _Sent
        if on_delivery is None:
            sent = _Sent()
        elif callable(on_delivery):
            notifying = _SentNotifying()
            notifying._callback = on_delivery
            sent = notifying
        else:
            raise TypeError("on_delivery must be callable(metadata, error)")
        sent._producer = self
        sent._topic = topic
        sent._error = _PENDING
        try:  # positional arguments: no keyword dict per call
            self._produce_now(topic, value, key, chosen, sent, None, timestamp or 0, listed)
        except (BufferError, KafkaException):  # queue full, or refused: the slow path
            self._produce(topic, value, key, chosen, timestamp, listed, sent)
        self._sends += 1
        if not self._sends % SENDS_PER_POLL:
            self._kafka.poll(0)
        return sent

    def send_many(self, topic: str, values: Sequence[bytes | str],
                  keys: Sequence[bytes | str | None] | None = None, *,
                  on_delivery: Callable[[dict[int, range] | None, BaseException | None], None]
                  | None = None) -> BatchDelivery:
        """Queue many records at once; keyless ones go where the partitioner puts
        them (one partition per batch), keyed ones by their key. ``on_delivery(ranges,
        error)`` is called once every record is written or one failed, on the thread
        that polls the client."""
        if on_delivery is not None and not callable(on_delivery):
            raise TypeError("on_delivery must be callable(ranges, error)")
        if isinstance(values, (str, bytes, bytearray, memoryview, Mapping)):
            raise TypeError(f"values must be a list of bytes or str, not {type(values).__name__}")
        blobs = [_as_bytes(value, "value") for value in values]
        if keys is not None and len(keys) != len(blobs):
            raise ConfigError(f"{len(keys)} keys for {len(blobs)} values")
        byte_keys = [None if key is None else _as_bytes(key, "key")
                     for key in (keys if keys is not None else [None] * len(blobs))]
        count = self._count(topic)
        many = _SentMany(self, len(blobs), on_delivery)
        if not blobs and on_delivery is not None:
            on_delivery({}, None)
        report = many.report
        for value, key in zip(blobs, byte_keys):
            self._produce(topic, value, key, self._partition(topic, None, key, count), None,
                          None, report)
        return many

    def _produce(self, topic: str, value: bytes, key: bytes | None, partition: int,
                 timestamp: int | None, headers: list[tuple[str, str | bytes | None]] | None,
                 report: Callable[[KafkaError | None, confluent_kafka.Message], None]) -> None:
        """Hand one record to librdkafka, waiting up to SEND_BLOCK_S while its queue
        is full. A partition librdkafka does not know yet, though the count
        checked says it exists (added since librdkafka read the topic's
        metadata), makes it read the metadata again, once."""
        if self._closed:
            raise LogClosedError("producer is closed")
        deadline = None
        refreshed = False
        while True:
            try:
                with translated(f"send to {topic}"):
                    try:
                        self._kafka.produce(topic, value, key, partition, on_delivery=report,
                                            timestamp=timestamp or 0, headers=headers)
                    except KafkaException as error:
                        if refreshed or not _unknown_partition(error):
                            raise
                        self._kafka.list_topics(topic, timeout=METADATA_TIMEOUT_S)
                        refreshed = True
                        continue
                return
            except BufferError:
                now = time.monotonic()
                deadline = deadline or now + SEND_BLOCK_S
                if now >= deadline:
                    raise TimeoutError(f"producer queue full for {SEND_BLOCK_S} s") from None
                self._kafka.poll(POLL_STEP_S)

    def _count(self, topic: str) -> int:
        """The topic's partition count, re-read every TOPIC_RECHECK_S
        (UnknownTopicError if there is no such topic)."""
        count = self._counts.get(topic)
        return self._recount(topic) if count is None else count

    def knows_partitions(self, topic: str) -> bool:
        """Whether a send to ``topic`` now uses the cached partition count, so that
        it makes no metadata request (asyncio callers look it up first)."""
        return topic in self._counts

    def look_up_partitions(self, topic: str) -> int:
        """Re-read ``topic``'s partition count now (UnknownTopicError); sends use
        it for the next TOPIC_RECHECK_S."""
        return self._recount(topic)

    def _recount(self, topic: str, fresh: bool = False) -> int:
        """The topic's partition count from the log (read from the cluster now
        with ``fresh``), cached for TOPIC_RECHECK_S."""
        count = self._partition_count(topic, fresh)
        self._count_expiries[topic] = time.monotonic() + TOPIC_RECHECK_S
        self._counts[topic] = count
        return count

    def _expire_counts(self) -> None:
        """Drop the partition counts read TOPIC_RECHECK_S ago or more (on the poller
        thread; a send that races with it reads the count again)."""
        now = time.monotonic()
        for topic, expiry in list(self._count_expiries.items()):
            if now >= expiry:
                self._counts.pop(topic, None)

    def _partition(self, topic: str, partition: int | None, key: bytes | None,
                   count: int) -> int:
        """The partition asked for (checked, against the count read again when it
        is beyond the cached one), the custom partitioner's choice, or
        librdkafka's to make."""
        if partition is None and self._partitioner is not None:
            partition = self._partitioner(key, count)
        if partition is None:
            return _ANY_PARTITION
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        if partition >= count:  # partitions added since the count was read?
            count = self._recount(topic, True)
        if not 0 <= partition < count:
            raise UnknownPartitionError(
                f"topic {topic!r} has partitions 0 to {count - 1}, not {partition}")
        return partition

    # -- delivery reports ---------------------------------------------------------------

    def _poll(self) -> None:
        """Serve the delivery reports, and expire partition counts, every
        POLLER_INTERVAL_S until closed."""
        kafka = self._kafka
        while not self._closed:
            kafka.poll(0)
            self._expire_counts()
            time.sleep(POLLER_INTERVAL_S)

    def wait(self, finished: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``finished()`` (a delivery completed), at most ``timeout`` s,
        serving delivery reports meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not finished():
            remaining = POLL_STEP_S if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._kafka.poll(min(remaining, POLL_STEP_S))
        return True

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Send everything queued so far; return how many records are still
        unwritten after ``timeout`` seconds (0: all written)."""
        with translated("flush"):
            return self._kafka.flush(-1 if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop; further sends raise LogClosedError."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._poller.join(timeout)

    def __enter__(self) -> ClusterProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes or str, not {type(data).__name__}")

