"""Topic administration through confluent-kafka's AdminClient (librdkafka)."""

from __future__ import annotations

import pytest

import mqlog
from tests.server._serve import RunningServer

confluent = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaException  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

TIMEOUT_S = 15


def _admin(server: RunningServer) -> AdminClient:
    return AdminClient({"bootstrap.servers": server.address})


def _error(future) -> str:
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=TIMEOUT_S)
    return raised.value.args[0].name()


def test_create_describe_grow_delete(kafka_server: RunningServer) -> None:
    admin = _admin(kafka_server)
    created = admin.create_topics([NewTopic("events", 3, 1, config={
        "retention.ms": "60000", "cleanup.policy": "compact", "mqlog.durability": "always"})])
    created["events"].result(timeout=TIMEOUT_S)
    with mqlog.open(kafka_server.directory) as log:
        described = log.describe_topic("events")
        assert len(described.partitions) == 3
        assert described.config.retention_ms == 60000
        assert described.config.cleanup_policy == "compact"
        assert described.config.durability == "always"

    resource = ConfigResource(ConfigResource.Type.TOPIC, "events")
    configs = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert configs["retention.ms"].value == "60000"
    assert configs["retention.bytes"].value == "-1"
    assert configs["segment.bytes"].value == str(128 * 1024 * 1024)
    assert configs["mqlog.durability"].value == "always"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    admin.create_partitions([NewPartitions("events", 5)])["events"].result(timeout=TIMEOUT_S)
    with mqlog.open(kafka_server.directory) as log:
        assert len(log.describe_topic("events").partitions) == 5
    assert _error(admin.create_partitions([NewPartitions("events", 4)])["events"]) == \
        "INVALID_PARTITIONS"

    admin.delete_topics(["events"])["events"].result(timeout=TIMEOUT_S)
    with mqlog.open(kafka_server.directory) as log:
        assert "events" not in log.topics()


def test_refusals_name_the_kafka_error(kafka_server: RunningServer) -> None:
    admin = _admin(kafka_server)
    admin.create_topics([NewTopic("taken", 1)])["taken"].result(timeout=TIMEOUT_S)
    assert _error(admin.create_topics([NewTopic("taken", 1)])["taken"]) == \
        "TOPIC_ALREADY_EXISTS"
    assert _error(admin.create_topics([NewTopic("odd", 1, config={"no.such": "1"})])["odd"]) \
        == "INVALID_CONFIG"
    assert _error(admin.create_topics([NewTopic("bad", 1, config={
        "retention.ms": "soon"})])["bad"]) == "INVALID_CONFIG"
    assert _error(admin.create_topics([NewTopic("wide", 1, 3)])["wide"]) == \
        "INVALID_REPLICATION_FACTOR"
    assert _error(admin.create_topics([NewTopic("has space", 1)])["has space"]) == \
        "TOPIC_EXCEPTION"
    assert _error(admin.delete_topics(["missing"])["missing"]) == \
        "UNKNOWN_TOPIC_OR_PART"
    with mqlog.open(kafka_server.directory) as log:
        assert log.topics() == ["taken"]  # nothing refused was created


def test_validate_only_creates_nothing(kafka_server: RunningServer) -> None:
    admin = _admin(kafka_server)
    admin.create_topics([NewTopic("dry", 2)], validate_only=True)["dry"].result(
        timeout=TIMEOUT_S)
    with mqlog.open(kafka_server.directory) as log:
        assert "dry" not in log.topics()


def test_topics_made_embedded_are_seen_and_the_other_way(kafka_server: RunningServer) -> None:
    admin = _admin(kafka_server)
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("embedded", partitions=2)
        admin.create_topics([NewTopic("remote", 4)])["remote"].result(timeout=TIMEOUT_S)
        assert "remote" in log.topics()
        assert len(log.describe_topic("remote").partitions) == 4
    listed = admin.list_topics(timeout=TIMEOUT_S).topics
    assert len(listed["embedded"].partitions) == 2


def test_broker_configs_are_described(kafka_server: RunningServer) -> None:
    admin = _admin(kafka_server)
    resource = ConfigResource(ConfigResource.Type.BROKER, "0")
    configs = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert configs["auto.create.topics.enable"].value == "true"
    assert configs["num.partitions"].value == "1"
    assert configs["socket.request.max.bytes"].value == str(100 * 1024 * 1024)
