"""ListOffsets: earliest, latest and by time, on records appended embedded."""

from __future__ import annotations

import pytest

import mqlog
from tests.server._serve import (
    RunningServer,
    connect,
    decode_response,
    encode_request,
    read_frame,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T0 = 1_700_000_000_000  # the first record's timestamp; each next one is 1 s later
RECORDS = 10


@pytest.fixture
def timed(kafka_server: RunningServer) -> RunningServer:
    """Topic ``times``: partition 0 has 10 records at T0, T0+1s... with the first 2
    deleted (start offset 2); partition 1 is empty."""
    with mqlog.open(kafka_server.directory) as log:
        log.create_topic("times", partitions=2)
        with log.producer() as producer:
            for number in range(RECORDS):
                producer.send("times", f"r{number}", partition=0, timestamp=T0 + number * 1000)
        log.engine.delete_records("times", 0, 2)
    return kafka_server


def test_librdkafka_watermarks_and_offsets_for_times(timed: RunningServer) -> None:
    from confluent_kafka import OFFSET_END, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": timed.address, "group.id": "lister"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition("times", 0), timeout=10) == (2, 10)
        assert consumer.get_watermark_offsets(TopicPartition("times", 1), timeout=10) == (0, 0)
        asked = [
            (0, T0 + 4500, 5),  # between the 5th and 6th record: the 6th
            (0, T0 + 3000, 3),  # exactly the 4th
            (0, T0, 2),  # before the start: the start
            (0, T0 + 60_000, OFFSET_END),  # after every record
            (1, T0, OFFSET_END),  # empty
        ]
        for partition, timestamp, expected in asked:
            (found,) = consumer.offsets_for_times(
                [TopicPartition("times", partition, timestamp)], timeout=10)
            assert (found.error, found.offset) == (None, expected), (partition, timestamp)
    finally:
        consumer.close()


def test_kafka_python_beginning_end_and_offsets_for_times(timed: RunningServer) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=timed.address)
    first, empty = TopicPartition("times", 0), TopicPartition("times", 1)
    try:
        assert consumer.beginning_offsets([first, empty]) == {first: 2, empty: 0}
        assert consumer.end_offsets([first, empty]) == {first: 10, empty: 0}
        found = consumer.offsets_for_times({first: T0 + 4500, empty: T0})
        assert (found[first].offset, found[first].timestamp) == (5, T0 + 5000)
        assert found[empty] is None
        assert consumer.offsets_for_times({first: T0 + 60_000})[first] is None
    finally:
        consumer.close()


def test_unknown_topics_and_partitions_are_answered(timed: RunningServer) -> None:
    from kio.index import load_request_schema
    from kio.schema.errors import ErrorCode

    from mqlog.server.kafka._codec import part

    schema = load_request_schema(2, 7)
    partition = part(schema, "ListOffsetsPartition")
    topic = part(schema, "ListOffsetsTopic")
    topics = (topic(name="times", partitions=(partition(partition_index=7, timestamp=-1),
                                              partition(partition_index=0, timestamp=-3),
                                              partition(partition_index=0, timestamp=-5))),
              topic(name="nowhere", partitions=(partition(partition_index=0, timestamp=-2),)))
    with connect(timed) as sock:
        sock.sendall(encode_request(2, 7, 9, replica_id=-1, isolation_level=0, topics=topics))
        _, body = decode_response(2, 7, read_frame(sock))
    codes = [[p.error_code for p in t.partitions] for t in body.topics]
    assert codes == [[ErrorCode.unknown_topic_or_partition, ErrorCode.none,
                      ErrorCode.unsupported_version],  # -5: tiered storage's, not here
                     [ErrorCode.unknown_topic_or_partition]]
    newest = body.topics[0].partitions[1]  # MAX_TIMESTAMP: the last record, 9 s after T0
    assert (newest.offset, newest.timestamp) == (RECORDS - 1, T0 + (RECORDS - 1) * 1000)


def test_kcat_queries_offsets_by_time(timed: RunningServer) -> None:
    from tests.server import kcat

    asked = [
        (0, T0 + 4500, 5),  # between the 5th and 6th record: the 6th
        (0, T0 + 3000, 3),  # exactly the 4th
        (0, T0, 2),  # before the start: the start
        (0, T0 + 60_000, -1),  # after every record: none (librdkafka's OFFSET_END)
        (1, T0, -1),  # empty
        (0, -2, 2),  # earliest
        (0, -1, 10),  # latest
    ]
    for partition, timestamp, expected in asked:
        assert kcat.offset_for_time(timed.address, "times", partition, timestamp) == expected, (
            partition, timestamp)


def test_kafkajs_fetches_offsets_by_timestamp(timed: RunningServer) -> None:
    from tests.server import kafkajs

    def by_time(timestamp: int) -> dict[int, int]:
        (answer,) = kafkajs.run(timed.address, "admin", "offsets-by-time", "times",
                                str(timestamp))
        return {p["partition"]: p["offset"] for p in answer["partitions"]}

    assert by_time(T0 + 4500) == {0: 5, 1: 0}
    assert by_time(T0) == {0: 2, 1: 0}
    # After every record, kafkajs answers the end offset (the server says -1).
    assert by_time(T0 + 60_000) == {0: 10, 1: 0}


def test_admin_list_offsets_with_max_timestamp(timed: RunningServer) -> None:
    """KIP-734's MAX_TIMESTAMP (-3) with the earliest and latest specs, through
    confluent-kafka's AdminClient.list_offsets."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    with mqlog.open(timed.directory) as log:  # a late record, then an older one
        log.append("times", 0, [mqlog.Record(b"late", timestamp=T0 + 90_000),
                                mqlog.Record(b"old", timestamp=T0 + 500)])
    admin = AdminClient({"bootstrap.servers": timed.address})
    asked = {TopicPartition("times", 0): OffsetSpec.max_timestamp(),
             TopicPartition("times", 1): OffsetSpec.max_timestamp()}
    found = {tp.partition: future.result(10)
             for tp, future in admin.list_offsets(asked, request_timeout=10).items()}
    assert (found[0].offset, found[0].timestamp) == (10, T0 + 90_000)
    assert found[1].offset == -1  # an empty partition has no newest record
    ends = {tp.partition: future.result(10) for tp, future in admin.list_offsets(
        {TopicPartition("times", 0): OffsetSpec.earliest(),
         TopicPartition("times", 1): OffsetSpec.latest()}, request_timeout=10).items()}
    assert (ends[0].offset, ends[1].offset) == (2, 0)


def test_offsets_of_a_topic_another_process_deleted_and_created_again(
        timed: RunningServer) -> None:
    """The server had ``times`` open; another process deletes it and creates it
    again with one record: the watermarks are the new topic's, not the old
    handle's."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": timed.address, "group.id": "lister"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition("times", 0), timeout=10) == (2, 10)
        with mqlog.open(timed.directory) as log:
            log.delete_topic("times")
            log.create_topic("times", partitions=2)
            log.append("times", 0, [b"new"])
        assert consumer.get_watermark_offsets(TopicPartition("times", 0), timeout=10) == (0, 1)
    finally:
        consumer.close()
