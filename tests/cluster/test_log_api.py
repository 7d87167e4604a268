"""The Log API on a Kafka cluster (``mqlog.open("kafka://...")``), against ``mqlog
serve`` and Tansu: topics, the producer, reads by offset, offsets, time lookups."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqlog
from mqlog.consumer import TopicPartition
from tests.server._serve import serving

from .conftest import Broker, skip_on_tansu, unique

TANSU_END_OFFSET = ("ListOffsets(latest) answers the base offset of the partition's last "
                    "batch + 1, not its end, once a batch holds several records")
TANSU_TIME = "ListOffsets by timestamp answers the log start offset whatever the time"


@pytest.fixture
def log(broker: Broker) -> Iterator[mqlog.Log]:
    with mqlog.open(broker.url) as opened:
        yield opened


def test_a_kafka_url_opens_a_log_with_the_log_api(broker: Broker, log: mqlog.Log) -> None:
    assert isinstance(log, mqlog.Log)
    assert log.path == broker.url
    assert repr(log) == f"<mqlog.Log {broker.url!r}>"
    missing = [name for name in dir(mqlog.Log) if not name.startswith("_")
               and name not in vars(type(log)) and name not in ("engine",)]
    assert missing == []  # every method of Log is the cluster's own: none reaches an engine


def test_topics_create_describe_alter_delete(broker: Broker, log: mqlog.Log) -> None:
    name = unique("topics")
    created = log.create_topic(name, 2, retention_ms=3_600_000)
    assert created.name == name
    assert [(p.partition, p.start_offset, p.end_offset) for p in created.partitions] == [
        (0, 0, 0), (1, 0, 0)]
    assert created.config.retention_ms == 3_600_000
    assert name in log.topics()
    with pytest.raises(mqlog.TopicExistsError):
        log.create_topic(name, 2)
    assert log.create_topic(name, 2, exist_ok=True, retention_ms=3_600_000).name == name
    with pytest.raises(mqlog.TopicExistsError, match="2 partitions .asked 3"):
        log.create_topic(name, 3, exist_ok=True)
    with pytest.raises(mqlog.InvalidTopicError):
        log.create_topic("bad/name")
    with pytest.raises(mqlog.UnknownTopicError):
        log.describe_topic(unique("missing"))
    if broker.kind == "tansu":  # Tansu 0.6.0 does not offer CreatePartitions
        with pytest.raises(mqlog.UnsupportedError, match="add partitions"):
            log.alter_topic(name, partitions=3)
    else:
        log.alter_topic(name, partitions=3)
        assert len(log.describe_topic(name).partitions) == 3
    with pytest.raises(mqlog.ConfigError, match="never goes down"):
        log.alter_topic(name, partitions=1)
    assert log.alter_topic(name, retention_ms=120_000).retention_ms == 120_000
    log.delete_topic(name)
    assert name not in log.topics()
    with pytest.raises(mqlog.UnknownTopicError):
        log.end_offset(name, 0)


def test_producer_results_keys_headers_timestamps(broker: Broker, log: mqlog.Log) -> None:
    name = unique("produce")
    log.create_topic(name, 2)
    called: list[tuple[mqlog.RecordMetadata | None, BaseException | None]] = []
    with log.producer() as producer:
        assert isinstance(producer, mqlog.Producer)
        deliveries = [producer.send(name, f"v{n}", key=b"k", headers={"h": b"x"},
                                    partition=1, timestamp=1_700_000_000_000 + n,
                                    on_delivery=lambda meta, error: called.append((meta, error)))
                      for n in range(3)]
        assert producer.flush(30) == 0
        results = [delivery.result(30) for delivery in deliveries]
        assert all(delivery.done() for delivery in deliveries)
        many = producer.send_many(name, [b"a", b"b"], keys=[b"key-1", b"key-1"]).result(30)
        with pytest.raises(mqlog.UnknownPartitionError):
            producer.send(name, b"x", partition=2)
        with pytest.raises(mqlog.UnknownTopicError):
            producer.send(unique("missing"), b"x")
        with pytest.raises(TypeError):
            producer.send(name, 42)  # type: ignore[arg-type]
    assert results == [mqlog.RecordMetadata(name, 1, n, 1_700_000_000_000 + n) for n in range(3)]
    assert sorted(meta.offset for meta, error in called if meta and error is None) == [0, 1, 2]
    ((partition, offsets),) = many.items()  # one key: one partition
    assert len(offsets) == 2
    records = log.read(name, 1, 0)
    assert [(r.offset, r.key, r.value, dict(r.headers or {}), r.timestamp)
            for r in records[:3]] == [(n, b"k", f"v{n}".encode(), {"h": b"x"},
                                       1_700_000_000_000 + n) for n in range(3)]
    with pytest.raises(mqlog.LogClosedError):
        producer.send(name, b"late")


def test_a_producer_sends_to_partitions_added_after_its_first_send(broker: Broker,
                                                                   log: mqlog.Log) -> None:
    skip_on_tansu(broker, "Tansu 0.6.0 does not offer CreatePartitions")
    name = unique("grown")
    log.create_topic(name, 1)
    with log.producer() as producer:
        assert producer.send(name, b"a", partition=0).result(30).offset == 0
        with mqlog.open(broker.url) as other:  # as another process would
            other.alter_topic(name, partitions=2)
        assert producer.send(name, b"b", partition=1).result(30).offset == 0
        with pytest.raises(mqlog.UnknownPartitionError):
            producer.send(name, b"c", partition=2)
    assert [record.value for record in log.read(name, 1, 0)] == [b"b"]


def test_a_delivery_that_fails_reports_its_error(tmp_path: Path) -> None:
    """The broker stops: records it never took fail after librdkafka's message
    timeout, through result(), done() and on_delivery."""
    called: list[tuple[mqlog.RecordMetadata | None, BaseException | None]] = []
    both_called = threading.Event()

    def record(meta: mqlog.RecordMetadata | None, error: BaseException | None) -> None:
        called.append((meta, error))
        if len(called) == 2:
            both_called.set()

    with serving(tmp_path / "log") as server:
        log = mqlog.open(f"kafka://{server.address}?producer.message.timeout.ms=1000")
        log.create_topic("lost", 1)
        producer = log.producer()
        first = producer.send("lost", b"kept").result(30)
        assert (first.topic, first.partition, first.offset) == ("lost", 0, 0)
    try:
        deliveries = [producer.send("lost", b"%d" % n, on_delivery=record) for n in range(2)]
        for delivery in deliveries:
            with pytest.raises(mqlog.MqlogError, match="send to lost"):
                delivery.result(30)
            assert delivery.done()
        assert both_called.wait(30)
        assert [meta for meta, _error in called] == [None, None]
        assert all(isinstance(error, mqlog.MqlogError) for _meta, error in called)
    finally:
        producer.close(5)
        log.close()


def test_read_iter_and_offsets(broker: Broker, log: mqlog.Log) -> None:
    name = unique("read")
    log.create_topic(name, 1)
    with log.producer() as producer:
        for n in range(12):  # one at a time: one record per batch (see TANSU_END_OFFSET)
            producer.send(name, b"%d" % n, timestamp=1_700_000_000_000 + 10 * n).result(30)
    assert (log.start_offset(name, 0), log.end_offset(name, 0)) == (0, 12)
    assert [r.offset for r in log.read(name, 0, 3, max_records=4)] == [3, 4, 5, 6]
    assert [r.offset for r in log.read(name, 0, 7, max_records=4)] == [7, 8, 9, 10]
    assert [r.value for r in log.read(name, 0, 10)] == [b"10", b"11"]
    assert log.read(name, 0, 12) == []
    assert [r.offset for r in log.iter(name, 0, 2, 5)] == [2, 3, 4]
    assert [r.offset for r in log.iter(name, 0)] == list(range(12))
    columns = log.read_columns(name, 0, 5, max_records=3)
    assert list(columns.offsets) == [5, 6, 7] and columns.values() == [b"5", b"6", b"7"]
    with pytest.raises(mqlog.OffsetOutOfRangeError) as raised:
        log.read(name, 0, 40)
    assert (raised.value.start_offset, raised.value.end_offset) == (0, 12)
    with pytest.raises(mqlog.UnknownPartitionError):
        log.read(name, 1, 0)
    first = log.append(name, 0, [b"x", mqlog.Record(b"y", key=b"z", headers={"a": b"b"})])
    assert first == 12
    assert [(r.key, r.value) for r in log.read(name, 0, 12)] == [(None, b"x"), (b"z", b"y")]


def test_end_offset_after_batches_of_several_records(broker: Broker, log: mqlog.Log) -> None:
    skip_on_tansu(broker, TANSU_END_OFFSET)
    name = unique("batches")
    log.create_topic(name, 1)
    with log.producer(linger_ms=50) as producer:
        producer.send_many(name, [b"%d" % n for n in range(50)]).result(30)
    assert log.end_offset(name, 0) == 50
    assert log.describe_topic(name).partitions[0].record_count == 50


def test_offset_for_time(broker: Broker, log: mqlog.Log) -> None:
    skip_on_tansu(broker, TANSU_TIME)
    name = unique("time")
    log.create_topic(name, 1)
    with log.producer() as producer:
        for n in range(5):
            producer.send(name, b"v", timestamp=1_700_000_000_000 + 10 * n).result(30)
    assert log.offset_for_time(name, 0, 1_700_000_000_015) == 2
    assert log.offset_for_time(name, 0, 0) == 0
    assert log.offset_for_time(name, 0, 1_800_000_000_000) == 5


def test_what_a_cluster_cannot_do_raises_unsupported(broker: Broker, log: mqlog.Log) -> None:
    name = unique("unsupported")
    log.create_topic(name, 1)
    for call, operation in [
        (lambda: log.queue("workers", name), "queue"),
        (lambda: log.describe_queue("workers"), "describe_queue"),
        (lambda: log.pending("workers"), "pending"),
        (lambda: log.receive_with_receipts("workers", name), "receive_with_receipts"),
        (lambda: log.dead_letters(name), "dead_letters"),
        (lambda: log.redrive(name), "redrive"),
        (lambda: log.request(name, b"x", 1.0), "request"),
        (lambda: log.responder(name, lambda message: b""), "responder"),
        (lambda: log.enforce_retention(), "enforce_retention"),
        (lambda: log.compact(), "compact"),
        (lambda: log.flush(), "flush"),
        (lambda: log.delete_offsets("group", name), "delete_offsets"),
        (lambda: log.engine, "Log.engine"),
        (lambda: log.create_topic(unique("always"), durability="always"), "durability"),
        (lambda: log.producer().send(name, b"x", delay_s=1.0), "delay_s"),
    ]:
        with pytest.raises(mqlog.UnsupportedError) as raised:
            call()
        assert operation in str(raised.value)
        assert operation in raised.value.operation
    # The default of an mqlog-only setting is accepted (copies of a topic's config carry it).
    config = dataclasses.asdict(log.describe_topic(name).config)
    assert log.create_topic(unique("copy"), 1, **config).config.durability == "interval"
    if broker.kind == "tansu":  # it lacks DeleteRecords, and closes the connection
        with pytest.raises(mqlog.MqlogError, match="delete records"):  # when asked
            log.delete_records(name, 0, 0)


def test_delete_records(broker: Broker, log: mqlog.Log) -> None:
    skip_on_tansu(broker, "Tansu 0.6.0 does not offer DeleteRecords")
    name = unique("trimmed")
    log.create_topic(name, 2)
    log.append(name, 0, [b"%d" % n for n in range(10)])
    assert log.delete_records(name, 0, 4) == 4
    assert log.delete_records(name, 0, 2) == 4  # at or below the start: nothing changes
    assert (log.start_offset(name, 0), log.end_offset(name, 0)) == (4, 10)
    assert [record.value for record in log.read(name, 0, 4, max_records=2)] == [b"4", b"5"]
    with pytest.raises(mqlog.OffsetOutOfRangeError):
        log.read(name, 0, 3)
    with pytest.raises(mqlog.OffsetOutOfRangeError):
        log.delete_records(name, 0, 11)
    with pytest.raises(mqlog.UnknownPartitionError):
        log.delete_records(name, 2, 0)
    assert log.delete_records(name, 0, 10) == 10
    assert log.read(name, 0, 10) == []


def test_closed_log_refuses_calls(broker: Broker) -> None:
    log = mqlog.open(broker.url)
    log.close()
    log.close()
    with pytest.raises(mqlog.LogClosedError):
        log.topics()


def test_read_only_refuses_writes(broker: Broker) -> None:
    with mqlog.open(broker.url, read_only=True) as log:
        with pytest.raises(mqlog.ReadOnlyError):
            log.create_topic(unique("ro"))
        with pytest.raises(mqlog.ReadOnlyError):
            log.producer()
        assert isinstance(log.topics(), list)


def test_topic_partition_is_the_same_type(log: mqlog.Log) -> None:
    name = unique("tp")
    log.create_topic(name, 1)
    with log.consumer() as consumer:
        consumer.assign([TopicPartition(name, 0)])
        assert consumer.assignment() == {TopicPartition(name, 0)}
        assert isinstance(consumer, mqlog.Consumer)
