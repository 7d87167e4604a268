"""Reads by offset, offsets and time lookups on a cluster: one assign-only consumer.

Owns a librdkafka consumer that never joins a group nor commits (its group id
is unique and unused), behind a lock: one read at a time. A read assigns the
partition at the offset asked for (unless the previous read stopped right
there, mid-stream, and the fetched records that follow are already queued)
and takes records until it has enough, or librdkafka reports the end of the
partition (``enable.partition.eof``), so it never waits for records that are
not written. ``auto.offset.reset=error``: an offset outside the partition's
range is reported, and raised as OffsetOutOfRangeError with the range.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping

import confluent_kafka
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition as KafkaPartition

from mqlog.cluster._errors import as_mqlog_error, translated
from mqlog.cluster._records import as_message
from mqlog.errors import ConfigError, MqlogError, OffsetOutOfRangeError
from mqlog.logstore import Message

#: Longest a read waits for the cluster before giving up (a leaderless partition).
READ_TIMEOUT_S = 30.0
#: Longest an offset lookup (ListOffsets) waits.
LOOKUP_TIMEOUT_S = 30.0
#: Most records taken from librdkafka's queue in one call.
CONSUME_CHUNK = 1000
#: How long a read waits for the next fetched record before it asks the leader
#: whether the partition has more.
WAIT_STEP_S = 0.1
#: librdkafka's ``fetch.queue.backoff.ms`` of every consumer of a cluster log (a
#: URL option overrides it): librdkafka stops fetching a partition for that
#: long whenever its local queue holds ``queued.min.messages`` (100,000), 1 s
#: by default, so a consumer catching up on a backlog from a fast broker read
#: for a moment and then idled the rest of each second. 10 ms is no longer
#: than the program takes to drain a fraction of that queue.
FETCH_QUEUE_BACKOFF_MS = 10


class Reader:
    """Thread-safe reads and offset lookups (see the module)."""

    def __init__(self, config: Mapping[str, str]) -> None:
        settings = {"fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS, **config,
                    "group.id": f"mqlog-reader-{uuid.uuid4().hex}",
                    "enable.auto.commit": False, "enable.auto.offset.store": False,
                    "enable.partition.eof": True, "auto.offset.reset": "error",
                    "fetch.wait.max.ms": 100}
        with translated("connect to the cluster"):
            self._consumer = confluent_kafka.Consumer(settings)
        self._lock = threading.Lock()
        #: (topic, partition, offset) where the last read stopped before the end.
        self._continues: tuple[str, int, int] | None = None

    def read(self, topic: str, partition: int, offset: int, max_records: int,
             max_bytes: int | None) -> list[Message]:
        """Up to ``max_records`` records from ``offset`` (and up to ``max_bytes`` of
        keys and values, at least one record); [] at the end offset."""
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ConfigError(f"offset must be an int >= 0, not {offset!r}")
        if not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 1:
            raise ConfigError(f"max_records must be an int >= 1, not {max_records!r}")
        with self._lock:
            return self._read(topic, partition, offset, max_records, max_bytes)

    def _read(self, topic: str, partition: int, offset: int, max_records: int,
              max_bytes: int | None) -> list[Message]:
        consumer = self._consumer
        if self._continues != (topic, partition, offset):
            with translated(f"read {topic}/{partition}"):
                consumer.assign([KafkaPartition(topic, partition, offset)])
        self._continues = None
        out: list[Message] = []
        used = 0
        position = offset
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(out) < max_records:
            with translated(f"read {topic}/{partition}"):
                fetched = consumer.consume(min(max_records - len(out), CONSUME_CHUNK), 0)
                if not fetched:
                    one = consumer.poll(WAIT_STEP_S)
                    fetched = [] if one is None else [one]
            if not fetched:
                # librdkafka reports the end of a partition once per offset: asked
                # again at the same end, it stays silent, so ask the leader.
                start, end = self.watermarks(topic, partition)
                if not out and not start <= offset <= end:
                    raise _out_of_range(topic, partition, offset, start, end)
                if position >= end:
                    return out
                if time.monotonic() > deadline:
                    raise MqlogError(f"read {topic}/{partition}: no answer from the "
                                     f"cluster within {READ_TIMEOUT_S:g} s")
                continue
            for message in fetched:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return out
                    if self._stale(topic, partition, position, error) and (
                            time.monotonic() < deadline):
                        with translated(f"read {topic}/{partition}"):
                            consumer.assign([KafkaPartition(topic, partition, position)])
                        break  # the records after it are fetched again from there
                    self._fail(topic, partition, offset, error)
                record = as_message(message)
                size = len(record.value) + len(record.key or b"")
                if max_bytes is not None and out and used + size > max_bytes:
                    return out  # the queued records after it are read again by a reassign
                used += size
                out.append(record)
                position = record.offset + 1
        self._continues = (topic, partition, position)
        return out

    def _stale(self, topic: str, partition: int, position: int, error: KafkaError) -> bool:
        """Whether ``error`` is an out-of-range report left queued by an earlier
        read (``position``, where this read stands, is in the partition's range)."""
        if error.code() not in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
            return False
        start, end = self.watermarks(topic, partition)
        return start <= position <= end

    def _fail(self, topic: str, partition: int, offset: int, error: KafkaError) -> None:
        """Raise a fetch error: out of range with the partition's range, else as is."""
        if error.code() in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
            raise _out_of_range(topic, partition, offset, *self.watermarks(topic, partition))
        raise as_mqlog_error(error, f"read {topic}/{partition}")

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(log start offset, end offset) of a partition, asked of its leader. A
        partition added since librdkafka last read the topic's metadata is looked
        up again."""
        asked = KafkaPartition(topic, partition)
        with translated(f"offsets of {topic}/{partition}"):
            try:
                low, high = self._consumer.get_watermark_offsets(
                    asked, timeout=LOOKUP_TIMEOUT_S, cached=False)
            except confluent_kafka.KafkaException as error:
                if error.args[0].code() != KafkaError._UNKNOWN_PARTITION:
                    raise
                self._consumer.list_topics(topic, timeout=LOOKUP_TIMEOUT_S)
                low, high = self._consumer.get_watermark_offsets(
                    asked, timeout=LOOKUP_TIMEOUT_S, cached=False)
        return low, high

    def offsets_for_time(self, topic: str, partitions: list[int],
                         ts_ms: int) -> dict[int, int]:
        """The first offset stamped at or after ``ts_ms`` in each partition (the end
        offset where there is none)."""
        with translated(f"offsets for time of {topic}"):
            found = self._consumer.offsets_for_times(
                [KafkaPartition(topic, number, ts_ms) for number in partitions],
                timeout=LOOKUP_TIMEOUT_S)
        out = {}
        for entry in found:
            if entry.error is not None:
                raise as_mqlog_error(entry.error, f"offsets for time of {topic}")
            out[entry.partition] = (entry.offset if entry.offset >= 0
                                    else self.watermarks(topic, entry.partition)[1])
        return out

    def close(self) -> None:
        with self._lock:
            self._consumer.close()


def _out_of_range(topic: str, partition: int, offset: int, start: int,
                  end: int) -> OffsetOutOfRangeError:
    return OffsetOutOfRangeError(
        f"offset {offset} is out of range for {topic}/{partition}: valid offsets are "
        f"{start} to {end}", offset=offset, start_offset=start, end_offset=end)
