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


def _altered(admin: AdminClient, resource: ConfigResource, incremental: bool = True) -> None:
    call = admin.incremental_alter_configs if incremental else admin.alter_configs
    call([resource], request_timeout=TIMEOUT_S)[resource].result(timeout=TIMEOUT_S)


def test_incremental_alter_configs_sets_and_deletes(kafka_server: RunningServer) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    admin = _admin(kafka_server)
    admin.create_topics([NewTopic("tuned", 2, config={"retention.bytes": "1000000"})])[
        "tuned"].result(timeout=TIMEOUT_S)

    def entry(name: str, value: str | None, operation: AlterConfigOpType) -> ConfigEntry:
        return ConfigEntry(name, value, incremental_operation=operation)

    set_, delete = AlterConfigOpType.SET, AlterConfigOpType.DELETE
    append, subtract = AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT
    _altered(admin, ConfigResource("topic", "tuned", incremental_configs=[
        entry("retention.ms", "120000", set_), entry("retention.bytes", None, delete),
        entry("mqlog.durability", "always", set_)]))
    with mqlog.open(kafka_server.directory) as log:
        config = log.describe_topic("tuned").config
        assert (config.retention_ms, config.retention_bytes, config.durability) == (
            120000, None, "always")
    resource = ConfigResource(ConfigResource.Type.TOPIC, "tuned")
    described = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert described["retention.ms"].value == "120000"

    _altered(admin, ConfigResource("topic", "tuned", incremental_configs=[
        entry("cleanup.policy", "compact", append)]))
    with mqlog.open(kafka_server.directory) as log:
        assert log.describe_topic("tuned").config.cleanup_policy == "compact"
    _altered(admin, ConfigResource("topic", "tuned", incremental_configs=[
        entry("cleanup.policy", "compact", subtract)]))
    with mqlog.open(kafka_server.directory) as log:
        assert log.describe_topic("tuned").config.cleanup_policy == "delete"

    def refused(*entries: ConfigEntry, topic: str = "tuned") -> str:
        resource = ConfigResource("topic", topic, incremental_configs=list(entries))
        return _error(admin.incremental_alter_configs([resource],
                                                      request_timeout=TIMEOUT_S)[resource])

    # An invalid setting changes nothing of the resource, the valid ones included.
    assert refused(entry("retention.ms", "1", set_), entry("segment.bytes", "12", set_)) == \
        "INVALID_CONFIG"
    assert refused(entry("no.such", "1", set_)) == "INVALID_CONFIG"
    assert refused(entry("retention.ms", "60000", append)) == "INVALID_CONFIG"
    assert refused(entry("cleanup.policy", "delete", subtract)) == "INVALID_CONFIG"
    assert refused(entry("retention.ms", "1", set_), topic="missing") == \
        "UNKNOWN_TOPIC_OR_PART"
    with mqlog.open(kafka_server.directory) as log:
        config = log.describe_topic("tuned").config
        assert (config.retention_ms, config.segment_bytes, config.cleanup_policy) == (
            120000, 128 * 1024 * 1024, "delete")

    validated = ConfigResource("topic", "tuned", incremental_configs=[
        entry("retention.ms", "5000", set_)])
    admin.incremental_alter_configs([validated], validate_only=True,
                                    request_timeout=TIMEOUT_S)[validated].result(TIMEOUT_S)
    with mqlog.open(kafka_server.directory) as log:
        assert log.describe_topic("tuned").config.retention_ms == 120000


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_alter_configs_replaces_every_setting(kafka_server: RunningServer) -> None:
    admin = _admin(kafka_server)
    admin.create_topics([NewTopic("replaced", 1, config={
        "retention.bytes": "1000000", "mqlog.durability": "always"})])["replaced"].result(
        timeout=TIMEOUT_S)
    _altered(admin, ConfigResource("topic", "replaced", set_config={"retention.ms": "90000"}),
             incremental=False)
    with mqlog.open(kafka_server.directory) as log:
        config = log.describe_topic("replaced").config
        assert (config.retention_ms, config.retention_bytes, config.durability) == (
            90000, None, "interval")  # the settings not named are back at their defaults
    broker = ConfigResource(ConfigResource.Type.BROKER, "0", set_config={"num.partitions": "3"})
    assert _error(admin.alter_configs([broker], request_timeout=TIMEOUT_S)[broker]) == \
        "INVALID_REQUEST"


def test_delete_records_moves_the_start_and_consumers_follow(kafka_server: RunningServer) -> None:
    from confluent_kafka import Consumer, TopicPartition
    admin = _admin(kafka_server)
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("trimmed", 1)
        log.append("trimmed", 0, [b"%d" % n for n in range(10)])
    asked = TopicPartition("trimmed", 0, 4)
    deleted = admin.delete_records([asked], request_timeout=TIMEOUT_S)[asked].result(TIMEOUT_S)
    assert deleted.low_watermark == 4
    beyond = TopicPartition("trimmed", 0, 11)
    assert _error(admin.delete_records([beyond], request_timeout=TIMEOUT_S)[beyond]) == \
        "OFFSET_OUT_OF_RANGE"
    with mqlog.open(kafka_server.directory) as log:
        assert (log.start_offset("trimmed", 0), log.end_offset("trimmed", 0)) == (4, 10)
    # A consumer asking for a deleted offset is told OFFSET_OUT_OF_RANGE (with an empty
    # record set, which librdkafka needs) and resets to the new start.
    consumer = Consumer({"bootstrap.servers": kafka_server.address, "group.id": "trim",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition("trimmed", 0, 1)])
        message = None
        for _attempt in range(100):
            message = consumer.poll(0.2)
            if message is not None:
                break
        assert message is not None and message.error() is None
        assert (message.offset(), message.value()) == (4, b"4")
    finally:
        consumer.close()
