"""The consumer of a cluster log: ``Consumer``'s API over librdkafka's consumer.

Owns a librdkafka consumer; positions, the assignment and the group
membership are librdkafka's (the classic group protocol, so any Kafka-protocol
broker serves it), and commits are the cluster's committed offsets. Like the
consumer of a log directory it is meant for one thread; ``close`` may be
called from another.

What differs from a log directory: ``subscribe`` returns before the group has
given this member its partitions (they come with the next polls, and the
rebalance callbacks run inside ``poll``); the ``sticky`` assignor is Kafka's
``cooperative-sticky``; damaged records do not exist on a cluster
(``on_corrupt``, ``skipped_corrupt``), nor does ``zero_copy`` or
``group_check_interval_ms``: they are accepted and have no effect.
"""

from __future__ import annotations

import collections
import itertools
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

import confluent_kafka
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition as KafkaPartition

from mqlog.cluster._errors import as_mqlog_error, translated
from mqlog.cluster._reader import FETCH_QUEUE_BACKOFF_MS, Reader
from mqlog.cluster._records import as_messages
from mqlog.consumer import Consumer, ConsumerConfig, TopicPartition, check_timeout
from mqlog.errors import (
    ConfigError,
    IllegalStateError,
    LogClosedError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    UnknownPartitionError,
)
from mqlog.logstore import Message, RecordColumns, columns_of_records
from mqlog.names import validate_name

Listener = Callable[[set[TopicPartition]], None]
#: Kafka's assignor names of ConsumerConfig.assignor.
ASSIGNORS = {"range": "range", "roundrobin": "roundrobin", "sticky": "cooperative-sticky"}
#: Kafka's default session timeout; lowered to max_poll_interval_ms when that is shorter.
SESSION_TIMEOUT_MS = 45_000
#: Longest single wait inside ``poll`` (a longer timeout is several waits).
WAIT_STEP_S = 1.0
#: Longest a committed-offset lookup waits.
LOOKUP_TIMEOUT_S = 30.0


class ClusterConsumer(Consumer):
    """Reads records from a cluster's topics; see ``log.consumer`` and the module."""

    def __init__(self, config: Mapping[str, str], reader: Reader,
                 partition_count: Callable[[str], int], group: str | None = None,
                 topics: Iterable[str] | str = (), **options: Any) -> None:
        self.config = ConsumerConfig(**options)
        if group is not None:
            validate_name("group", group)
        self.group = group
        self._reader = reader
        self._partition_count = partition_count
        cfg = self.config
        settings: dict[str, Any] = {
            # Without a group, a unique group id that never commits nor joins.
            "group.id": group if group is not None else f"mqlog-assign-{uuid.uuid4().hex}",
            "client.id": cfg.client_id,
            "enable.auto.commit": cfg.enable_auto_commit and group is not None,
            "auto.commit.interval.ms": cfg.auto_commit_interval_ms,
            "auto.offset.reset": cfg.auto_offset_reset,
            "max.poll.interval.ms": cfg.max_poll_interval_ms,
            "session.timeout.ms": min(SESSION_TIMEOUT_MS, cfg.max_poll_interval_ms),
            "partition.assignment.strategy": ASSIGNORS[cfg.assignor],
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
            **config,
        }
        with translated("create a consumer"):
            self._kafka = confluent_kafka.Consumer(settings)
        self._manual = False
        self._subscribed = False
        #: Kafka's cooperative protocol: assignments come and go incrementally.
        self._cooperative = cfg.assignor == "sticky"
        self._paused: set[TopicPartition] = set()
        #: Seeks of partitions not fetched yet, which librdkafka's positions do not
        #: show until the first fetch from there.
        self._pending_seeks: dict[TopicPartition, int] = {}
        self._on_assigned: Listener | None = None
        self._on_revoked: Listener | None = None
        self._closed = False
        #: Records skipped as damaged: never, on a cluster (kept for the same API).
        self.skipped_corrupt = 0
        self.skipped_ranges: collections.deque[tuple[TopicPartition, int, int]] = (
            collections.deque(maxlen=1))
        if topics:
            self.subscribe(topics)

    # -- what to read -----------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | str | re.Pattern[str],
                  on_assigned: Listener | None = None,
                  on_revoked: Listener | None = None) -> None:
        """Join the group and consume ``topics`` (names, or a compiled regex).
        ``on_revoked`` runs before partitions are given up, ``on_assigned`` after
        new ones are taken, both inside ``poll``."""
        self._check_open()
        if self.group is None:
            raise IllegalStateError("subscribe needs a group: log.consumer(group=...)")
        if self._manual:
            raise IllegalStateError("this consumer uses assign(); it cannot also subscribe")
        if isinstance(topics, str):
            topics = [topics]
        if isinstance(topics, re.Pattern):
            names = ["^" + topics.pattern.lstrip("^")]
        else:
            names = sorted(set(topics))
            for name in names:
                self._partition_count(name)  # UnknownTopicError now, not at poll
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        with translated(f"subscribe to {', '.join(names)}"):
            self._kafka.subscribe(names, on_assign=self._assign_callback,
                                  on_revoke=self._revoke_callback, on_lost=self._lost_callback)
        self._subscribed = True

    def _assign_callback(self, _consumer: object, partitions: list[KafkaPartition]) -> None:
        """Take the partitions, then tell the user's callback (which may seek them)."""
        if self._cooperative:
            self._kafka.incremental_assign(partitions)
        else:
            self._kafka.assign(partitions)
        if self._on_assigned is not None:
            self._on_assigned(_names(partitions))

    def _revoke_callback(self, _consumer: object, partitions: list[KafkaPartition]) -> None:
        gone = _names(partitions)
        self._forget(gone)
        if self._on_revoked is not None:
            self._on_revoked(gone)

    def _lost_callback(self, _consumer: object, partitions: list[KafkaPartition]) -> None:
        self._forget(_names(partitions))

    def _forget(self, gone: set[TopicPartition]) -> None:
        """Partitions given up: no longer paused, their seeks void."""
        self._paused -= gone
        for tp in gone:
            self._pending_seeks.pop(tp, None)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership); positions of the
        partitions that stay assigned are kept."""
        self._check_open()
        if self._subscribed:
            raise IllegalStateError("this consumer subscribed; it cannot also assign()")
        wanted = sorted({TopicPartition(*tp) for tp in partitions})
        for tp in wanted:
            count = self._partition_count(tp.topic)
            if not 0 <= tp.partition < count:
                raise UnknownPartitionError(
                    f"topic {tp.topic!r} has partitions 0 to {count - 1}, not {tp.partition}")
        self._manual = True
        kept = {tp: offset for tp, offset in self._positions(self.assignment()).items()
                if offset >= 0}
        kept = {**self._pending_seeks, **kept}
        self._pending_seeks = {tp: offset for tp, offset in self._pending_seeks.items()
                               if tp in wanted}
        with translated("assign"):
            self._kafka.assign([KafkaPartition(tp.topic, tp.partition,
                                               kept.get(tp, confluent_kafka.OFFSET_INVALID))
                                for tp in wanted])
        self._paused &= set(wanted)

    def assignment(self) -> set[TopicPartition]:
        with translated("assignment"):
            return _names(self._kafka.assignment())

    # -- positions ------------------------------------------------------------------------

    def _positions(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """librdkafka's positions (negative: none yet)."""
        asked = [KafkaPartition(tp.topic, tp.partition) for tp in tps]
        if not asked:
            return {}
        with translated("position"):
            return {TopicPartition(p.topic, p.partition): p.offset
                    for p in self._kafka.position(asked)}

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return from ``tp``: the
        committed offset, or ``auto_offset_reset``'s, before the first fetch."""
        tp = self._checked(tp)
        offset = self._positions([tp])[tp]
        if offset >= 0:
            return offset
        if tp in self._pending_seeks:
            return self._pending_seeks[tp]
        committed = self.committed(tp) if self.group is not None else None
        if committed is not None:
            return committed
        policy = self.config.auto_offset_reset
        if policy == "error":
            raise NoOffsetForPartitionError(
                f"no committed offset for {tp} in group {self.group!r} and "
                f"auto_offset_reset='error'")
        start, end = self._reader.watermarks(tp.topic, tp.partition)
        return start if policy == "earliest" else end

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned from ``tp``."""
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ConfigError(f"offset must be an int >= 0, not {offset!r}")
        tp = self._checked(tp)
        self._pending_seeks.pop(tp, None)
        with translated(f"seek {tp.topic}/{tp.partition}"):
            try:
                self._kafka.seek(KafkaPartition(tp.topic, tp.partition, offset))
            except confluent_kafka.KafkaException as error:
                if error.args[0].code() != KafkaError._STATE:
                    raise
                # Not fetched yet (just assigned, in on_assigned say): start it there.
                if self._subscribed and self._cooperative:
                    self._kafka.incremental_unassign([KafkaPartition(tp.topic, tp.partition)])
                    self._kafka.incremental_assign([KafkaPartition(tp.topic, tp.partition,
                                                                   offset)])
                else:
                    self._reassign_at({tp: offset})
        # librdkafka shows no position after a seek until it fetched from there.
        self._pending_seeks[tp] = offset

    def _reassign_at(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Assign the same partitions again, ``offsets`` where given (a partition
        not fetched yet cannot seek)."""
        current = self._positions(self.assignment())
        self._kafka.assign([KafkaPartition(tp.topic, tp.partition,
                                           offsets.get(tp, self._pending_seeks.get(tp, offset)))
                            for tp, offset in sorted(current.items())])
        if self._paused:
            self._kafka.pause([KafkaPartition(*tp) for tp in self._paused])

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in self._chosen(partitions):
            self.seek(tp, self._reader.watermarks(tp.topic, tp.partition)[0])

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in self._chosen(partitions):
            self.seek(tp, self._reader.watermarks(tp.topic, tp.partition)[1])

    def seek_to_time(self, ts_ms: int, *partitions: TopicPartition) -> None:
        """Next records: the first with a timestamp >= ``ts_ms`` (all partitions
        when none are named)."""
        if not isinstance(ts_ms, int) or isinstance(ts_ms, bool):
            raise TypeError(f"ts_ms must be an int, not {type(ts_ms).__name__}")
        targets = self._chosen(partitions)
        for topic in sorted({tp.topic for tp in targets}):
            numbers = [tp.partition for tp in targets if tp.topic == topic]
            for number, offset in self._reader.offsets_for_time(topic, numbers, ts_ms).items():
                self.seek(TopicPartition(topic, number), offset)

    def pause(self, *partitions: TopicPartition) -> None:
        targets = self._chosen(partitions)
        with translated("pause"):
            self._kafka.pause([KafkaPartition(*tp) for tp in targets])
        self._paused |= set(targets)

    def resume(self, *partitions: TopicPartition) -> None:
        targets = self._chosen(partitions)
        with translated("resume"):
            self._kafka.resume([KafkaPartition(*tp) for tp in targets])
        self._paused -= set(targets)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused) & self.assignment()

    def lag(self) -> dict[TopicPartition, int]:
        """Records between each partition's position and its end offset."""
        return {tp: self._reader.watermarks(tp.topic, tp.partition)[1] - self.position(tp)
                for tp in sorted(self.assignment())}

    def _chosen(self, partitions: tuple[TopicPartition, ...]) -> list[TopicPartition]:
        if not partitions:
            return sorted(self.assignment())
        return [self._checked(tp) for tp in partitions]

    def _checked(self, tp: TopicPartition) -> TopicPartition:
        tp = TopicPartition(*tp)
        if tp not in self.assignment():
            raise IllegalStateError(f"{tp} is not assigned to this consumer")
        return tp

    # -- fetching -------------------------------------------------------------------------

    def poll(self, timeout: float | None = 0.0, max_records: int | None = None) -> list[Message]:
        """Records from the assigned partitions: at once if any are there, else
        after waiting up to ``timeout`` seconds (None: until some arrive)."""
        self._check_open()
        limit = self.config.max_poll_records if max_records is None else max_records
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError(f"max_records must be an int, not {type(limit).__name__}")
        if limit < 1:
            raise ConfigError(f"max_records must be >= 1, not {limit}")
        check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        kafka = self._kafka
        with translated("poll"):
            fetched = kafka.consume(limit, 0)
            while not fetched:
                remaining = WAIT_STEP_S if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return []
                first = kafka.poll(min(remaining, WAIT_STEP_S))
                self._check_open()
                if first is not None:
                    fetched = [first, *(kafka.consume(limit - 1, 0) if limit > 1 else ())]
        out = as_messages(fetched, self._raise)
        if self._pending_seeks:  # fetched from: librdkafka's positions hold again
            for record in out:
                self._pending_seeks.pop(TopicPartition(record.topic, record.partition), None)
        return out

    def _raise(self, error: KafkaError, message: confluent_kafka.Message) -> NoReturn:
        if error.code() in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
            topic, number = message.topic(), message.partition()
            if topic is not None and number is not None and number >= 0:
                start, end = self._reader.watermarks(topic, number)
                raise OffsetOutOfRangeError(
                    f"{topic}/{number}: the position is out of range ({error.str()}) and "
                    f"auto_offset_reset='error'", offset=message.offset() or 0,
                    start_offset=start, end_offset=end)
        raise as_mqlog_error(error, "poll")

    def poll_columns(self, timeout: float | None = 0.0,
                     max_records: int | None = None) -> list[RecordColumns]:
        """As :meth:`poll`, each partition's records as one :class:`~mqlog.RecordColumns`."""
        messages = self.poll(timeout, max_records)
        keyed = sorted(messages, key=lambda m: (m.topic, m.partition, m.offset))
        return [columns_of_records(topic, partition, list(group)) for (topic, partition), group
                in itertools.groupby(keyed, key=lambda m: (m.topic, m.partition))]

    def __iter__(self) -> Iterator[Message]:
        """Yield records forever (or until ``consumer_timeout_ms`` passes without one)."""
        quiet_s = (None if self.config.consumer_timeout_ms is None
                   else self.config.consumer_timeout_ms / 1000)
        while not self._closed:
            try:
                records = self.poll(timeout=quiet_s)
            except LogClosedError:
                return
            if not records and quiet_s is not None:
                return
            yield from records

    # -- commits ----------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None,
               metadata: str = "") -> dict[TopicPartition, int]:
        """Commit ``offsets`` (the next offset to read, per partition), or by default
        the positions of everything returned so far; CommitFailedError (or a
        subclass) when the group refuses."""
        self._check_open()
        if self.group is None:
            raise IllegalStateError("commit needs a group: log.consumer(group=...)")
        if offsets is None:
            chosen = {tp: offset for tp, offset in self._positions(self.assignment()).items()
                      if offset >= 0}
        else:
            chosen = {TopicPartition(*tp): offset for tp, offset in offsets.items()}
            for tp, offset in chosen.items():
                if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                    raise ConfigError(f"offsets must be ints >= 0, not {offset!r}")
                if not 0 <= tp.partition < self._partition_count(tp.topic):
                    raise UnknownPartitionError(f"topic {tp.topic!r} has no partition "
                                                f"{tp.partition}")
        if not chosen:
            return {}
        with translated(f"commit for group {self.group!r}"):
            results = self._kafka.commit(
                offsets=[KafkaPartition(tp.topic, tp.partition, offset, metadata=metadata)
                         for tp, offset in sorted(chosen.items())], asynchronous=False)
        for result in results or ():
            if result.error is not None:
                raise as_mqlog_error(result.error, f"commit for group {self.group!r}")
        return chosen

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or None."""
        if self.group is None:
            return None
        tp = TopicPartition(*tp)
        with translated(f"committed offsets of group {self.group!r}"):
            (found,) = self._kafka.committed([KafkaPartition(tp.topic, tp.partition)],
                                             timeout=LOOKUP_TIMEOUT_S)
        if found.error is not None:
            raise as_mqlog_error(found.error, f"committed offsets of group {self.group!r}")
        return found.offset if found.offset >= 0 else None

    # -- lifecycle ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("consumer is closed")

    def close(self) -> None:
        """Commit (with auto-commit), leave the group at once; idempotent."""
        if self._closed:
            return
        self._closed = True
        with translated("close a consumer"):
            self._kafka.close()

    def __enter__(self) -> ClusterConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _names(partitions: Iterable[KafkaPartition]) -> set[TopicPartition]:
    return {TopicPartition(p.topic, p.partition) for p in partitions}
