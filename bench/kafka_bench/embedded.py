"""The reference rows: the same workloads through mqlog's embedded API, no server.

On a log directory whose topics were created with durability ``none``:

* produce: ``Producer.send`` of one record per call (partition ``i % P``,
  ``linger_ms=5`` as the Kafka clients), timed until ``flush()`` returns;
* consume: a Consumer with ``assign()`` of every partition and
  ``seek_to_beginning()``, ``poll(max_records=10_000)`` until every record came;
* first record: a member of a new group (``auto_offset_reset="earliest"``)
  from ``subscribe()`` to the first ``poll()`` that returns a record.
"""

from __future__ import annotations

import os
import time

import mqlog
from kafka_bench.clients import LINGER_MS, STALL_TIMEOUT_S, Timed, WorkloadError
from mqlog.consumer import TopicPartition

POLL_MAX_RECORDS = 10_000


def produce(directory: str, topic: str, partitions: int, count: int, size: int) -> Timed:
    values = [os.urandom(size) for _ in range(64)]
    with mqlog.open(directory) as log, log.producer(linger_ms=LINGER_MS) as producer:
        start = time.perf_counter()
        for index in range(count):
            producer.send(topic, values[index & 63], partition=index % partitions)
        left = producer.flush(STALL_TIMEOUT_S)
        seconds = time.perf_counter() - start
    if left:
        raise WorkloadError(f"embedded produce: {left} records not appended")
    return Timed(count, seconds)


def consume(directory: str, topic: str, partitions: int, count: int) -> Timed:
    with mqlog.open(directory) as log:
        consumer = log.consumer()
        try:
            start = time.perf_counter()
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            consumer.seek_to_beginning()
            seen = 0
            while seen < count:
                messages = consumer.poll(timeout=STALL_TIMEOUT_S,
                                         max_records=min(POLL_MAX_RECORDS, count - seen))
                if not messages:
                    raise WorkloadError(f"embedded consume: stalled at {seen} of {count}")
                seen += len(messages)
            return Timed(seen, time.perf_counter() - start)
        finally:
            consumer.close()


def first_record_seconds(directory: str, topic: str, group: str, wait_s: float) -> float | None:
    with mqlog.open(directory) as log:
        consumer = log.consumer(group, auto_offset_reset="earliest")
        try:
            start = time.perf_counter()
            consumer.subscribe([topic])
            while time.perf_counter() - start < wait_s:
                if consumer.poll(timeout=0.05):
                    return time.perf_counter() - start
            return None
        finally:
            consumer.close()
