"""One server with both doors: records produced over HTTP are what an embedded
consumer and a Kafka client (confluent-kafka) read, and records a Kafka client
produced are what HTTP reads, with keys, headers and timestamps intact."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer as CkProducer

import mqlog
from mqlog.consumer import TopicPartition
from tests.server._serve import RunningServer, serving
from tests.server.test_produce_fetch import ck_consume

BASE_TS = 1_700_000_000_000
#: (key, value, header value) of the records each test sends, binary ones included.
PAYLOADS = [(b"customer-%d" % i, b"order %d" % i, b"\x00\xff%d" % i) for i in range(5)]


@pytest.fixture(scope="module")
def both_doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory: Path = tmp_path_factory.mktemp("both") / "log"
    with serving(directory, "--kafka", "127.0.0.1:0", "--http", "127.0.0.1:0") as server:
        yield server


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_records_produced_over_http_reach_embedded_and_kafka_readers(
        both_doors: RunningServer, unique_name: str) -> None:
    with mqlog.open(both_doors.directory) as log:
        log.create_topic(unique_name, partitions=2)
    produced = httpx.post(f"{both_doors.http_url}/topics/{unique_name}/records", timeout=10,
                          json={"records": [
                              {"key": b64(key), "value": b64(value), "headers": {"h": b64(h)},
                               "timestamp": BASE_TS + i, "partition": 1, "encoding": "base64"}
                              for i, (key, value, h) in enumerate(PAYLOADS)]})
    assert produced.status_code == 200, produced.text
    with mqlog.open(both_doors.directory) as log:
        consumer = log.consumer()
        consumer.assign([TopicPartition(unique_name, 1)])
        consumer.seek(TopicPartition(unique_name, 1), 0)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(PAYLOADS) and time.monotonic() < deadline:
            got += consumer.poll(0.5)
        consumer.close()
    assert [(m.key, m.value, dict(m.headers), m.timestamp) for m in got] == [
        (key, value, {"h": h}, BASE_TS + i) for i, (key, value, h) in enumerate(PAYLOADS)]
    fetched = ck_consume(both_doors.address, unique_name, len(PAYLOADS), partition=1)
    assert [(m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in fetched] == [
        (key, value, [("h", h)], BASE_TS + i) for i, (key, value, h) in enumerate(PAYLOADS)]


def test_records_a_kafka_client_produced_read_over_http(
        both_doors: RunningServer, unique_name: str) -> None:
    with mqlog.open(both_doors.directory) as log:
        log.create_topic(unique_name)
    producer = CkProducer({"bootstrap.servers": both_doors.address, "linger.ms": 5})
    for i, (key, value, h) in enumerate(PAYLOADS):
        producer.produce(unique_name, value=value, key=key, headers=[("h", h)],
                         timestamp=BASE_TS + i, partition=0)
    assert producer.flush(30) == 0
    body = httpx.get(f"{both_doors.http_url}/topics/{unique_name}/partitions/0/records",
                     params={"offset": 0, "encoding": "base64"}, timeout=10).json()
    assert [(base64.b64decode(r["key"]), base64.b64decode(r["value"]),
             {name: base64.b64decode(v) for name, v in r["headers"].items()}, r["timestamp"])
            for r in body["records"]] == [
        (key, value, {"h": h}, BASE_TS + i) for i, (key, value, h) in enumerate(PAYLOADS)]
    assert body["next_offset"] == len(PAYLOADS)
