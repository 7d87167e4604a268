"""Produce and Fetch through real Kafka clients against a real server process,
with the embedded API on the same directory at the same time: one log, two doors.

Clients: confluent-kafka (librdkafka), kafka-python 3 (idempotent by default)
and aiokafka; kcat and kafkajs have their own files.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer as CkConsumer
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka import Producer as CkProducer

import mqlog
from mqlog import Record

BASE_TS = 1_700_000_000_000


def ck_produce(address: str, topic: str, count: int, **config) -> None:
    producer = CkProducer({"bootstrap.servers": address, "linger.ms": 5, **config})
    failures = []
    for i in range(count):
        producer.produce(topic, value=b"value %d" % i, key=b"k%d" % i,
                         headers=[("n", b"%d" % i)], timestamp=BASE_TS + i,
                         on_delivery=lambda err, _msg: err and failures.append(err))
    assert producer.flush(30) == 0
    assert failures == []


def ck_consume(address: str, topic: str, count: int, partition: int = 0, offset: int = 0,
               timeout_s: float = 30.0) -> list:
    consumer = CkConsumer({"bootstrap.servers": address, "group.id": "unused",
                           "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, offset)])
    messages = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
    finally:
        consumer.close()
    return messages


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_kafka_records_reach_embedded_readers_intact(kafka_server, acks):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("orders", partitions=1)
        ck_produce(kafka_server.address, "orders", 500, acks=acks)
        deadline = time.monotonic() + 10
        while log.end_offset("orders", 0) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)  # acks=0: no answer says when the records landed
        records = log.read("orders", 0, 0, max_records=1000)
    assert [(r.offset, r.key, r.value, dict(r.headers), r.timestamp) for r in records] == [
        (i, b"k%d" % i, b"value %d" % i, {"n": b"%d" % i}, BASE_TS + i) for i in range(500)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip_through_both_doors(kafka_server, codec):
    ck_produce(kafka_server.address, "zipped", 300, **{"compression.type": codec})
    messages = ck_consume(kafka_server.address, "zipped", 300)
    assert [(m.offset(), m.key(), m.value()) for m in messages] == [
        (i, b"k%d" % i, b"value %d" % i) for i in range(300)]
    with mqlog.open(kafka_server.directory) as log:
        assert [r.value for r in log.read("zipped", 0, 295)] == [
            b"value %d" % i for i in range(295, 300)]


def test_embedded_records_reach_kafka_consumers_intact(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("events", partitions=2)
        log.append("events", 1, [Record(b"v%d" % i, key=None if i == 3 else b"k%d" % i,
                                        headers={"h": b"%d" % i}, timestamp=BASE_TS + i)
                                 for i in range(10)])
    messages = ck_consume(kafka_server.address, "events", 10, partition=1)
    assert [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1])
            for m in messages] == [
        (i, None if i == 3 else b"k%d" % i, b"v%d" % i, [("h", b"%d" % i)], BASE_TS + i)
        for i in range(10)]


def test_a_fetch_from_inside_a_batch_starts_at_the_offset_asked(kafka_server):
    ck_produce(kafka_server.address, "mid", 50)  # one or a few batches
    messages = ck_consume(kafka_server.address, "mid", 45, offset=5)
    assert [m.offset() for m in messages] == list(range(5, 50))


def test_a_waiting_consumer_is_woken_by_an_embedded_append(kafka_server):
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("live")
        consumer = CkConsumer({"bootstrap.servers": kafka_server.address, "group.id": "g",
                               "fetch.wait.max.ms": 5000, "enable.auto.commit": False})
        consumer.assign([TopicPartition("live", 0, 0)])
        try:
            assert consumer.poll(1.0) is None  # nothing yet: the fetch is parked
            log.append("live", 0, [b"hello"])
            message = None
            deadline = time.monotonic() + 10
            while message is None and time.monotonic() < deadline:
                message = consumer.poll(0.5)
            assert message is not None and message.value() == b"hello"
        finally:
            consumer.close()


def test_a_consumer_reaches_a_topic_deleted_and_created_again_elsewhere(kafka_server):
    """Another process deletes the topic a consumer reads at its end, creates it
    again and appends: the server must not keep serving the deleted topic's end
    (where the consumer would wait for good); the consumer is told, resets by
    ``auto.offset.reset`` and reads the new topic's records."""
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("again")
        log.append("again", 0, [b"old-1", b"old-2"])
        consumer = CkConsumer({"bootstrap.servers": kafka_server.address, "group.id": "g",
                               "auto.offset.reset": "earliest", "enable.auto.commit": False,
                               "topic.metadata.refresh.interval.ms": 1000})
        consumer.assign([TopicPartition("again", 0, 0)])
        try:
            seen = []
            deadline = time.monotonic() + 10
            while len(seen) < 2 and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    seen.append(message.value())
            assert seen == [b"old-1", b"old-2"]
            assert consumer.poll(0.5) is None  # at the end: its fetch waits
            log.delete_topic("again")
            log.create_topic("again")
            log.append("again", 0, [b"new-1"])
            deadline = time.monotonic() + 30
            while b"new-1" not in seen and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    seen.append(message.value())
            assert seen[2:] == [b"new-1"]
        finally:
            consumer.close()


def test_kafka_python_idempotent_producer_and_consumer(kafka_server):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KpTopicPartition

    producer = KafkaProducer(bootstrap_servers=kafka_server.address, linger_ms=5)
    futures = [producer.send("kp", key=b"k%d" % i, value=b"v%d" % i,
                             headers=[("n", b"%d" % i)], timestamp_ms=BASE_TS + i)
               for i in range(200)]
    producer.flush(30)
    assert [f.get(10).offset for f in futures] == list(range(200))
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_server.address,
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    consumer.assign([KpTopicPartition("kp", 0)])
    consumer.seek_to_beginning()
    got = [(m.offset, m.key, m.value, m.headers, m.timestamp) for m in consumer]
    consumer.close()
    assert got == [(i, b"k%d" % i, b"v%d" % i, [("n", b"%d" % i)], BASE_TS + i)
                   for i in range(200)]
    with mqlog.open(kafka_server.directory) as log:
        assert log.end_offset("kp", 0) == 200


def test_aiokafka_producer_and_consumer(kafka_server):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    async def run() -> list:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.address,
                                    enable_idempotence=True)
        await producer.start()
        try:
            for i in range(100):
                await producer.send("aio", key=b"k%d" % i, value=b"v%d" % i,
                                    timestamp_ms=BASE_TS + i)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_server.address,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([AioTopicPartition("aio", 0)])
            await consumer.seek_to_beginning()
            got: list = []
            while len(got) < 100:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                for messages in batches.values():
                    got += [(m.offset, m.key, m.value, m.timestamp) for m in messages]
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == [(i, b"k%d" % i, b"v%d" % i, BASE_TS + i) for i in range(100)]


def test_a_transactional_producer_gets_an_error_not_a_hang(kafka_server):
    producer = CkProducer({"bootstrap.servers": kafka_server.address,
                           "transactional.id": "tx-1"})
    with pytest.raises(KafkaException) as caught:
        producer.init_transactions(20)
    error = caught.value.args[0]
    assert error.fatal() and error.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, (
        error)


def test_confluent_kafka_idempotent_producer_and_seek(kafka_server):
    ck_produce(kafka_server.address, "idem", 300, **{"enable.idempotence": True})
    consumer = CkConsumer({"bootstrap.servers": kafka_server.address, "group.id": "unused",
                           "enable.auto.commit": False})
    consumer.assign([TopicPartition("idem", 0, 0)])
    try:
        first = None
        while first is None:
            first = consumer.poll(1.0)
        consumer.seek(TopicPartition("idem", 0, 250))
        after_seek = None
        deadline = time.monotonic() + 20
        while (after_seek is None or after_seek.offset() < 250) and time.monotonic() < deadline:
            after_seek = consumer.poll(1.0)
        assert after_seek is not None and after_seek.offset() == 250
        assert after_seek.value() == b"value 250"
    finally:
        consumer.close()
    with mqlog.open(kafka_server.directory) as log:
        assert log.end_offset("idem", 0) == 300  # no retry written twice


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_kafka_python_producer_acks(kafka_server, acks):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_server.address, acks=acks,
                             enable_idempotence=False)
    for i in range(50):
        producer.send("kp-acks", value=b"v%d" % i)
    producer.flush(30)
    producer.close()
    with mqlog.open(kafka_server.directory) as log:
        deadline = time.monotonic() + 10
        while log.end_offset("kp-acks", 0) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.value for r in log.read("kp-acks", 0, 0, 100)] == [b"v%d" % i for i in range(50)]


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_aiokafka_producer_acks(kafka_server, acks):
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.address, acks=acks)
        await producer.start()
        try:
            for i in range(50):
                await producer.send("aio-acks", value=b"v%d" % i)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())
    with mqlog.open(kafka_server.directory) as log:
        deadline = time.monotonic() + 10
        while log.end_offset("aio-acks", 0) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.value for r in log.read("aio-acks", 0, 0, 100)] == [
            b"v%d" % i for i in range(50)]
