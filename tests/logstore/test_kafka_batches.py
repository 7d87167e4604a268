"""Kafka record batches stored as sent: appended through the engine, read back
by Kafka readers whole and by embedded readers as records.

The golden inputs in tests/data/kafka/ are record batches real clients sent
(librdkafka 2.16 and kafka-python 3.0, one per compression codec); kafka-python's
record module builds and checks the uncompressed ones here.
"""

from __future__ import annotations

import glob
import os
import struct

import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

import mqlog
from mqlog import InvalidRecordBatchError, Record, RecordTooLargeError
from mqlog.logstore import Engine
from mqlog.logstore.dump import dump_segment
from mqlog.logstore.verify import verify_log

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "kafka")
BASE_TS = 1_700_000_000_000


def kafka_batch(records, producer=(-1, -1, -1), base_offset=0) -> bytes:
    """(key, value, headers, timestamp) tuples as a Kafka batch, kafka-python's encoder."""
    builder = DefaultRecordBatchBuilder(2, 0, False, producer[0], producer[1], producer[2],
                                        batch_size=2**30)
    for delta, (key, value, headers, timestamp) in enumerate(records):
        builder.append(delta, timestamp, key, value, headers)
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)


def sample(count: int, start: int = 0):
    return [(b"k%d" % i, b"value %d" % i, [("h", b"%d" % i)], BASE_TS + i)
            for i in range(start, start + count)]


@pytest.fixture
def engine(tmp_path):
    engine = Engine(tmp_path / "log")
    engine.create_topic("t", partitions=1)
    yield engine
    engine.close()


def test_embedded_readers_see_kafka_records_with_keys_headers_and_timestamps(engine):
    first = engine.append_kafka_batches("t", 0, kafka_batch(sample(3)))
    assert first == 0
    records = engine.read("t", 0, 0)
    assert [(r.offset, r.key, r.value, dict(r.headers), r.timestamp) for r in records] == [
        (i, b"k%d" % i, b"value %d" % i, {"h": b"%d" % i}, BASE_TS + i) for i in range(3)]
    columns = engine.read_columns("t", 0, 1)
    assert columns.values() == [b"value 1", b"value 2"]


def test_kafka_readers_get_the_stored_batch_with_the_broker_fields_set(engine):
    engine.append("t", 0, [b"native"])
    sent = kafka_batch(sample(5), base_offset=77)
    assert engine.append_kafka_batches("t", 0, sent) == 1
    fetched = engine.read_kafka_batches("t", 0, 1, 1 << 20)
    assert len(fetched) == 1
    stored = fetched[0]
    assert stored[8:12] == sent[8:12] and stored[16:] == sent[16:]  # as sent, CRC included
    batch = DefaultRecordBatch(stored)
    assert batch.base_offset == 1 and batch.validate_crc()
    assert struct.unpack_from(">i", stored, 12)[0] == 0  # partition leader epoch
    assert [r.offset for r in batch] == [1, 2, 3, 4, 5]


def test_a_fetch_from_inside_a_kafka_batch_returns_the_whole_batch(engine):
    engine.append_kafka_batches("t", 0, kafka_batch(sample(5)))
    engine.append_kafka_batches("t", 0, kafka_batch(sample(2, 5)))
    fetched = engine.read_kafka_batches("t", 0, 3, 1 << 20)
    assert [DefaultRecordBatch(b).base_offset for b in fetched] == [0, 5]
    assert [r.offset for r in engine.read("t", 0, 3)] == [3, 4, 5, 6]


def test_native_batches_are_encoded_for_kafka_readers_from_the_offset_asked(engine):
    engine.append("t", 0, [Record(b"v%d" % i, key=None if i % 2 else b"k%d" % i,
                                  headers={"n": b"%d" % i} if i == 2 else None,
                                  timestamp=BASE_TS + 10 - i) for i in range(5)])
    (encoded,) = engine.read_kafka_batches("t", 0, 2, 1 << 20)
    batch = DefaultRecordBatch(encoded)
    assert batch.validate_crc() and batch.base_offset == 2
    got = [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in batch]
    assert got == [(2, b"k2", b"v2", [("n", b"2")], BASE_TS + 8), (3, None, b"v3", [], BASE_TS + 7),
                   (4, b"k4", b"v4", [], BASE_TS + 6)]
    assert batch.max_timestamp == BASE_TS + 8


def test_kafka_reads_stop_near_max_bytes_but_return_one_batch(engine):
    for start in range(0, 30, 10):
        engine.append_kafka_batches("t", 0, kafka_batch(sample(10, start)))
    one = engine.read_kafka_batches("t", 0, 0, 1)
    assert len(one) == 1
    sizes = [len(batch) for batch in engine.read_kafka_batches("t", 0, 0, 1 << 20)]
    assert len(sizes) == 3 and len(one[0]) == sizes[0]
    assert len(engine.read_kafka_batches("t", 0, 0, sizes[0] + sizes[1])) == 2
    assert len(engine.read_kafka_batches("t", 0, 0, sizes[0] + sizes[1] - 1)) == 1
    assert engine.read_kafka_batches("t", 0, 30, 1 << 20) == []


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(DATA, "*.batch"))),
                         ids=os.path.basename)
def test_batches_real_clients_sent_in_every_codec_read_back(tmp_path, path):
    with open(path, "rb") as handle:
        sent = handle.read()
    engine = Engine(tmp_path / "log")
    engine.create_topic("t")
    first = engine.append_kafka_batches("t", 0, sent)
    records = engine.read("t", 0, first, max_records=1000)
    start = int(records[0].key[1:])
    assert [r.key for r in records] == [b"k%d" % (start + i) for i in range(len(records))]
    assert all(r.value == (b"hello world %d " % (start + i)) * 5 for i, r in enumerate(records))
    assert engine.read_kafka_batches("t", 0, first, 1 << 20)[0][16:] == sent[16:]
    engine.close()


def test_bad_batches_are_refused_before_anything_is_written(engine):
    good = kafka_batch(sample(3))
    flipped = bytearray(good)
    flipped[-1] ^= 1
    with pytest.raises(InvalidRecordBatchError) as caught:
        engine.append_kafka_batches("t", 0, bytes(flipped))
    assert caught.value.corrupt
    with pytest.raises(InvalidRecordBatchError):
        engine.append_kafka_batches("t", 0, good[:40])
    old_magic = bytearray(good)
    old_magic[16] = 1
    with pytest.raises(InvalidRecordBatchError, match="magic 1"):
        engine.append_kafka_batches("t", 0, bytes(old_magic))
    transactional = DefaultRecordBatchBuilder(2, 0, True, 5, 0, 0, batch_size=2**20)
    transactional.append(0, BASE_TS, None, b"x", [])
    with pytest.raises(InvalidRecordBatchError, match="transactional"):
        engine.append_kafka_batches("t", 0, bytes(transactional.build()))
    engine.alter_topic("t", max_record_bytes=100)
    with pytest.raises(RecordTooLargeError):
        engine.append_kafka_batches("t", 0, good)
    assert engine.end_offset("t", 0) == 0


def test_an_idempotent_kafka_batch_sent_twice_is_written_once(engine):
    batch = kafka_batch(sample(4), producer=(42, 0, 0))
    assert engine.append_kafka_batches("t", 0, batch) == 0
    assert engine.append_kafka_batches("t", 0, batch) == 0
    assert engine.end_offset("t", 0) == 4
    assert engine.append_kafka_batches("t", 0, kafka_batch(sample(2), producer=(42, 0, 4))) == 4
    with pytest.raises(mqlog.ProducerSequenceError):
        engine.append_kafka_batches("t", 0, kafka_batch(sample(1), producer=(42, 0, 9)))


def test_kafka_batches_survive_reopening_verify_dump_and_time_lookup(tmp_path):
    path = tmp_path / "log"
    engine = Engine(path)
    engine.create_topic("t")
    engine.append_kafka_batches("t", 0, kafka_batch(sample(10)))
    engine.append("t", 0, [Record(b"after", timestamp=BASE_TS + 100)])
    assert engine.offset_for_time("t", 0, BASE_TS + 4) == 4
    engine.close()
    engine = Engine(path)
    assert engine.end_offset("t", 0) == 11
    assert [r.value for r in engine.read("t", 0, 8)] == [b"value 8", b"value 9", b"after"]
    engine.close()
    report = verify_log(path)
    assert report.ok, report
    segment = sorted(glob.glob(str(path / "topics" / "t" / "0" / "*.log")))[0]
    batches = list(dump_segment(segment, records=True))
    assert [len(b.records) for b in batches] == [10, 1] and batches[0].error is None


def test_compaction_keeps_the_latest_value_of_keys_from_kafka_batches(tmp_path):
    engine = Engine(tmp_path / "log")
    engine.create_topic("c", cleanup_policy="compact", segment_bytes=4096,
                        min_cleanable_dirty_ratio=0.01)
    for round_ in range(30):
        engine.append_kafka_batches("c", 0, kafka_batch(
            [(b"key%d" % (i % 3), b"%d-%d" % (round_, i), [], BASE_TS + round_) for i in range(6)]))
    engine.compact("c")
    latest = {r.key: r.value for r in engine.iter("c", 0)}
    assert latest == {b"key0": b"29-3", b"key1": b"29-4", b"key2": b"29-5"}
    kept = list(engine.iter("c", 0))
    assert kept[0].offset > 0 and len(kept) < 180 // 2  # older values are gone
    engine.close()


def test_a_kafka_batch_without_timestamps_verifies_clean(tmp_path):
    path = tmp_path / "log"
    engine = Engine(path)
    engine.create_topic("t")
    engine.append_kafka_batches("t", 0, kafka_batch([(None, b"v", [], -1)] * 3))
    assert [r.timestamp for r in engine.read("t", 0, 0)] == [-1, -1, -1]
    engine.close()
    report = verify_log(path)
    assert report.ok, report
