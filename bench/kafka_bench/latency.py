"""End-to-end latency: a producer process to a consumer process at a fixed rate.

The harness process produces; a consumer runs in a child process (started with
``multiprocessing``'s spawn method) on the same host. Each value starts with
``time.monotonic_ns()`` read just before the send (CLOCK_MONOTONIC: one clock
for every process on Linux); the consumer reads the clock once when a
``consume``/``poll`` call returns and takes the difference for every record it
returned.

Sequence: the child assigns every partition of a fresh, empty topic from the
beginning, fetches once and says ready; the producer then sends ``warmup``
records followed by ``count`` measured ones at ``rate`` records/s (it sleeps
until the next record is due, then sends every record that is due) and waits
for their delivery; the child stops after ``warmup + count`` records and
returns the measured records' latencies. Warm-up records are not counted.

Kafka clients: confluent-kafka, the producer with ``linger.ms`` as given
(0: the broker's latency without the client's batching delay), the consumer
with librdkafka's defaults (``fetch.wait.max.ms`` 500, ``fetch.min.bytes`` 1:
a fetch returns as soon as a record is there).
Embedded: ``Producer.send`` (``linger_ms`` as given) and a Consumer with ``assign``
on the same log directory.
"""

from __future__ import annotations

import multiprocessing
import os
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import _common
import numpy as np

STAMP = struct.Struct("<Q")
#: How long the child may take to get ready, and to receive the last record.
CHILD_TIMEOUT_S = 60.0
POLL_TIMEOUT_S = 0.1


def _kafka_receiver(bootstrap: str, topic: str, partitions: int
                    ) -> tuple[Callable[[], list[bytes]], Callable[[], None]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    client = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-bench-latency",
                       "enable.auto.commit": False, "enable.partition.eof": False})
    client.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])

    def receive() -> list[bytes]:
        # poll(), not consume(n): consume waits until n records came or its
        # timeout passed, which would be measured as latency.
        message = client.poll(POLL_TIMEOUT_S)
        if message is None or message.error() is not None:
            return []
        return [message.value() or b""]

    return receive, client.close


def _embedded_receiver(directory: str, topic: str, partitions: int
                       ) -> tuple[Callable[[], list[bytes]], Callable[[], None]]:
    import mqlog
    from mqlog.consumer import TopicPartition

    log = mqlog.open(directory)
    client = log.consumer()
    client.assign([TopicPartition(topic, p) for p in range(partitions)])
    client.seek_to_beginning()

    def receive() -> list[bytes]:
        return [m.value for m in client.poll(timeout=POLL_TIMEOUT_S)]

    def close() -> None:
        client.close()
        log.close()

    return receive, close


def _child(kind: str, where: str, topic: str, partitions: int, warmup: int, count: int,
           channel: Connection) -> None:
    """The consumer process: say ready, receive until ``warmup + count`` records
    came or none came for CHILD_TIMEOUT_S, send back how many records came and
    the measured latencies (ns)."""
    opener = _kafka_receiver if kind == "kafka" else _embedded_receiver
    receive, close = opener(where, topic, partitions)
    try:
        receive()
        channel.send("ready")
        latencies = np.empty(count, dtype=np.int64)
        seen = 0
        total = warmup + count
        unpack = STAMP.unpack_from
        last_progress = time.monotonic()
        while seen < total and time.monotonic() - last_progress < CHILD_TIMEOUT_S:
            values = receive()
            now = time.monotonic_ns()
            for value in values:
                if seen >= warmup:
                    latencies[seen - warmup] = now - unpack(value)[0]
                seen += 1
            if values:
                last_progress = time.monotonic()
        channel.send((seen, latencies[: max(0, seen - warmup)].tobytes()))
    finally:
        close()


def _wait(channel: Connection, child: BaseProcess, what: str) -> Any:
    """The child's next message; raise if it exits or stays silent."""
    ready = wait([channel, child.sentinel], CHILD_TIMEOUT_S * 2)
    if channel not in ready:
        raise RuntimeError(f"the consumer process {what} (exit code {child.exitcode})")
    return channel.recv()


def measure(kind: str, where: str, topic: str, partitions: int, size: int, rate: int,
            warmup: int, count: int, linger_ms: int = 0) -> np.ndarray:
    """Latencies (ns) of ``count`` records sent at ``rate``/s; ``kind`` is
    ``kafka`` (``where``: bootstrap address) or ``embedded`` (a log directory)."""
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_child, name="latency-consumer",
                            args=(kind, where, topic, partitions, warmup, count, child_end))
    child.start()
    try:
        if _wait(parent_end, child, "did not get ready") != "ready":
            raise RuntimeError("the consumer process did not get ready")
        send, finish = _sender(kind, where, topic, partitions, size, linger_ms)
        try:
            _common.paced(send, rate, warmup + count)
        finally:
            finish()
        seen, latencies = _wait(parent_end, child, "sent no result")
        if seen < warmup + count:
            raise RuntimeError(f"the consumer received {seen} of {warmup + count} records, "
                               f"then none for {CHILD_TIMEOUT_S:.0f} s")
        return np.frombuffer(latencies, dtype=np.int64)
    finally:
        if child.is_alive():
            child.terminate()
        child.join()


def _sender(kind: str, where: str, topic: str, partitions: int, size: int, linger_ms: int
            ) -> tuple[Callable[[], None], Callable[[], None]]:
    """``send()`` one stamped record (partitions in turn) and ``finish()``."""
    padding = os.urandom(max(0, size - STAMP.size))
    turn = [0]

    def next_partition() -> int:
        turn[0] = (turn[0] + 1) % partitions
        return turn[0]

    if kind == "kafka":
        from kafka_bench.clients import producer

        client = producer(where, linger_ms)

        def send() -> None:
            client.produce(topic, STAMP.pack(time.monotonic_ns()) + padding,
                           partition=next_partition())
            client.poll(0)

        def finish() -> None:
            client.flush(CHILD_TIMEOUT_S)

        return send, finish

    import mqlog

    log = mqlog.open(where)
    embedded = log.producer(linger_ms=linger_ms)

    def send_embedded() -> None:
        embedded.send(topic, STAMP.pack(time.monotonic_ns()) + padding,
                      partition=next_partition())

    def finish_embedded() -> None:
        embedded.close()
        log.close()

    return send_embedded, finish_embedded
