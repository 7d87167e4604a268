"""Metadata through real clients: librdkafka, kafka-python and kcat."""

from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest
from kio.schema.errors import ErrorCode

import mqlog
from tests.server._serve import (
    RunningServer,
    connect,
    decode_response,
    encode_request,
    read_frame,
)


def test_librdkafka_lists_the_broker_and_topics(kafka_server: RunningServer) -> None:
    from confluent_kafka.admin import AdminClient

    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("orders", partitions=3)
    admin = AdminClient({"bootstrap.servers": kafka_server.address})
    metadata = admin.list_topics(timeout=10)
    assert [(b.id, b.host, b.port) for b in metadata.brokers.values()] == [
        (0, kafka_server.host, kafka_server.port)]
    assert metadata.controller_id == 0
    assert sorted(metadata.topics["orders"].partitions) == [0, 1, 2]
    assert all(p.leader == 0 and p.replicas == [0] and p.isrs == [0]
               for p in metadata.topics["orders"].partitions.values())
    assert metadata.cluster_id == admin.list_topics(timeout=10).cluster_id  # stable


def test_kafka_python_sees_the_topics(kafka_server: RunningServer) -> None:
    from kafka import KafkaAdminClient

    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("orders", partitions=2)
    admin = KafkaAdminClient(bootstrap_servers=kafka_server.address)
    try:
        assert "orders" in admin.list_topics()
        (described,) = admin.describe_topics(["orders"])
        assert described["error_code"] == 0
        assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1]
        assert described["is_internal"] is False
    finally:
        admin.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_lists_topics(kafka_server: RunningServer) -> None:
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("orders", partitions=2)
    listed = subprocess.run(["kcat", "-b", kafka_server.address, "-L", "-m", "10"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert 'topic "orders" with 2 partitions' in listed.stdout
    assert f"broker 0 at {kafka_server.address}" in listed.stdout


def _metadata(server: RunningServer, version: int, names: list[str] | None,
              allow: bool = True):
    from kio.index import load_request_schema

    from mqlog.server.kafka._codec import part

    schema = load_request_schema(3, version)
    topic = part(schema, "MetadataRequestTopic")
    fields = {} if version < 4 else {"allow_auto_topic_creation": allow}
    if version >= 8:
        fields["include_topic_authorized_operations"] = False
    if 8 <= version <= 10:
        fields["include_cluster_authorized_operations"] = False
    if names is None:
        topics = None
    elif version >= 10:
        topics = tuple(topic(name=name, topic_id=None) for name in names)
    else:
        topics = tuple(topic(name=name) for name in names)
    with connect(server) as sock:
        sock.sendall(encode_request(3, version, 5, topics=topics, **fields))
        return decode_response(3, version, read_frame(sock))[1]


def test_every_metadata_version_answers(kafka_server: RunningServer) -> None:
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("known", partitions=2)
    for version in range(13):
        body = _metadata(kafka_server, version, ["known"])
        (topic,) = body.topics
        assert topic.error_code == ErrorCode.none, version
        assert [p.partition_index for p in topic.partitions] == [0, 1], version


def test_auto_create_follows_the_request(kafka_server: RunningServer) -> None:
    (refused,) = _metadata(kafka_server, 12, ["fresh"], allow=False).topics
    assert refused.error_code == ErrorCode.unknown_topic_or_partition
    (created,) = _metadata(kafka_server, 12, ["fresh"], allow=True).topics
    assert created.error_code == ErrorCode.none and len(created.partitions) == 1
    with mqlog.open(kafka_server.directory) as log:
        assert "fresh" in log.topics()


def test_internal_topics_are_flagged_and_never_auto_created(
        kafka_server: RunningServer) -> None:
    with mqlog.open(kafka_server.directory) as log:
        log.engine.create_topic("__internal_one", internal=True)
    body = _metadata(kafka_server, 12, None)
    flags = {topic.name: topic.is_internal for topic in body.topics}
    assert flags == {"__internal_one": True}
    (missing,) = _metadata(kafka_server, 12, ["__not_there"]).topics
    assert missing.error_code == ErrorCode.unknown_topic_or_partition


def test_invalid_topic_name_is_answered_not_fatal(kafka_server: RunningServer) -> None:
    (bad,) = _metadata(kafka_server, 12, ["no spaces/allowed"]).topics
    assert bad.error_code == ErrorCode.invalid_topic_exception


def test_topic_ids_are_stable_and_found_by_id(kafka_server: RunningServer) -> None:
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("a")
        log.create_topic("b")
    first = {t.name: t.topic_id for t in _metadata(kafka_server, 12, None).topics}
    second = {t.name: t.topic_id for t in _metadata(kafka_server, 12, None).topics}
    assert first == second and first["a"] != first["b"] and first["a"].int != 0


def _fetch_by_id(server: RunningServer, topic_id) -> int:
    """The error code of partition 0 in a Fetch v13 naming the topic by id."""
    from kio.index import load_request_schema

    from mqlog.server.kafka._codec import part

    schema = load_request_schema(1, 13)
    asked = part(schema, "FetchTopic")(topic_id=topic_id, partitions=(
        part(schema, "FetchPartition")(partition=0, fetch_offset=0,
                                       partition_max_bytes=1 << 20),))
    with connect(server) as sock:
        sock.sendall(encode_request(1, 13, 9, max_wait=datetime.timedelta(0), min_bytes=0,
                                    topics=(asked,), forgotten_topics_data=(),
                                    replica_id=-1))
        (topic,) = decode_response(1, 13, read_frame(sock))[1].responses
    (partition,) = topic.partitions
    return partition.error_code


def test_a_deleted_topic_is_unknown_by_id(kafka_server: RunningServer) -> None:
    """A fetch by id remembers the topic's name; deleting the topic, through the
    server or by another process, makes its id unknown again at once."""
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("here")
        log.create_topic("elsewhere")
    ids = {t.name: t.topic_id for t in _metadata(kafka_server, 12, None).topics}
    assert _fetch_by_id(kafka_server, ids["here"]) == ErrorCode.none
    assert _fetch_by_id(kafka_server, ids["elsewhere"]) == ErrorCode.none
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_server.address})
    admin.delete_topics(["here"])["here"].result(10)
    assert _fetch_by_id(kafka_server, ids["here"]) == ErrorCode.unknown_topic_id
    with mqlog.open(kafka_server.directory) as log:  # another process deletes it
        log.delete_topic("elsewhere")
    assert _fetch_by_id(kafka_server, ids["elsewhere"]) == ErrorCode.unknown_topic_id
