"""Throughput and first-record workloads through a Kafka client (confluent-kafka).

* produce: ``count`` records of ``size`` random bytes, partition ``i % P`` for
  record ``i`` (every partition gets its share), no key, ``linger.ms=5``, other
  settings librdkafka's defaults (``acks=all``, no idempotence); timed from the
  first ``produce()`` until every delivery report has arrived (``flush()``).
  A delivery error fails the measurement.
* consume: a consumer with ``assign()`` of every partition from the beginning
  (no group membership, no commits) until it has received ``count`` records;
  connected and the topic's metadata read first (as the producer), then timed
  from ``assign()``.
* first record: a member of a new group ``subscribe()``s to a topic that holds
  records (``auto.offset.reset=earliest``); the time from ``subscribe()`` until
  ``poll()`` first returns a record, or a timeout after ``wait_s``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

LINGER_MS = 5
#: Records asked of one ``consume()`` call. Not more: librdkafka's
#: ``consume(n)`` returns only once it has ``n`` records, and a broker that
#: answers a Fetch of 8 partitions with each partition's 1 MiB (as Kafka
#: does) had the first ``consume(10_000)`` wait until the client had parsed
#: the whole 8 MB response (first record after 47-77 ms; 5-16 ms with 500).
CONSUME_BATCH = 500
#: A consume that receives nothing for this long has lost records: it fails.
STALL_TIMEOUT_S = 60.0


class WorkloadError(RuntimeError):
    """A measurement that could not complete (delivery errors, a stalled consumer)."""


@dataclass(frozen=True)
class Timed:
    """``records`` records moved in ``seconds``."""

    records: int
    seconds: float


def producer(bootstrap: str, linger_ms: int = LINGER_MS, **settings: object) -> Producer:
    """A producer with the benchmark's settings (and librdkafka ``settings``)."""
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": linger_ms,
                     "enable.idempotence": False, **settings})


def produce(bootstrap: str, topic: str, partitions: int, count: int, size: int) -> Timed:
    """Produce ``count`` records and wait for every delivery report."""
    failures: list[str] = []

    def report(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    client = producer(bootstrap, on_delivery=report)
    values = [os.urandom(size) for _ in range(64)]
    client.list_topics(topic, timeout=30)  # connect and learn the topic before timing
    start = time.perf_counter()
    for index in range(count):
        value = values[index & 63]
        while True:
            try:
                client.produce(topic, value, partition=index % partitions)
                break
            except BufferError:  # the client's queue is full: serve delivery reports
                client.poll(0.01)
        if index & 1023 == 0:
            client.poll(0)
    left = client.flush(STALL_TIMEOUT_S)
    seconds = time.perf_counter() - start
    if left or failures:
        raise WorkloadError(f"produce: {left} records undelivered, {len(failures)} failed "
                            f"(first: {failures[:1]})")
    return Timed(count, seconds)


#: librdkafka settings of the consume workload's consumer; ``--consumer-config``
#: adds to or overrides them. librdkafka stops fetching a partition for
#: ``fetch.queue.backoff.ms`` (1,000 ms by default) whenever its local queue
#: holds ``queued.min.messages`` (100,000): a broker that answers fetches faster
#: than the Python loop drains them fills that queue and is then left idle for a
#: second, so with the default the figure measures that pause, not the broker
#: (on one machine, 1,500,000 records of 100 B on one partition: 430,000
#: records/s from mqlog serve against 1,350,000 from Tansu, whose answers
#: never filled the queue; 1,370,000-1,490,000 and 1,300,000-1,470,000 with
#: 10 ms). 10 ms is a fraction of the time the loop takes to drain the queue.
CONSUMER_CONFIG: dict[str, str] = {"fetch.queue.backoff.ms": "10"}


def consume(bootstrap: str, topic: str, partitions: int, count: int) -> Timed:
    """Receive ``count`` records with ``assign()`` from the beginning."""
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-bench-assign",
                       "enable.auto.commit": False, "enable.partition.eof": False,
                       **CONSUMER_CONFIG})
    try:
        client.list_topics(topic, timeout=30)  # connect and learn the topic before timing
        start = time.perf_counter()
        client.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        seen = 0
        last_progress = time.monotonic()
        while seen < count:
            messages = client.consume(min(CONSUME_BATCH, count - seen), timeout=0.5)
            for message in messages:
                if message.error() is not None:
                    raise WorkloadError(f"consume: {message.error()}")
            if messages:
                seen += len(messages)
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL_TIMEOUT_S:
                raise WorkloadError(f"consume: stalled at {seen} of {count} records")
        return Timed(seen, time.perf_counter() - start)
    finally:
        client.close()


def first_record_seconds(bootstrap: str, topic: str, group: str, wait_s: float) -> float | None:
    """Seconds from ``subscribe()`` to the first record; None after ``wait_s``."""
    client = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        start = time.perf_counter()
        client.subscribe([topic])
        while time.perf_counter() - start < wait_s:
            message = client.poll(0.05)
            if message is not None and message.error() is None:
                return time.perf_counter() - start
        return None
    finally:
        client.close()
