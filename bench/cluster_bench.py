"""The cost of mqlog's cluster wrapper: ``mqlog.open("kafka://...")`` against raw
confluent-kafka on the same broker, in the same run; JSON lines on stdout.

Brokers: ``mqlog serve`` (durability none) and Tansu 0.6.0 (memory storage),
both started and stopped by the harness (kafka_bench.brokers). On each, for
``--records`` records of 100 B (default 200,000), alternating the two clients
``--repeat`` times (default 3; the median is reported), each run on a topic of
its own with one partition. Both sides deliver the same information, as a
real program needs it:

* ``send``: raw ``Producer.produce(topic, value, on_delivery=report)`` whose
  callback reads each record's partition and offset (``poll(0)`` every 1,000
  sends, ``BufferError`` retried after ``poll``), against the cluster log's
  ``Producer.send``, whose ``Delivery`` reads them from the same report (the
  loop drops it, as raw's callback drops its figures); then ``flush``, until
  every record is acknowledged; both with the same librdkafka settings
  (``linger.ms=5``, 1 MiB batches, ``murmur2_random``);
* ``send_kept``: the same, each outcome kept until the end, as a program that
  looks at them later: raw's callback appends ``(partition, offset)`` to a
  list, the wrapper's loop appends each ``Delivery``;
* ``poll``: the same records read back from offset 0 with ``assign``: raw
  ``Consumer.consume(500, 1.0)``, each message checked for an error and turned
  into a tuple ``(key, value, headers, timestamp, offset)`` in a list, against
  the cluster log's ``Consumer.poll(1.0, max_records=500)``, a list of mqlog
  ``Message`` (which carry ``topic`` and ``partition`` too).

Figures: records/s (wall clock) and CPU microseconds per record of this process
(librdkafka's threads included), for each client; ``overhead_pct`` compares
the wrapper's records/s with raw's (the requirement: at most 15 % slower),
``cpu_overhead_pct`` its CPU per record with raw's.
Every line carries the 1-minute load average when it started: this machine
is shared, so the rates are noisy; CPU per record is steadier.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from kafka_bench import brokers
from kafka_bench.brokers import TopicSpec

import mqlog
from mqlog.cluster._reader import FETCH_QUEUE_BACKOFF_MS

BENCH = "cluster_wrapper"
VALUE = b"x" * 100
PRODUCER_SETTINGS = {"linger.ms": 5, "batch.size": 1024 * 1024,
                     "queue.buffering.max.kbytes": 32 * 1024, "partitioner": "murmur2_random"}
#: The wrapper's equivalent of PRODUCER_SETTINGS.
WRAPPER_PRODUCER = {"linger_ms": 5, "batch_bytes": 1024 * 1024, "buffer_bytes": 32 * 1024 * 1024}
POLL_EVERY = 1000
MAX_RECORDS = 500


def raw_send(bootstrap: str, topic: str, records: int, keep: bool) -> tuple[float, float]:
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS})
    placed: list[tuple[int, int]] = []
    last = [(-1, -1)]
    failed: list[object] = []
    add = placed.append

    def report(error: object, message: Any) -> None:
        if error is None:
            add((message.partition(), message.offset()))
        else:
            failed.append(error)

    def report_last(error: object, message: Any) -> None:
        if error is None:
            last[0] = (message.partition(), message.offset())
        else:
            failed.append(error)

    callback = report if keep else report_last

    def work() -> None:
        produce = producer.produce
        for n in range(records):
            while True:
                try:
                    produce(topic, VALUE, on_delivery=callback)
                    break
                except BufferError:
                    producer.poll(0.05)
            if n % POLL_EVERY == 0:
                producer.poll(0)
        producer.flush()

    figures = timed(work, records)
    assert not failed, failed[:1]
    if keep:
        assert len(placed) == records and placed[-1] == (0, records - 1), placed[-1:]
    else:
        assert last[0] == (0, records - 1), last[0]
    return figures


def wrapper_send(url: str, topic: str, records: int, keep: bool) -> tuple[float, float]:
    with mqlog.open(url) as log, log.producer(**WRAPPER_PRODUCER) as producer:
        producer.send(topic, VALUE).result(60)  # the topic's metadata, as raw's first produce
        deliveries: list[mqlog.Delivery] = []

        def work() -> None:
            send = producer.send
            if keep:
                add = deliveries.append
                for _ in range(records):
                    add(send(topic, VALUE))
            else:
                for _ in range(records):
                    send(topic, VALUE)
            producer.flush()

        figures = timed(work, records)
        if keep:
            assert all(delivery.done() for delivery in deliveries)
            assert deliveries[-1].result(0).offset == records, deliveries[-1].result(0)
        else:
            assert producer.send(topic, VALUE).result(60).offset == records + 1
    return figures


def raw_poll(bootstrap: str, topic: str, records: int) -> tuple[float, float]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                         "enable.auto.commit": False,
                         # the wrapper's setting (FETCH_QUEUE_BACKOFF_MS), so that
                         # both sides fetch alike
                         "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    first = consumer.consume(1, 30.0)  # connected and fetching, as the wrapper's

    def work() -> None:
        got = len(first)
        while got < records:
            batch = []
            # consume() waits until it has as many as asked (or the timeout):
            # never ask for more than are left
            for message in consumer.consume(min(MAX_RECORDS, records - got), 1.0):
                if message.error() is not None:
                    raise RuntimeError(message.error())
                batch.append((message.key(), message.value(), message.headers(),
                              message.timestamp()[1], message.offset()))
            got += len(batch)

    figures = timed(work, records)
    consumer.close()
    return figures


def wrapper_poll(url: str, topic: str, records: int) -> tuple[float, float]:
    with mqlog.open(url) as log, log.consumer(auto_offset_reset="earliest") as consumer:
        consumer.assign([mqlog.TopicPartition(topic, 0)])
        first = consumer.poll(30.0, max_records=1)  # connected and fetching, as raw's

        def work() -> None:
            got = len(first)
            while got < records:
                got += len(consumer.poll(1.0, max_records=MAX_RECORDS))

        return timed(work, records)


def timed(work: Callable[[], None], records: int) -> tuple[float, float]:
    """(records/s, CPU µs per record of this process) of ``work`` (clients made and
    connected before, closed after: only sending or reading is timed)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return records / wall, cpu / records * 1e6


def measure(broker: brokers.Broker, records: int, repeat: int) -> list[dict]:
    url = f"kafka://{broker.bootstrap}"
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for attempt in range(repeat):
        for client in (("raw", "wrapper") if attempt % 2 == 0 else ("wrapper", "raw")):
            topic = f"{client}-{attempt}"
            if client == "raw":
                sent = raw_send(broker.bootstrap, topic, records, keep=False)
                read = raw_poll(broker.bootstrap, topic, records)
                kept = raw_send(broker.bootstrap, f"{topic}-kept", records, keep=True)
            else:
                sent = wrapper_send(url, topic, records, keep=False)
                read = wrapper_poll(url, topic, records)
                kept = wrapper_send(url, f"{topic}-kept", records, keep=True)
            runs.setdefault(("send", client), []).append(sent)
            runs.setdefault(("poll", client), []).append(read)
            runs.setdefault(("send_kept", client), []).append(kept)
            print(f"{broker.target} attempt {attempt} {client} done", file=sys.stderr)
    lines = []
    for workload in ("send", "send_kept", "poll"):
        figures = {}
        for client in ("raw", "wrapper"):
            rates, cpus = zip(*runs[(workload, client)])
            figures[client] = (statistics.median(rates), statistics.median(cpus))
        raw_rate, wrapper_rate = figures["raw"][0], figures["wrapper"][0]
        lines.append({
            "bench": BENCH, "workload": workload, "target": broker.target,
            "records": records, "repeat": repeat, "value_bytes": len(VALUE),
            "raw_records_per_s": round(raw_rate), "wrapper_records_per_s": round(wrapper_rate),
            "raw_cpu_us_per_record": round(figures["raw"][1], 2),
            "wrapper_cpu_us_per_record": round(figures["wrapper"][1], 2),
            "overhead_pct": round((raw_rate - wrapper_rate) / raw_rate * 100, 1),
            "cpu_overhead_pct": round((figures["wrapper"][1] - figures["raw"][1])
                                      / figures["raw"][1] * 100, 1),
            "load_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "machine": platform.machine()})
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=["mqlog-none", "tansu"],
                        choices=["mqlog-none", "tansu"])
    args = parser.parse_args()
    topics = [TopicSpec(f"{client}-{attempt}{kept}", 1) for attempt in range(args.repeat)
              for client in ("raw", "wrapper") for kept in ("", "-kept")]
    for target in args.targets:
        load = round(os.getloadavg()[0], 2)
        with brokers.started(target, topics) as broker:
            for line in measure(broker, args.records, args.repeat):
                print(json.dumps({**line, "load_1m_start": load}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
