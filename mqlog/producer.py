"""The Producer: partitioned, batched sends on top of ``Log.append``.

Owner: a Producer owns its open batches and one sender thread. ``send``
validates a record, picks its partition and adds it to that partition's open
batch; the sender thread appends whole batches with ``Log.append`` and then
completes their deliveries. With ``linger_ms=0`` (the default) the sender takes
whatever has queued up each time it runs, so a busy producer batches by itself
and an idle one sends at once; with ``linger_ms > 0`` it waits that long for a
batch to fill (up to ``batch_bytes``).

Ordering: records sent to one partition from one thread are appended in send
order. A delivery completes when its batch is appended under the topic's
durability (``always``: flushed to disk).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import msgpack
import xxhash

from mqlog.errors import (
    ConfigError,
    LogClosedError,
    RecordTooLargeError,
    TopicExistsError,
    UnknownPartitionError,
)
from mqlog.headers import DELIVER_AT, EXPIRES_AT
from mqlog.lanes import PRIORITY_MAX, lane_topic
from mqlog.logstore import EPOCH_MAX, SEQUENCE_MAX, Engine, ProducerBatch, Record

log = logging.getLogger("mqlog.producer")

Partitioner = Callable[[bytes | None, int], int]

#: How often a producer re-reads a topic's partition count and record size limit.
TOPIC_RECHECK_S = 1.0
#: How long ``send`` waits for room when ``buffer_bytes`` are queued.
SEND_BLOCK_S = 60.0


class RecordMetadata(NamedTuple):
    """Where a sent record was written."""

    topic: str
    partition: int
    offset: int
    timestamp: int


def key_partition(key: bytes, partition_count: int) -> int:
    """The partition of a keyed record: ``xxh3_64(key) % partition_count``.

    Stable across processes, runs and versions, so one key always lands in one
    partition (while the partition count stays the same) and keeps its order.
    """
    return xxhash.xxh3_64_intdigest(key) % partition_count


@dataclasses.dataclass(frozen=True)
class ProducerConfig:
    """Producer settings (keyword arguments of ``Log.producer``).

    Attributes:
        linger_ms: how long the sender waits for more records before appending a
            batch that is not full. 0: append at once, batching only what queued
            up meanwhile (lowest latency).
        batch_bytes: a partition's batch is appended once it holds this many
            bytes (1 MiB: large batches make appends cheap; Kafka's 16 KiB is
            tuned for a network round trip mqlog does not have).
        buffer_bytes: most bytes queued and not yet appended; ``send`` blocks
            while more are queued (32 MiB, as Kafka's buffer.memory).
        partitioner: ``f(key, partition_count) -> partition``; default: keyed
            records by :func:`key_partition`, keyless ones sticky (a batch fills
            one partition, the next batch goes to the next partition).
        idempotent: number records per partition under a producer id and
            epoch (as a Kafka producer does: each append carries the sequence
            number of its first record), so that a batch retried after an error
            whose outcome was unknown (it may have been written) is written once.
        retries: how often an idempotent producer retries a batch whose append
            raised an OSError (5; without idempotence batches are not retried,
            since a retry could write them twice). Once they are used up the
            producer moves on to a new epoch: its later batches start again at
            sequence 0.
    """

    linger_ms: int = 0
    batch_bytes: int = 1024 * 1024
    buffer_bytes: int = 32 * 1024 * 1024
    partitioner: Partitioner | None = None
    idempotent: bool = False
    retries: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.idempotent, bool):
            raise ConfigError("idempotent must be a bool")
        for name in ("linger_ms", "batch_bytes", "buffer_bytes", "retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0, not {value!r}")
        if self.partitioner is not None and not callable(self.partitioner):
            raise ConfigError("partitioner must be callable(key, partition_count) -> int")


class _Batch:
    """Records queued for one partition, appended together."""

    __slots__ = ("topic", "partition", "items", "timestamps", "callbacks", "size", "created",
                 "taken", "done", "base_offset", "append_ms", "error")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.items: list = []
        #: Explicit record timestamps by index; the others get the append time.
        self.timestamps: dict[int, int] = {}
        self.callbacks: list = []
        #: Set once the sender took the batch: nothing may be added any more.
        self.taken = False
        self.size = 0
        self.created = time.monotonic()
        self.done = threading.Event()
        self.base_offset = -1
        self.append_ms = 0
        self.error: BaseException | None = None

    def metadata(self, index: int) -> RecordMetadata:
        return RecordMetadata(self.topic, self.partition, self.base_offset + index,
                              self.timestamps.get(index, self.append_ms))


class Delivery:
    """The outcome of one ``send``: wait for it with :meth:`result`."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        return self._batch.done.is_set()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait until the record is written; raise what writing it raised, or
        TimeoutError after ``timeout`` seconds."""
        batch = self._batch
        if not batch.done.wait(timeout):
            raise TimeoutError(f"record not written within {timeout} s")
        if batch.error is not None:
            raise batch.error
        return batch.metadata(self._index)


class BatchDelivery:
    """The outcome of one ``send_many``: offsets per partition."""

    __slots__ = ("_batches",)

    def __init__(self, batches: list[_Batch]) -> None:
        self._batches = batches

    def done(self) -> bool:
        return all(batch.done.is_set() for batch in self._batches)

    def result(self, timeout: float | None = None) -> dict[int, range]:
        """Wait until every record is written; return ``{partition: offsets}``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ranges: dict[int, range] = {}
        for batch in self._batches:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not batch.done.wait(remaining):
                raise TimeoutError(f"records not written within {timeout} s")
            if batch.error is not None:
                raise batch.error
            ranges[batch.partition] = range(batch.base_offset, batch.base_offset + len(batch.items))
        return ranges


def _as_bytes(value, what: str) -> bytes:
    """bytes of a str (UTF-8) or of any buffer (its bytes in C order: ``len()`` of
    an array or memoryview counts items, not bytes)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode()
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}") from None
    with view:
        return view.tobytes()


class Producer:
    """Sends records to a Log's topics. Thread-safe; create with ``Log.producer()``."""

    def __init__(self, log: Engine, **config: Any) -> None:
        self._log = log
        self.config = ProducerConfig(**config)
        # Read on every send: plain attributes rather than the config's.
        self._linger_ms = self.config.linger_ms
        self._batch_bytes = self.config.batch_bytes
        self._buffer_bytes = self.config.buffer_bytes
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._open: dict[tuple[str, int], _Batch] = {}
        self._sticky: dict[str, _Batch] = {}
        self._topic_cache: dict[str, tuple[int, int, float]] = {}
        self._queued_bytes = 0
        self._in_flight: list[_Batch] = []
        #: Batches the sender is appending right now (flush waits for them too).
        self._appending: list[_Batch] = []
        self._wake = threading.Event()
        self._closed = False
        #: Idempotence: this producer's id and epoch, and the sequence number of
        #: the next record per partition.
        self.producer_id = random.getrandbits(63) if self.config.idempotent else None
        self.epoch = 0
        self._sequences: dict[tuple[str, int], int] = {}
        self._sender = threading.Thread(target=self._run, name="mqlog-producer", daemon=True)
        self._sender.start()

    # -- sending ---------------------------------------------------------------------

    def send(self, topic: str, value: bytes | str, *, key: bytes | str | None = None,
             headers: Mapping[str, bytes] | None = None, partition: int | None = None,
             timestamp: int | None = None,
             on_delivery: Callable[[RecordMetadata | None, BaseException | None], None]
             | None = None, delay_s: float | None = None, deliver_at: int | None = None,
             ttl_s: float | None = None, priority: int = 0) -> Delivery:
        """Queue one record; returns at once with its :class:`Delivery`.

        For queue groups (``Log.queue``): ``delay_s`` or ``deliver_at`` (ms since
        the epoch) hold the record back until then; ``ttl_s`` drops it if it is
        not delivered in time. They travel as the ``mqlog.deliver_at`` and
        ``mqlog.expires_at`` headers. Plain consumers see every record at once.
        ``priority`` (0..9): queue groups hand out higher priorities first; a
        record of priority p > 0 goes to the lane topic ``<topic>.p<p>``
        (created like the topic on first use).

        Raises TypeError (wrong value, key, headers, timestamp, timing or callback
        type), ConfigError (a timing or priority out of range),
        RecordTooLargeError, UnknownTopicError or UnknownPartitionError before
        anything is queued or created.
        """
        if on_delivery is not None and not callable(on_delivery):
            raise TypeError("on_delivery must be callable(metadata, error)")
        if headers is not None and not isinstance(headers, Mapping):
            raise TypeError("headers must be a mapping of str to bytes")
        if delay_s is not None or deliver_at is not None or ttl_s is not None:
            headers = _timing_headers(headers, self._log.now_ms(), delay_s, deliver_at, ttl_s)
        if type(value) is not bytes:
            value = _as_bytes(value, "value")
        size = len(value)
        if key is not None:
            key = _as_bytes(key, "key")
            size += len(key)
        if headers is not None or timestamp is not None:
            item = Record(value, key, headers, timestamp)
            if headers:
                size += len(_encoded_headers(headers))
            if timestamp is not None:
                _check_ms("timestamp", timestamp)
        elif key is not None:
            item = Record(value, key)
        else:
            item = value
        if type(priority) is not int or priority != 0:  # _lane checks all but the default 0
            topic = self._lane(topic, priority, size, partition)
        cached = self._topic_cache.get(topic)
        if cached is None or time.monotonic() >= cached[2]:
            cached = self._refresh_topic(topic)
        limit, count = cached[0], cached[1]
        if size > limit:
            raise RecordTooLargeError(
                f"record is {size} bytes, over max_record_bytes={limit} of topic {topic!r}"
            )
        if partition is not None:
            _check_partition(topic, partition, count)
        with self._lock:
            if self._closed:
                raise LogClosedError("producer is closed")
            if self._queued_bytes + size > self._buffer_bytes:
                self._wait_for_room(size)
            if partition is not None:
                batch = self._batch_for(topic, partition)
            elif key is None and self.config.partitioner is None:
                batch = self._sticky.get(topic)
                if batch is None or batch.taken or batch.size >= self._batch_bytes:
                    batch = self._next_sticky(topic, batch, count)
            else:
                batch = self._batch_for(topic, self._partition_of(key, count))
            index = len(batch.items)
            batch.items.append(item)
            if timestamp is not None:
                batch.timestamps[index] = timestamp
            if on_delivery is not None:
                batch.callbacks.append((index, on_delivery))
            batch.size += size
            self._queued_bytes += size
            # With linger, the sender only needs to hear of a new batch (to learn its
            # deadline) or a full one; without, of anything.
            wake = not self._linger_ms or index == 0 or batch.size >= self._batch_bytes
        if wake and not self._wake.is_set():  # the sender clears it before taking batches
            self._wake.set()
        return Delivery(batch, index)

    def send_many(self, topic: str, values: Sequence[bytes | str],
                  keys: Sequence[bytes | str | None] | None = None) -> BatchDelivery:
        """Queue many records at once: the fast path. Keyless records all go to one
        partition (chosen as ``send`` would); keyed ones by their key."""
        limit, count = self._topic_limits(topic)
        if isinstance(values, (str, bytes, bytearray, memoryview, Mapping)):
            raise TypeError(f"values must be a list of bytes or str, not {type(values).__name__}")
        values = [_as_bytes(value, "value") for value in values]
        if keys is not None and len(keys) != len(values):
            raise ConfigError(f"{len(keys)} keys for {len(values)} values")
        groups: dict[int, list] = {}
        if keys is None:
            biggest = max(map(len, values), default=0)
            if biggest > limit:
                raise RecordTooLargeError(
                    f"a record is {biggest} bytes, over max_record_bytes={limit} of {topic!r}"
                )
        else:
            for value, key in zip(values, keys):
                if key is None:
                    item, size = value, len(value)
                else:
                    key = _as_bytes(key, "key")
                    item, size = Record(value, key), len(value) + len(key)
                if size > limit:
                    raise RecordTooLargeError(
                        f"a record is {size} bytes, over max_record_bytes={limit} of {topic!r}"
                    )
                target = -1 if key is None else self._partition_of(key, count)
                groups.setdefault(target, []).append(item)
        batches = []
        with self._lock:
            self._check_open()
            if keys is None:
                groups = {self._choose(topic, count): values}
            elif -1 in groups:
                groups.setdefault(self._choose(topic, count), []).extend(groups.pop(-1))
            for partition, items in groups.items():
                size = sum(len(item) if isinstance(item, bytes) else len(item.value)
                           for item in items)
                self._wait_for_room(size)
                batch = _Batch(topic, partition)  # its own batch: appended in one call
                batch.items = items
                batch.size = size
                self._queued_bytes += size
                previous = self._open.pop((topic, partition), None)
                if previous is not None:  # keep send order: earlier records first
                    self._in_flight.append(previous)
                self._in_flight.append(batch)
                batches.append(batch)
        self._wake.set()
        return BatchDelivery(batches)

    def _topic_limits(self, topic: str) -> tuple[int, int]:
        """(max_record_bytes, partition count) of a topic, re-read once a second."""
        cached = self._topic_cache.get(topic)
        if cached is None or time.monotonic() >= cached[2]:
            cached = self._refresh_topic(topic)
        return cached[0], cached[1]

    def _refresh_topic(self, topic: str) -> tuple[int, int, float]:
        log = self._log
        cached = (log.topic_config(topic).max_record_bytes, log.partition_count(topic),
                  time.monotonic() + TOPIC_RECHECK_S)
        self._topic_cache[topic] = cached
        return cached

    def _lane(self, topic: str, priority: object, size: int, partition: object) -> str:
        """The lane topic of ``priority`` for ``topic``, created on first use once a
        record of ``size`` bytes for ``partition`` is known to fit the topic."""
        if not isinstance(priority, int) or isinstance(priority, bool) or not (
            0 <= priority <= PRIORITY_MAX
        ):
            raise ConfigError(f"priority must be an int from 0 to {PRIORITY_MAX}, "
                              f"not {priority!r}")
        lane = lane_topic(topic, priority)
        if lane not in self._topic_cache:
            limit, count = self._topic_limits(topic)
            if size > limit:
                raise RecordTooLargeError(
                    f"record is {size} bytes, over max_record_bytes={limit} of topic {topic!r}")
            if partition is not None:
                _check_partition(topic, partition, count)
            base = self._log.describe_topic(topic)
            try:
                self._log.create_topic(lane, len(base.partitions),
                                       **dataclasses.asdict(base.config))
            except TopicExistsError:
                pass
        return lane

    def _partition_of(self, key: bytes | None, count: int) -> int:
        if self.config.partitioner is not None:
            return _checked_choice(self.config.partitioner(key, count), count)
        return key_partition(key, count)  # keyed: the key decides

    def _next_sticky(self, topic: str, previous: _Batch | None, count: int) -> _Batch:
        """Move a topic's keyless records on to the next partition (lock held)."""
        partition = 0 if previous is None else (previous.partition + 1) % count
        batch = self._sticky[topic] = self._batch_for(topic, partition)
        return batch

    def _choose(self, topic: str, count: int) -> int:
        """The partition keyless records of ``send_many`` go to (lock held)."""
        if self.config.partitioner is not None:
            return self._partition_of(None, count)
        batch = self._sticky.get(topic)
        if batch is None or batch.taken or batch.size >= self.config.batch_bytes:
            batch = self._next_sticky(topic, batch, count)
        return batch.partition

    def _batch_for(self, topic: str, partition: int) -> _Batch:
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._open[(topic, partition)] = _Batch(topic, partition)
        return batch

    def _wait_for_room(self, size: int) -> None:
        deadline = time.monotonic() + SEND_BLOCK_S
        while self._queued_bytes and self._queued_bytes + size > self.config.buffer_bytes:
            self._wake.set()
            if not self._room.wait(max(deadline - time.monotonic(), 0)):
                raise TimeoutError(
                    f"producer buffer full ({self._queued_bytes} bytes queued) for {SEND_BLOCK_S} s"
                )
            self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("producer is closed")

    # -- the sender thread ----------------------------------------------------------------

    def _take_ready(self, final: bool) -> list[_Batch]:
        """Batches to append now (lock held): full ones, old-enough ones, or all."""
        ready, self._in_flight = self._in_flight, []
        for batch in ready:
            batch.taken = True
        linger_s = self.config.linger_ms / 1000
        now = time.monotonic()
        for key, batch in list(self._open.items()):
            if final or not linger_s or batch.size >= self.config.batch_bytes or (
                now - batch.created >= linger_s
            ):
                batch.taken = True
                ready.append(self._open.pop(key))
        return ready

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            with self._lock:
                closing = self._closed
                ready = self._appending = self._take_ready(final=closing)
            for batch in ready:
                self._append(batch)
            if ready:
                with self._lock:
                    self._queued_bytes -= sum(batch.size for batch in ready)
                    self._room.notify_all()
            if closing:
                with self._lock:
                    if not self._open and not self._in_flight:
                        return

    def _next_wait(self) -> float | None:
        if not self.config.linger_ms:
            return None
        with self._lock:
            if not self._open:
                return None
            oldest = min(batch.created for batch in self._open.values())
        return max(oldest + self.config.linger_ms / 1000 - time.monotonic(), 0.0)

    def _append(self, batch: _Batch) -> None:
        log_ = self._log
        if not batch.items:  # a sticky batch that received nothing
            batch.done.set()
            return
        try:
            batch.append_ms = log_.now_ms()
            target = log_.partition(batch.topic, batch.partition)
            batch.base_offset = self._append_to(target, batch)
        except BaseException as error:  # delivered to whoever waits on the batch
            batch.error = error
        batch.done.set()
        for index, callback in batch.callbacks:
            try:
                if batch.error is None:
                    callback(batch.metadata(index), None)
                else:
                    callback(None, batch.error)
            except Exception:
                log.exception("on_delivery callback failed")

    def _append_to(self, target, batch: _Batch) -> int:
        """Append a batch; an idempotent producer retries an OSError with the same
        sequence numbers, so a first try that was written is not written again."""
        if self.producer_id is None:
            return self._log.append_to(target, batch.items, now_ms=batch.append_ms)
        key = (batch.topic, batch.partition)
        sequence = self._sequences.get(key, 0)
        producer = ProducerBatch(self.producer_id, self.epoch, sequence)
        for attempt in range(self.config.retries + 1):
            try:
                first = self._log.append_to(target, batch.items, now_ms=batch.append_ms,
                                            producer=producer)
            except OSError:
                if attempt == self.config.retries:
                    # Whether the batch was written is unknown: continue in a new
                    # epoch, so no later batch can be taken for a retry of this one.
                    self._next_epoch()
                    raise
                time.sleep(min(0.01 * 2 ** attempt, 1.0))
                continue
            self._sequences[key] = (sequence + len(batch.items)) % (SEQUENCE_MAX + 1)
            return first
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _next_epoch(self) -> None:
        """Start the next epoch (a new producer id after the last one): sequences
        start again at 0 in every partition."""
        if self.epoch == EPOCH_MAX:
            self.producer_id, self.epoch = random.getrandbits(63), 0
        else:
            self.epoch += 1
        self._sequences.clear()

    # -- lifecycle ----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Append everything queued so far; return how many records are still
        unwritten after ``timeout`` seconds (0: all written)."""
        with self._lock:
            for batch in self._open.values():
                batch.taken = True  # no more records into batches being flushed
            self._in_flight.extend(self._open.values())
            self._open.clear()
            pending = self._appending + self._in_flight
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for batch in pending:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            batch.done.wait(remaining)
        return sum(len(batch.items) for batch in pending if not batch.done.is_set())

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the sender; further sends raise LogClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._room.notify_all()
        self._wake.set()
        self._sender.join(timeout)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _timing_headers(headers, now_ms: int, delay_s: float | None, deliver_at: int | None,
                    ttl_s: float | None) -> dict:
    """``headers`` plus the delivery-time and expiry headers queue groups obey."""
    if delay_s is not None and deliver_at is not None:
        raise ConfigError("give delay_s or deliver_at, not both")
    merged = dict(headers or {})
    if delay_s is not None:
        _check_seconds("delay_s", delay_s, positive=False)
        deliver_at = now_ms + int(delay_s * 1000)
    if deliver_at is not None:
        _check_ms("deliver_at", deliver_at)
        merged[DELIVER_AT] = str(deliver_at).encode()
    if ttl_s is not None:
        _check_seconds("ttl_s", ttl_s, positive=True)
        merged[EXPIRES_AT] = str(now_ms + int(ttl_s * 1000)).encode()
    return merged


#: Longest delay_s or ttl_s: whole ms up to 2**53 are exact in a float, and now
#: plus that many ms still fits a 64-bit time (about 285,000 years).
SECONDS_MAX = 2**53 // 1000


def _check_seconds(name: str, value: object, positive: bool) -> None:
    """TypeError unless ``value`` is an int or float; ConfigError unless it is finite,
    at most SECONDS_MAX and at least 0 (over 0 if ``positive``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    low_ok = value > 0 if positive else value >= 0
    if not (low_ok and math.isfinite(value) and value <= SECONDS_MAX):
        raise ConfigError(f"{name} must be a number {'>' if positive else '>='} 0 and <= "
                          f"{SECONDS_MAX}, not {value!r}")


def _check_ms(name: str, value: object) -> None:
    """TypeError unless ``value`` is an int (ms since the epoch); ConfigError outside
    the 64-bit range of record timestamps."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int (ms since the epoch)")
    if not -(2**63) <= value < 2**63:
        raise ConfigError(f"{name} {value} is out of the 64-bit range")


def _encoded_headers(headers) -> bytes:
    """The headers as the log stores them (checks their types; the size counts
    toward max_record_bytes)."""
    if not isinstance(headers, Mapping):
        raise TypeError("headers must be a mapping of str to bytes")
    clean = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, not {type(name).__name__}")
        clean[name] = _as_bytes(value, f"header {name!r}")
    return msgpack.packb(clean, use_bin_type=True)


def _check_partition(topic: str, partition: object, count: int) -> None:
    if not isinstance(partition, int) or isinstance(partition, bool):
        raise TypeError(f"partition must be an int, not {type(partition).__name__}")
    if not 0 <= partition < count:
        raise UnknownPartitionError(
            f"topic {topic!r} has no partition {partition}: it has partitions 0..{count - 1}"
        )


def _checked_choice(partition: object, count: int) -> int:
    if not isinstance(partition, int) or not 0 <= partition < count:
        raise ConfigError(f"partitioner returned {partition!r}, not a partition in 0..{count - 1}")
    return partition
