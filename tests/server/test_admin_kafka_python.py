"""Topic administration through kafka-python 3's KafkaAdminClient."""

from __future__ import annotations

import pytest

import mqlog
from tests.server._serve import RunningServer

pytest.importorskip("kafka")
from kafka import KafkaAdminClient  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic  # noqa: E402
from kafka.errors import (  # noqa: E402
    InvalidConfigurationError,
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def admin(kafka_server: RunningServer):
    client = KafkaAdminClient(bootstrap_servers=kafka_server.address)
    yield client
    client.close()


def test_create_describe_grow_delete(kafka_server: RunningServer, admin) -> None:
    admin.create_topics([NewTopic("events", 2, 1, topic_configs={
        "retention.bytes": "1048576", "max.message.bytes": "2048"})])
    with mqlog.open(kafka_server.directory) as log:
        config = log.describe_topic("events").config
        assert (config.retention_bytes, config.max_record_bytes) == (1048576, 2048)
        assert len(log.describe_topic("events").partitions) == 2

    resource = ConfigResource(ConfigResourceType.TOPIC, "events")
    described = admin.describe_configs([resource], config_filter="all")["topic"]["events"]
    assert described["retention.bytes"]["value"] == "1048576"
    assert described["retention.bytes"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert described["cleanup.policy"]["value"] == "delete"
    assert described["cleanup.policy"]["config_source"] == "DEFAULT_CONFIG"
    modified = admin.describe_configs([resource])["topic"]["events"]
    assert sorted(modified) == ["max.message.bytes", "retention.bytes"]

    admin.create_partitions({"events": NewPartitions(3)})
    with mqlog.open(kafka_server.directory) as log:
        assert len(log.describe_topic("events").partitions) == 3
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({"events": NewPartitions(2)})

    admin.delete_topics(["events"])
    with mqlog.open(kafka_server.directory) as log:
        assert log.topics() == []


def test_refusals(kafka_server: RunningServer, admin) -> None:
    admin.create_topics([NewTopic("taken", 1, 1)])
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic("taken", 1, 1)])
    with pytest.raises(InvalidConfigurationError):
        admin.create_topics([NewTopic("odd", 1, 1, topic_configs={"no.such": "x"})])
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics(["missing"])
    with mqlog.open(kafka_server.directory) as log:
        assert log.topics() == ["taken"]


def test_topics_made_embedded_are_listed(kafka_server: RunningServer, admin) -> None:
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("embedded", partitions=3)
    assert "embedded" in admin.list_topics()
    admin.create_topics([NewTopic("remote", 2, 1)])
    with mqlog.open(kafka_server.directory) as log:
        assert log.topics() == ["embedded", "remote"]


def test_alter_and_reset_configs(kafka_server: RunningServer, admin) -> None:
    admin.create_topics([NewTopic("tuned", 1, 1, topic_configs={"retention.bytes": "4096000"})])

    def config() -> mqlog.TopicConfig:
        with mqlog.open(kafka_server.directory) as log:
            return log.describe_topic("tuned").config

    resource = ConfigResource(ConfigResourceType.TOPIC, "tuned", {"retention.ms": "120000"})
    admin.alter_configs([resource])  # IncrementalAlterConfigs: a SET
    assert (config().retention_ms, config().retention_bytes) == (120000, 4096000)
    admin.reset_configs([ConfigResource(ConfigResourceType.TOPIC, "tuned",
                                        ["retention.bytes"])])  # a DELETE
    assert (config().retention_ms, config().retention_bytes) == (120000, None)
    legacy = ConfigResource(ConfigResourceType.TOPIC, "tuned", {"retention.ms": "60000"})
    admin.alter_configs([legacy], incremental=False)  # AlterConfigs, every key named
    assert (config().retention_ms, config().retention_bytes) == (60000, None)
    bad = ConfigResource(ConfigResourceType.TOPIC, "tuned", {"retention.ms": "soon"})
    refused = admin.alter_configs([bad])["topic"]["tuned"]
    assert "InvalidConfigurationError: retention.ms='soon': not an integer" in str(refused)
    assert config().retention_ms == 60000


def test_delete_records(kafka_server: RunningServer, admin) -> None:
    from kafka import TopicPartition
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("trimmed", 1)
        log.append("trimmed", 0, [b"%d" % n for n in range(6)])
    tp = TopicPartition("trimmed", 0)
    deleted = admin.delete_records({tp: 3})
    assert deleted[tp]["low_watermark"] == 3
    with mqlog.open(kafka_server.directory) as log:
        assert log.start_offset("trimmed", 0) == 3
