"""Each Kafka client of the server tests produces five records and reads them
back, with the connection settings of a :class:`Login` (TLS, a SASL login,
or both). Every function returns the (key, value) pairs it consumed, which
should be :data:`RECORDS`, from partition 0 of a topic that exists."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from . import kafkajs, kcat

#: What every client produces: kafkajs' driver writes exactly these.
RECORDS = [(f"key-{i}", f"value-{i}") for i in range(5)]
#: Bound on each client's work, so a broken exchange fails instead of hanging.
TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class Login:
    """``protocol``: Kafka's security.protocol (SASL_SSL, SASL_PLAINTEXT, SSL);
    ``mechanism``: PLAIN or SCRAM-SHA-256 (None without SASL); ``cafile``: the
    server's certificate, to check it (None without TLS)."""

    protocol: str
    mechanism: str | None
    user: str
    password: str
    cafile: Path | None

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka's and kcat's settings."""
        config = {"security.protocol": self.protocol}
        if self.mechanism is not None:
            config.update({"sasl.mechanism": self.mechanism, "sasl.username": self.user,
                           "sasl.password": self.password})
        if self.cafile is not None:
            config["ssl.ca.location"] = str(self.cafile)
        return config

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python's keyword arguments."""
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.mechanism is not None:
            config.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.user,
                          sasl_plain_password=self.password)
        if self.cafile is not None:
            config["ssl_cafile"] = str(self.cafile)
        return config

    def aiokafka(self) -> dict[str, Any]:
        """aiokafka's keyword arguments (TLS through an ssl_context)."""
        from aiokafka.helpers import create_ssl_context

        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.mechanism is not None:
            config.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.user,
                          sasl_plain_password=self.password)
        if self.cafile is not None:
            config["ssl_context"] = create_ssl_context(cafile=str(self.cafile))
        return config

    def kafkajs(self) -> list[str]:
        """The driver's connection options."""
        options = []
        if self.cafile is not None:
            options += ["--ssl-ca", str(self.cafile)]
        if self.mechanism is not None:
            options += ["--sasl-mechanism", self.mechanism.lower(), "--sasl-username",
                        self.user, "--sasl-password", self.password]
        return options


def confluent(address: str, topic: str, login: Login) -> list[tuple[str, str]]:
    from confluent_kafka import Consumer, Producer, TopicPartition

    config = {"bootstrap.servers": address, **login.librdkafka()}
    producer = Producer(config)
    for key, value in RECORDS:
        producer.produce(topic, value.encode(), key.encode(), partition=0)
    assert producer.flush(TIMEOUT_S) == 0, "not every record was delivered"
    consumer = Consumer({**config, "group.id": "confluent-auth", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                got.append((message.key().decode(), message.value().decode()))
    finally:
        consumer.close()
    return got


def kafka_python(address: str, topic: str, login: Login) -> list[tuple[str, str]]:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(bootstrap_servers=address, **login.kafka_python())
    try:
        for key, value in RECORDS:
            producer.send(topic, value.encode(), key.encode(), partition=0)
        producer.flush(TIMEOUT_S)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False,
                             **login.kafka_python())
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                got += [(r.key.decode(), r.value.decode()) for r in records]
    finally:
        consumer.close()
    return got


def aiokafka(address: str, topic: str, login: Login) -> list[tuple[str, str]]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    async def run() -> list[tuple[str, str]]:
        producer = AIOKafkaProducer(bootstrap_servers=address, **login.aiokafka())
        try:
            await producer.start()
            for key, value in RECORDS:
                await producer.send_and_wait(topic, value.encode(), key.encode(), partition=0)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=address, enable_auto_commit=False,
                                    auto_offset_reset="earliest", **login.aiokafka())
        try:
            await consumer.start()
            consumer.assign([TopicPartition(topic, 0)])
            got: list[tuple[str, str]] = []
            while len(got) < len(RECORDS):
                batches = await consumer.getmany(timeout_ms=1000)
                got += [(r.key.decode(), r.value.decode())
                        for records in batches.values() for r in records]
            return got
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(run(), TIMEOUT_S))


def kcat_client(address: str, topic: str, login: Login) -> list[tuple[str, str]]:
    config = login.librdkafka()
    kcat.produce(address, topic, RECORDS, partition=0, config=config)
    records = kcat.consume(address, topic, len(RECORDS), partition=0, config=config)
    return [(r.key or "", r.value or "") for r in records]


def kafkajs_client(address: str, topic: str, login: Login) -> list[tuple[str, str]]:
    options = login.kafkajs()
    produced = kafkajs.run(address, "produce", topic, str(len(RECORDS)), *options)
    assert produced[-1] == {"op": "done", "count": len(RECORDS)}, produced
    consumed = kafkajs.run(address, "consume", topic, f"{topic}-group", str(len(RECORDS)),
                           *options)
    return [(line["key"], line["value"]) for line in consumed if line["op"] == "record"]


CLIENTS = {"confluent-kafka": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka,
           "kcat": kcat_client, "kafkajs": kafkajs_client}
