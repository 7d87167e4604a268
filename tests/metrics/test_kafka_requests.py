"""A Kafka server counts the requests it answers per API and the error codes of
their responses, and its engine the records its clients produced and fetched.

The server runs in this process (a real KafkaServer on a loopback socket, in a
thread of its own, with the ServerMetrics the test reads), driven by
confluent-kafka (librdkafka) and by raw requests that draw errors: one answered
with a kio entity (Metadata), one with a frame the handler writes itself
(Produce).
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

import mqlog
from mqlog.metrics import ServerMetrics, exposition
from mqlog.server import KafkaServer
from mqlog.server.kafka import _api_versions
from mqlog.server.kafka._apis import ApiTable
from mqlog.server.kafka._codec import Entity, Request, part
from mqlog.server.kafka._context import ServerState
from tests.metrics._scrape import Scrape
from tests.server._serve import decode_response, encode_request, read_frame

RECORDS = 20


@contextmanager
def serving(log: mqlog.Log, metrics: ServerMetrics, table: ApiTable | None = None
            ) -> Iterator[tuple[str, int]]:
    """A KafkaServer over ``log`` counting in ``metrics`` (serving the APIs of
    ``table``, default all), on a free loopback port in a thread; yields (host,
    port) and stops it afterwards."""
    started = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        server = KafkaServer(log.engine, "127.0.0.1", 0, metrics=metrics, table=table)
        await server.start()
        stop = asyncio.Event()
        state.update(address=server.address, stop=stop, loop=asyncio.get_running_loop())
        started.set()
        try:
            await stop.wait()
        finally:
            await server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "the server did not start"
    try:
        yield state["address"]  # type: ignore[misc]
    finally:
        loop = state["loop"]
        loop.call_soon_threadsafe(state["stop"].set)  # type: ignore[attr-defined]
        thread.join(30)


def produce_and_consume(address: str) -> list:
    producer = Producer({"bootstrap.servers": address, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce("orders", value=b"order %d" % i, partition=0)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": address, "group.id": "unused",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition("orders", 0, 0)])
    received = []
    deadline = time.monotonic() + 30
    try:
        while len(received) < RECORDS and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                received.append(message.value())
    finally:
        consumer.close()
    return received


def raw_requests_with_errors(host: str, port: int) -> None:
    """A Metadata request for a topic that does not exist, and a Produce without
    records to a partition: both answered with an error code."""
    from kio.index import load_request_schema

    metadata = load_request_schema(3, 4)
    produce = load_request_schema(0, 9)
    topic_data = part(produce, "TopicProduceData")
    partition_data = part(produce, "PartitionProduceData")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(encode_request(3, 4, 1, allow_auto_topic_creation=False,
                                    topics=(part(metadata, "MetadataRequestTopic")(
                                        name="missing"),)))
        assert decode_response(3, 4, read_frame(sock))[1].topics[0].error_code != 0
        sock.sendall(encode_request(
            0, 9, 2, transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
            topic_data=(topic_data(name="orders", partition_data=(
                partition_data(index=0, records=None),)),)))
        response = decode_response(0, 9, read_frame(sock))[1]
        assert response.responses[0].partition_responses[0].error_code != 0


def test_requests_errors_and_records_are_counted(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("orders")
        metrics = ServerMetrics(log.engine)
        with serving(log, metrics) as (host, port):
            received = produce_and_consume(f"{host}:{port}")
            raw_requests_with_errors(host, port)
        scrape = Scrape(exposition(log, metrics))
    assert received == [b"order %d" % i for i in range(RECORDS)]
    for api in ("ApiVersions", "Metadata", "Produce", "Fetch"):
        assert scrape.value("mqlog_kafka_requests_total", api=api) >= 1, api
    assert scrape.value("mqlog_kafka_request_errors_total", api="Metadata",
                        error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    assert scrape.value("mqlog_kafka_request_errors_total", api="Produce",
                        error="INVALID_RECORD") == 1
    errors = scrape.series("mqlog_kafka_request_errors_total")
    assert [e for e in errors if e["api"] in ("Produce", "Fetch")] == [
        {"api": "Produce", "error": "INVALID_RECORD"}]  # the clients' own went through
    assert scrape.value("mqlog_records_appended_total") == RECORDS
    assert scrape.value("mqlog_records_read_total") >= RECORDS
    assert scrape.value("kafka_topic_partition_current_offset", topic="orders",
                        partition=0) == RECORDS


def test_the_server_counts_in_its_own_metrics_by_default(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        server = KafkaServer(log.engine, "127.0.0.1", 0)
        assert isinstance(server.state.metrics, ServerMetrics)
        page = Scrape(exposition(log, server.state.metrics))
        assert page.value("mqlog_records_appended_total") == 0  # over the server's engine


def test_a_failing_handler_counts_as_a_server_error(log_dir: Path) -> None:
    async def fail(server: ServerState, request: Request) -> Entity:
        raise RuntimeError("a bug in a handler")

    table = ApiTable()
    table.register(_api_versions.API_KEY, _api_versions.MIN_VERSION, _api_versions.MAX_VERSION,
                   _api_versions.handle, concurrent=True)
    table.register(32, 1, 4, fail)  # DescribeConfigs
    with mqlog.open(log_dir) as log:
        metrics = ServerMetrics(log.engine)
        with serving(log, metrics, table) as (host, port), socket.create_connection(
                (host, port), timeout=10) as sock:
            sock.sendall(encode_request(18, 0, 1))
            assert decode_response(18, 0, read_frame(sock))[0] == 1
            sock.sendall(encode_request(32, 4, 2, resources=(), include_synonyms=False,
                                        include_documentation=False))
            assert sock.recv(1) == b""  # the connection closes, unanswered
        scrape = Scrape(exposition(log, metrics))
    assert scrape.value("mqlog_kafka_requests_total", api="ApiVersions") == 1
    assert scrape.value("mqlog_kafka_requests_total", api="DescribeConfigs") == 1
    assert scrape.series("mqlog_kafka_request_errors_total") == [
        {"api": "DescribeConfigs", "error": "UNKNOWN_SERVER_ERROR"}]

