"""One log, two doors: what Kafka clients produce through the server is what
embedded consumers, queue groups, ``mqlog tail`` and ``mqlog replay`` read,
and the other way round, with keys, headers and timestamps intact."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

from confluent_kafka import Producer as CkProducer

import mqlog
from tests.server.test_produce_fetch import BASE_TS, ck_consume


def produce(address: str, topic: str, count: int) -> None:
    producer = CkProducer({"bootstrap.servers": address, "linger.ms": 5,
                           "compression.type": "lz4"})
    for i in range(count):
        producer.produce(topic, value=b"order %d" % i, key=b"customer-%d" % (i % 3),
                         headers=[("source", b"kafka")], timestamp=BASE_TS + i,
                         partition=i % 2)
    assert producer.flush(30) == 0


def mqlog_cli(directory, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mqlog.cli", "--dir", str(directory), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_embedded_group_consumer_reads_what_kafka_clients_produced(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("orders", partitions=2)
        produce(kafka_server.address, "orders", 100)
        consumer = log.consumer("billing", "orders", auto_offset_reset="earliest")
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 100 and time.monotonic() < deadline:
            got += consumer.poll(0.5)
        consumer.commit()
        consumer.close()
    assert sorted((m.partition, m.offset) for m in got) == sorted(
        (i % 2, i // 2) for i in range(100))
    by_value = {m.value: m for m in got}
    message = by_value[b"order 7"]
    assert (message.key, dict(message.headers), message.timestamp) == (
        b"customer-1", {"source": b"kafka"}, BASE_TS + 7)


def test_a_queue_group_acks_records_kafka_clients_produced(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("jobs", partitions=2)
        produce(kafka_server.address, "jobs", 40)
        worker = log.queue("workers", "jobs")
        done = []
        deadline = time.monotonic() + 20
        while len(done) < 40 and time.monotonic() < deadline:
            for message in worker.receive(10, timeout=0.5):
                done.append(message.value)
                message.ack()
        worker.close()
        assert sorted(done) == sorted(b"order %d" % i for i in range(40))
        assert sum(p.ready for p in log.describe_queue("workers")) == 0


def test_tail_and_replay_read_kafka_records(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("audit", partitions=2)
    produce(kafka_server.address, "audit", 20)
    lines = mqlog_cli(kafka_server.directory, "tail", "audit", "--partition", "0",
                      "--from-beginning", "--format", "json").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 10
    first = records[0]
    assert base64.b64decode(first["value"]) == b"order 0"
    mqlog_cli(kafka_server.directory, "replay", "audit", "--from-offset", "0",
              "--to-topic", "audit-copy")
    with mqlog.open(kafka_server.directory) as log:
        counts = [log.end_offset("audit-copy", p) for p in range(2)]
    copied = [message for partition, count in enumerate(counts)
              for message in ck_consume(kafka_server.address, "audit-copy", count,
                                        partition=partition)]
    assert sorted(m.value() for m in copied) == sorted(b"order %d" % i for i in range(20))
    assert all(("source", b"kafka") in m.headers() for m in copied)  # replay adds its own too
