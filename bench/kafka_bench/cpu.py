"""The broker's CPU time per record on the Produce/Fetch path, one record per request.

What a producer with ``linger.ms=0`` and a consumer that waits for each record
ask of a broker, in lock step so that nothing is batched: a Fetch (v16, the
version librdkafka 2.16 sends; the topic named by id) for the next offset is
sent first and waits at the broker, then a Produce (v10, ``acks=all``) of one
100-byte record; once both answered (the Produce with the record's offset, the
Fetch with the record), the next pair follows. The broker's user + system CPU
time (``/proc/<pid>/stat``) is read over windows of ``window`` records; the
median and the lowest window, in microseconds per record (one Produce and
one Fetch), are the figures. CPU time is far less sensitive to other work on
the machine than latency, and the lowest window less still.

Requests are raw frames written with kio (Kafka's schemas), the record batch
with mqlog's Kafka batch encoder; this client process is not measured.
"""

from __future__ import annotations

import datetime
import importlib
import io
import socket
import struct
import time
import uuid
from typing import Any

import numpy as np
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from kafka_bench.connections import cpu_seconds

PRODUCE_VERSION = 10
FETCH_VERSION = 16
METADATA_VERSION = 12
SOCKET_TIMEOUT_S = 10.0
#: A run that takes longer gives up: a broker that answers a waiting Fetch only
#: at its max_wait (500 ms here), not at the append, would take hours.
RUN_TIMEOUT_S = 120.0
_SIZE = struct.Struct(">i")


def _frame(api_key: int, version: int, correlation_id: int, **fields: object) -> bytes:
    schema = load_request_schema(api_key, version)
    header = schema.__header_schema__
    out = io.BytesIO()
    entity_writer(header)(out, header(request_api_key=api_key, request_api_version=version,
                                      correlation_id=correlation_id, client_id="kafka-bench"))
    entity_writer(schema)(out, schema(**fields))
    payload = out.getvalue()
    return _SIZE.pack(len(payload)) + payload


def _parts(api_key: int, version: int) -> Any:
    """The module of the request's kio classes (its nested entities)."""
    return importlib.import_module(load_request_schema(api_key, version).__module__)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise RuntimeError("the broker closed the connection")
        data += chunk
    return bytes(data)


def _response(sock: socket.socket, api_key: int, version: int) -> object:
    (size,) = _SIZE.unpack(_read_exactly(sock, 4))
    frame = _read_exactly(sock, size)
    schema = load_response_schema(api_key, version)
    _header, used = entity_reader(schema.__header_schema__)(frame, 0)
    body, _ = entity_reader(schema)(frame, used)
    return body


def _topic_id(sock: socket.socket, topic: str) -> uuid.UUID:
    asked = _parts(3, METADATA_VERSION).MetadataRequestTopic
    sock.sendall(_frame(3, METADATA_VERSION, 0, topics=(asked(name=topic, topic_id=None),),
                        allow_auto_topic_creation=False,
                        include_topic_authorized_operations=False))
    found = _response(sock, 3, METADATA_VERSION)
    return found.topics[0].topic_id  # type: ignore[attr-defined]


def _batch(size: int) -> bytes:
    from mqlog import Record
    from mqlog.logstore._kafka_batch import encode_records

    return encode_records([Record(b"v" * size, timestamp=int(time.time() * 1000))], 0)


def measure(pid: int, bootstrap: str, topic: str, records: int, size: int,
            window: int) -> dict[str, float]:
    """Send ``records`` one-record Produce/Fetch pairs to partition 0 of the empty
    ``topic`` at ``bootstrap`` (broker process ``pid``); the figures."""
    host, port = bootstrap.rsplit(":", 1)
    producer = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
    consumer = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
    for sock in (producer, consumer):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        topic_id = _topic_id(consumer, topic)
        produce_module = _parts(0, PRODUCE_VERSION)
        fetch_module = _parts(1, FETCH_VERSION)
        batch = _batch(size)
        data = produce_module.TopicProduceData(name=topic, partition_data=(
            produce_module.PartitionProduceData(index=0, records=batch),))
        per_record: list[float] = []
        started = cpu_seconds(pid)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for offset in range(records):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{offset} of {records} records after {RUN_TIMEOUT_S:.0f} s")
            fetch_topic = fetch_module.FetchTopic(topic_id=topic_id, partitions=(
                fetch_module.FetchPartition(partition=0, fetch_offset=offset,
                                            partition_max_bytes=1 << 20),))
            consumer.sendall(_frame(
                1, FETCH_VERSION, offset, max_wait=datetime.timedelta(milliseconds=500),
                min_bytes=1, max_bytes=1 << 20, topics=(fetch_topic,),
                forgotten_topics_data=()))
            producer.sendall(_frame(0, PRODUCE_VERSION, offset, transactional_id=None, acks=-1,
                                    timeout=datetime.timedelta(seconds=30),
                                    topic_data=(data,)))
            answer = _response(producer, 0, PRODUCE_VERSION)
            written = answer.responses[0].partition_responses[0]  # type: ignore[attr-defined]
            if written.error_code != 0 or written.base_offset != offset:
                raise RuntimeError(f"produce of offset {offset} answered {written}")
            fetched = _response(consumer, 1, FETCH_VERSION)
            got = fetched.responses[0].partitions[0]  # type: ignore[attr-defined]
            if got.error_code != 0 or not got.records:
                raise RuntimeError(f"fetch of offset {offset} answered {got}")
            if (offset + 1) % window == 0:
                now = cpu_seconds(pid)
                per_record.append((now - started) * 1e6 / window)
                started = now
    finally:
        producer.close()
        consumer.close()
    if not per_record:
        raise RuntimeError(f"{records} records make no window of {window}")
    return {"cpu_us_per_record": float(np.median(per_record)),
            "cpu_us_per_record_min": float(min(per_record)), "windows": len(per_record)}
