"""Producer: partitioning, batching, deliveries, validation and ordering."""

from __future__ import annotations

import threading

import pytest

import mqlog
from mqlog.producer import RecordMetadata, key_partition


@pytest.fixture
def log(tmp_path):
    with mqlog.open(tmp_path / "log", durability="none") as opened:
        opened.create_topic("t", partitions=4)
        yield opened


def all_records(log, topic="t"):
    out = {}
    for description in log.describe_topic(topic).partitions:
        out[description.partition] = list(log.iter(topic, description.partition))
    return out


def test_send_returns_delivery_with_metadata(log):
    with log.producer() as producer:
        delivery = producer.send("t", b"v", key=b"k", headers={"h": b"1"}, timestamp=1234)
        metadata = delivery.result(timeout=5)
    assert metadata == RecordMetadata("t", key_partition(b"k", 4), 0, 1234)
    [record] = log.read("t", metadata.partition, 0)
    assert (record.key, record.value, dict(record.headers), record.timestamp) == (
        b"k", b"v", {"h": b"1"}, 1234)


def test_metadata_timestamp_is_append_time_when_not_given(tmp_path):
    now = [1_000_000]
    with mqlog.open(tmp_path / "log", clock=lambda: now[0]) as log:
        log.create_topic("t")
        with log.producer() as producer:
            metadata = producer.send("t", b"v").result(5)
        assert metadata.timestamp == 1_000_000
        assert log.read("t", 0, 0)[0].timestamp == 1_000_000


def test_str_is_encoded_and_other_types_rejected(log):
    with log.producer() as producer:
        metadata = producer.send("t", "héllo", key="ключ").result(5)
        record = log.read("t", metadata.partition, metadata.offset)[0]
        assert (record.key, record.value) == ("ключ".encode(), "héllo".encode())
        for bad in (1, None, 2.5, {"a": 1}):
            with pytest.raises(TypeError, match="value must be bytes or str"):
                producer.send("t", bad)
        with pytest.raises(TypeError, match="key must be bytes or str"):
            producer.send("t", b"v", key=7)
        with pytest.raises(TypeError, match="headers must be a mapping"):
            producer.send("t", b"v", headers=[("a", b"b")])
        with pytest.raises(TypeError, match="header 'a' must be bytes or str"):
            producer.send("t", b"v", headers={"a": 1})
        with pytest.raises(TypeError, match="timestamp must be an int"):
            producer.send("t", b"v", timestamp=1.5)
    assert sum(d.record_count for d in log.describe_topic("t").partitions) == 1


def test_oversized_unknown_topic_and_partition_rejected_before_queueing(tmp_path):
    with mqlog.open(tmp_path / "log", max_record_bytes=100) as log:
        log.create_topic("t", partitions=2)
        with log.producer() as producer:
            with pytest.raises(mqlog.RecordTooLargeError, match="over max_record_bytes=100"):
                producer.send("t", b"x" * 101)
            with pytest.raises(mqlog.RecordTooLargeError):
                producer.send("t", b"x" * 60, key=b"k" * 41)
            with pytest.raises(mqlog.RecordTooLargeError):
                producer.send_many("t", [b"ok", b"x" * 101])
            with pytest.raises(mqlog.UnknownTopicError):
                producer.send("nope", b"v")
            with pytest.raises(mqlog.UnknownPartitionError, match="partitions 0..1"):
                producer.send("t", b"v", partition=2)
            producer.send("t", b"x" * 100).result(5)
        assert [d.record_count for d in log.describe_topic("t").partitions] in ([1, 0], [0, 1])


def test_keyed_records_follow_the_documented_hash(log):
    keys = [f"user-{i}".encode() for i in range(50)]
    with log.producer() as producer:
        deliveries = [producer.send("t", b"v", key=key) for key in keys]
        producer.flush()
    for key, delivery in zip(keys, deliveries):
        assert delivery.result(0).partition == key_partition(key, 4)
    assert key_partition(b"user-0", 4) == __import__("xxhash").xxh3_64_intdigest(b"user-0") % 4


def test_per_key_order_is_kept(log):
    with log.producer() as producer:
        for index in range(2000):
            producer.send("t", str(index).encode(), key=f"k{index % 7}".encode())
    seen: dict[bytes, list[int]] = {}
    for records in all_records(log).values():
        for record in records:
            seen.setdefault(record.key, []).append(int(record.value))
    assert sorted(seen) == [f"k{i}".encode() for i in range(7)]
    for values in seen.values():
        assert values == sorted(values)
    assert sum(map(len, seen.values())) == 2000


def test_keyless_records_are_sticky_then_move_on(log):
    with log.producer(batch_bytes=1000, linger_ms=50) as producer:
        deliveries = [producer.send("t", b"x" * 100) for _ in range(40)]
        producer.flush()
    partitions = [delivery.result(0).partition for delivery in deliveries]
    # 10 records of 100 bytes fill a batch; then the next partition takes over
    assert partitions == [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10


def test_custom_partitioner(log):
    calls = []

    def partitioner(key, count):
        calls.append((key, count))
        return 3

    with log.producer(partitioner=partitioner) as producer:
        assert producer.send("t", b"v", key=b"a").result(5).partition == 3
        assert producer.send("t", b"v").result(5).partition == 3
    assert calls == [(b"a", 4), (None, 4)]


def test_bad_partitioner_result_is_an_error(log):
    with log.producer(partitioner=lambda key, count: 9) as producer, pytest.raises(
        ValueError, match="partitioner returned 9"
    ):
        producer.send("t", b"v")


def test_send_many_fast_path(log):
    values = [str(i).encode() for i in range(5000)]
    with log.producer() as producer:
        ranges = producer.send_many("t", values).result(5)
    [(partition, offsets)] = ranges.items()
    assert offsets == range(0, 5000)
    assert [r.value for r in log.iter("t", partition)] == values


def test_send_many_with_keys_groups_by_partition(log):
    values = [str(i).encode() for i in range(300)]
    keys = [f"k{i % 5}".encode() for i in range(300)]
    with log.producer() as producer:
        ranges = producer.send_many("t", values, keys=keys).result(5)
    assert sum(len(r) for r in ranges.values()) == 300
    for partition, offsets in ranges.items():
        for record in log.read("t", partition, offsets.start, max_records=len(offsets)):
            assert key_partition(record.key, 4) == partition
    with log.producer() as producer, pytest.raises(ValueError, match="2 keys for 3 values"):
        producer.send_many("t", [b"a", b"b", b"c"], keys=[b"a", b"b"])


def test_send_then_send_many_keeps_order_in_partition(log):
    with log.producer(linger_ms=10_000) as producer:
        producer.send("t", b"first", partition=0)
        producer.send_many("t", [b"second", b"third"], keys=None)
        producer.flush(5)
    # send_many went to the sticky partition (0, where "first" sits)
    assert [r.value for r in log.read("t", 0, 0)] == [b"first", b"second", b"third"]


def test_on_delivery_callback_and_errors(log):
    got = []
    with log.producer() as producer:
        producer.send("t", b"v", partition=1,
                      on_delivery=lambda metadata, error: got.append((metadata, error)))
        producer.flush(5)
    assert got == [(RecordMetadata("t", 1, 0, got[0][0].timestamp), None)]

    failures = []
    producer = log.producer(linger_ms=10_000)
    delivery = producer.send("t", b"v", partition=2,
                             on_delivery=lambda metadata, error: failures.append(error))
    log.delete_topic("t")
    producer.flush(5)
    producer.close()
    assert isinstance(failures[0], mqlog.MqlogError)
    with pytest.raises(mqlog.MqlogError):
        delivery.result(0)


def test_flush_waits_and_linger_batches(log):
    with log.producer(linger_ms=60_000) as producer:
        deliveries = [producer.send("t", b"v", partition=0) for _ in range(100)]
        assert not deliveries[0].done()
        assert producer.flush(timeout=5) == 0
        assert all(d.done() for d in deliveries)
    assert log.end_offset("t", 0) == 100
    segment_batches = 1  # one linger window: the 100 records went out as one batch
    from mqlog.logstore._format import decode_header
    path = log.path + "/topics/t/0/00000000000000000000.log"
    with open(path, "rb") as handle:
        data = handle.read()
    header = decode_header(data, 0, len(data))
    assert header.record_count == 100 * segment_batches


def test_close_flushes_and_rejects_later_sends(log):
    producer = log.producer(linger_ms=60_000)
    delivery = producer.send("t", b"v", partition=0)
    producer.close()
    assert delivery.result(0).offset == 0
    with pytest.raises(mqlog.LogClosedError):
        producer.send("t", b"v")


def test_buffer_limit_blocks_until_room(log):
    with log.producer(buffer_bytes=1000) as producer:
        deliveries = [producer.send("t", b"x" * 300, partition=0) for _ in range(20)]
        producer.flush(5)
    assert [d.result(0).offset for d in deliveries] == list(range(20))


def test_many_threads_sending(log):
    def worker(number):
        with log.producer() as producer:
            for index in range(500):
                producer.send("t", f"{number}:{index}".encode(), key=str(number).encode())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_writer: dict[str, list[int]] = {}
    for records in all_records(log).values():
        for record in records:
            writer, index = record.value.decode().split(":")
            by_writer.setdefault(writer, []).append(int(index))
    assert {w: v for w, v in by_writer.items()} == {str(n): list(range(500)) for n in range(4)}


def test_durability_always_delivery_means_flushed(tmp_path, monkeypatch):
    import os

    flushed = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (flushed.append(fd), real(fd))[1])
    with mqlog.open(tmp_path / "log", durability="always") as log:
        log.create_topic("t")
        with log.producer() as producer:
            producer.send("t", b"v").result(5)
            assert flushed
