"""The Producer: partitioned, batched sends on top of the engine's appends.

Owns: the batches being filled (``_open``: one per partition, plus per topic
the sticky one its keyless records fill, ``_sticky``), the batches handed to
the sender (``_in_flight``), the count of bytes queued and not yet appended
(``_queued_bytes``, at most ``buffer_bytes`` unless one record is bigger), the
topic cache (record size limit and partition count per topic, re-read every
TOPIC_RECHECK_S) and ``_closed``. All but the cache change only under
``_lock``. ``send`` validates a record, picks its partition and adds it to that
partition's open batch; the sender thread (:mod:`mqlog.producer._sender`, the
base class) appends whole batches with ``Engine.append_to`` and then completes
their deliveries. With ``linger_ms=0`` (the default) the sender takes whatever
has queued up each time it runs, so a busy producer batches by itself and an
idle one sends at once; with ``linger_ms > 0`` it waits that long for a batch
to fill (up to ``batch_bytes``).

Ordering: records sent to one partition from one thread are appended in send
order. A delivery completes when its batch is appended under the topic's
durability (``always``: flushed to disk).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mqlog.errors import (
    ConfigError,
    LogClosedError,
    RecordTooLargeError,
    TopicExistsError,
)
from mqlog.lanes import PRIORITY_MAX, lane_topic
from mqlog.logstore import Engine, Record
from mqlog.producer._batches import Batch, BatchDelivery, Delivery, RecordMetadata
from mqlog.producer._config import ProducerConfig
from mqlog.producer._partitioning import check_partition, keyed_partition, sticky_partition
from mqlog.producer._records import as_bytes, encoded_headers
from mqlog.producer._sender import Sender
from mqlog.producer._timing import check_ms, timing_headers

#: How often a producer re-reads a topic's partition count and record size limit.
TOPIC_RECHECK_S = 1.0
#: How long ``send`` waits for room when ``buffer_bytes`` are queued.
SEND_BLOCK_S = 60.0


class Producer(Sender):
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
        self._open: dict[tuple[str, int], Batch] = {}
        self._sticky: dict[str, Batch] = {}
        self._topic_cache: dict[str, tuple[int, int, float]] = {}
        self._queued_bytes = 0
        self._in_flight: list[Batch] = []
        self._wake = threading.Event()
        self._closed = False
        self._start_sender()

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
            headers = timing_headers(headers, self._log.now_ms(), delay_s, deliver_at, ttl_s)
        if type(value) is not bytes:
            value = as_bytes(value, "value")
        size = len(value)
        if key is not None:
            key = as_bytes(key, "key")
            size += len(key)
        item: Record | bytes
        if headers is not None or timestamp is not None:
            item = Record(value, key, headers, timestamp)
            if headers:
                size += len(encoded_headers(headers))
            if timestamp is not None:
                check_ms("timestamp", timestamp)
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
            check_partition(topic, partition, count)
        batch: Batch | None
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
                batch = self._batch_for(topic, keyed_partition(self.config.partitioner, key, count))
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
                  keys: Sequence[bytes | str | None] | None = None, *,
                  on_delivery: Callable[[dict[int, range] | None, BaseException | None], None]
                  | None = None) -> BatchDelivery:
        """Queue many records at once: the fast path. Keyless records all go to one
        partition (chosen as ``send`` would); keyed ones by their key.

        ``on_delivery(ranges, error)`` is called once, on the sender thread, when
        every record is written (``ranges``: what ``BatchDelivery.result`` returns)
        or with the first error."""
        if on_delivery is not None and not callable(on_delivery):
            raise TypeError("on_delivery must be callable(ranges, error)")
        limit, count = self._topic_limits(topic)
        if isinstance(values, (str, bytes, bytearray, memoryview, Mapping)):
            raise TypeError(f"values must be a list of bytes or str, not {type(values).__name__}")
        blobs = [as_bytes(value, "value") for value in values]
        if keys is not None and len(keys) != len(blobs):
            raise ConfigError(f"{len(keys)} keys for {len(blobs)} values")
        groups: dict[int, list] = {}
        if keys is None:
            biggest = max(map(len, blobs), default=0)
            if biggest > limit:
                raise RecordTooLargeError(
                    f"a record is {biggest} bytes, over max_record_bytes={limit} of {topic!r}"
                )
        else:
            item: bytes | Record
            for value, key in zip(blobs, keys):
                if key is None:
                    item, size = value, len(value)
                else:
                    key = as_bytes(key, "key")
                    item, size = Record(value, key), len(value) + len(key)
                if size > limit:
                    raise RecordTooLargeError(
                        f"a record is {size} bytes, over max_record_bytes={limit} of {topic!r}"
                    )
                target = -1 if key is None else keyed_partition(self.config.partitioner, key, count)
                groups.setdefault(target, []).append(item)
        batches = []
        with self._lock:
            self._check_open()
            if keys is None:
                groups = {self._choose(topic, count): blobs}
            elif -1 in groups:
                groups.setdefault(self._choose(topic, count), []).extend(groups.pop(-1))
            for partition, items in groups.items():
                size = sum(len(item) if isinstance(item, bytes) else len(item.value)
                           for item in items)
                self._wait_for_room(size)
                batch = Batch(topic, partition)  # its own batch: appended in one call
                batch.items = items
                batch.size = size
                self._queued_bytes += size
                previous = self._open.pop((topic, partition), None)
                if previous is not None:  # keep send order: earlier records first
                    self._in_flight.append(previous)
                self._in_flight.append(batch)
                batches.append(batch)
            delivery = BatchDelivery(batches)
            if on_delivery is not None:  # before the sender can take the batches
                delivery.when_done(on_delivery)
        self._wake.set()
        return delivery

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
                check_partition(topic, partition, count)
            base = self._log.describe_topic(topic)
            try:
                self._log.create_topic(lane, len(base.partitions),
                                       **dataclasses.asdict(base.config))
            except TopicExistsError:
                pass
        return lane

    def _next_sticky(self, topic: str, previous: Batch | None, count: int) -> Batch:
        """Move a topic's keyless records on to the next partition (lock held)."""
        partition = sticky_partition(previous, count)
        batch = self._sticky[topic] = self._batch_for(topic, partition)
        return batch

    def _choose(self, topic: str, count: int) -> int:
        """The partition keyless records of ``send_many`` go to (lock held)."""
        if self.config.partitioner is not None:
            return keyed_partition(self.config.partitioner, None, count)
        batch = self._sticky.get(topic)
        if batch is None or batch.taken or batch.size >= self.config.batch_bytes:
            batch = self._next_sticky(topic, batch, count)
        return batch.partition

    def _batch_for(self, topic: str, partition: int) -> Batch:
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._open[(topic, partition)] = Batch(topic, partition)
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

    def __exit__(self, *exc_info: object) -> None:
        self.close()
