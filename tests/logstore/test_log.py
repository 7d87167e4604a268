"""The Log API: topics, appends and reads, rolling, preallocation, several Log objects."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import numpy as np
import pytest

import mqlog
from mqlog import PartitionDescription, Record, RecordTooLargeError, TopicConfig, TopicDescription
from mqlog.errors import UnknownTopicError
from mqlog.logstore import _format as fmt
from mqlog.logstore import _iteration, _topic
from mqlog.logstore._segment import index_capacity

T = "orders"


def batch_bytes(*sizes: int) -> int:
    """On-disk bytes of one batch of plain records of these value sizes."""
    return 48 + 20 * len(sizes) + sum(sizes)


def partition_dir(log_dir: Path, topic: str = T, partition: int = 0) -> Path:
    """The directory of one partition."""
    return log_dir / "topics" / topic / str(partition)


def file_sizes(log_dir: Path, topic: str = T, partition: int = 0) -> dict[str, int]:
    """Sizes of the segment and index files of one partition, by name."""
    directory = partition_dir(log_dir, topic, partition)
    return {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.name != "state"}


def segment_file_names(*bases: int) -> list[str]:
    """The data and index file names of segments starting at ``bases``, sorted."""
    return sorted(f"{base:020d}{suffix}" for base in bases
                  for suffix in (".log", ".index", ".timeindex"))


@pytest.fixture
def log(log_dir: Path, clock) -> Iterator[mqlog.Log]:
    """An open log on the fake clock, without fsyncs."""
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        yield log


# -- topics --------------------------------------------------------------------------------


def test_create_topic_returns_its_description(log: mqlog.Log) -> None:
    description = log.create_topic(T, partitions=3, segment_bytes=8192)
    assert description == TopicDescription(
        T, TopicConfig(segment_bytes=8192, durability="none"),
        [PartitionDescription(number, 0, 0, 0, 1) for number in range(3)],
    )
    assert (description.record_count, description.size_bytes) == (0, 0)
    assert log.describe_topic(T) == description


def test_topics_are_listed_sorted_and_deleted(log: mqlog.Log, log_dir: Path) -> None:
    for name in ("b", "a", "c.d_e-1", "...", "A" * 249):
        log.create_topic(name)
    assert log.topics() == ["...", "A" * 249, "a", "b", "c.d_e-1"]
    log.delete_topic("b")
    assert log.topics() == ["...", "A" * 249, "a", "c.d_e-1"]
    assert sorted(os.listdir(log_dir / "topics")) == ["...", "A" * 249, "a", "c.d_e-1"]


def test_deleted_topic_can_be_created_again_from_offset_zero(log: mqlog.Log) -> None:
    log.create_topic(T)
    log.append(T, 0, [b"a", b"b"])
    log.delete_topic(T)
    log.create_topic(T, partitions=2)
    assert log.end_offset(T, 0) == 0
    assert log.append(T, 1, [b"c"]) == 0
    assert log.read(T, 0, 0) == []


def test_directory_layout(log: mqlog.Log, log_dir: Path) -> None:
    log.create_topic(T, partitions=2)
    assert json.loads((log_dir / "mqlog.json").read_text()) == {"layout_version": 1}
    assert {".lock", ".meta.lock", "mqlog.json", "topics"} <= set(os.listdir(log_dir))
    assert sorted(os.listdir(log_dir / "topics" / T)) == ["0", "1", "topic.json"]
    assert sorted(os.listdir(partition_dir(log_dir))) == segment_file_names(0) + ["state"]


def test_config_is_persisted_across_reopen(log_dir: Path, clock) -> None:
    options = dict(segment_bytes=5000, segment_ms=60_000, index_interval_bytes=100,
                   retention_ms=3_600_000, retention_bytes=10**9, max_record_bytes=2000,
                   durability="always", flush_ms=7)
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic(T, partitions=2, **options)
    document = json.loads((log_dir / "topics" / T / "topic.json").read_text())
    assert document == {"partitions": 2,
                        "config": dataclasses.asdict(TopicConfig(**options))}
    assert options.items() <= document["config"].items()
    with mqlog.open(log_dir, create=False, clock=clock) as log:
        assert log.topics() == [T]
        description = log.describe_topic(T)
        assert description.config == TopicConfig(**options)
        assert len(description.partitions) == 2


def test_open_defaults_apply_to_new_topics(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock, segment_bytes=8192, retention_ms=5) as log:
        assert log.create_topic("x").config == TopicConfig(segment_bytes=8192, retention_ms=5)
        assert log.create_topic("y", segment_bytes=4096).config == TopicConfig(
            segment_bytes=4096, retention_ms=5
        )


def test_alter_topic_changes_only_what_is_given(log: mqlog.Log, log_dir: Path, clock) -> None:
    log.create_topic(T, segment_bytes=8192)
    altered = log.alter_topic(T, retention_bytes=10_000, flush_ms=50)
    expected = TopicConfig(segment_bytes=8192, retention_bytes=10_000, flush_ms=50,
                           durability="none")
    assert altered == expected
    assert log.describe_topic(T).config == expected
    with mqlog.open(log_dir, clock=clock) as again:
        assert again.describe_topic(T).config == expected


def test_alter_is_visible_to_another_log_object(log: mqlog.Log, log_dir: Path, clock) -> None:
    log.create_topic(T)
    with mqlog.open(log_dir, clock=clock) as other:
        assert other.describe_topic(T).config.retention_ms is None
        log.alter_topic(T, retention_ms=1234)
        assert other.describe_topic(T).config.retention_ms == 1234
        other.alter_topic(T, retention_ms=99)
        assert log.describe_topic(T).config.retention_ms == 99


def test_alter_reaches_appends_of_another_log_object(log: mqlog.Log, log_dir: Path, clock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_topic, "CONFIG_RECHECK_S", 0.0)  # normally within one second
    log.create_topic(T)
    with mqlog.open(log_dir, clock=clock) as other:
        other.append(T, 0, [b"x" * 11])
        log.alter_topic(T, max_record_bytes=10)
        with pytest.raises(RecordTooLargeError):
            other.append(T, 0, [b"x" * 11])
        assert other.append(T, 0, [b"x" * 10]) == 1


def test_alter_topic_adds_partitions(log: mqlog.Log, log_dir: Path, clock) -> None:
    log.create_topic(T, partitions=2)
    with mqlog.open(log_dir, clock=clock) as other:
        assert len(other.describe_topic(T).partitions) == 2
        log.alter_topic(T, partitions=4)
        assert other.append(T, 3, [b"new"]) == 0
        assert [p.partition for p in other.describe_topic(T).partitions] == [0, 1, 2, 3]
    assert log.read(T, 3, 0)[0].value == b"new"
    assert log.describe_topic(T).partitions[2] == PartitionDescription(2, 0, 0, 0, 1)


# -- append and read -------------------------------------------------------------------------


def test_offsets_are_dense(log: mqlog.Log) -> None:
    log.create_topic(T, partitions=2)
    assert (log.start_offset(T, 0), log.end_offset(T, 0)) == (0, 0)
    assert log.append(T, 0, [b"a", b"b"]) == 0
    assert log.append(T, 0, [b"c"]) == 2
    assert log.append(T, 0, []) == 3  # nothing appended
    assert log.append(T, 1, (b"z",)) == 0
    assert (log.start_offset(T, 0), log.end_offset(T, 0)) == (0, 3)
    assert log.end_offset(T, 1) == 1
    assert log.describe_topic(T).partitions[0].size_bytes == batch_bytes(1, 1) + batch_bytes(1)


def test_read_returns_records_with_offsets_and_timestamps(log: mqlog.Log, clock) -> None:
    log.create_topic(T)
    first_time = clock.now_ms
    log.append(T, 0, [b"a", bytearray(b"bb"), memoryview(b"ccc")])
    clock.advance(5)
    log.append(T, 0, ["str"])
    records = log.read(T, 0, 0)
    assert records == [
        Record(b"a", None, None, first_time, 0),
        Record(b"bb", None, None, first_time, 1),
        Record(b"ccc", None, None, first_time, 2),
        Record(b"str", None, None, first_time + 5, 3),
    ]
    assert all(type(r.value) is bytes and r.key is None and dict(r.headers) == {}
               for r in records)
    assert log.read(T, 0, 2) == records[2:]
    assert log.read(T, 0, 4) == []


def test_keys_headers_and_timestamps_round_trip(log: mqlog.Log, log_dir: Path, clock) -> None:
    log.create_topic(T)
    appended = [
        Record(b"v1", key=b"k1", headers={"trace": b"t-1", "empty": b""}, timestamp=5),
        Record(b"v2", key=b"", timestamp=-(2**63)),
        Record(b"", key=None, headers={"only": "str"}, timestamp=2**63 - 1),
        Record(b"v4"),
        b"v5",
    ]
    log.append(T, 0, appended)
    expected = [
        Record(b"v1", b"k1", {"trace": b"t-1", "empty": b""}, 5, 0),
        Record(b"v2", b"", None, -(2**63), 1),
        Record(b"", None, {"only": b"str"}, 2**63 - 1, 2),
        Record(b"v4", None, None, clock.now_ms, 3),
        Record(b"v5", None, None, clock.now_ms, 4),
    ]
    assert log.read(T, 0, 0) == expected
    assert log.read(T, 0, 1)[0].key == b""  # an empty key is not "no key"
    log.close()
    with mqlog.open(log_dir, clock=clock) as again:
        assert again.read(T, 0, 0) == expected


def test_max_records(log: mqlog.Log) -> None:
    log.create_topic(T)
    log.append(T, 0, [bytes([i]) for i in range(10)])
    log.append(T, 0, [bytes([i]) for i in range(10, 20)])
    assert [r.offset for r in log.read(T, 0, 0, max_records=1)] == [0]
    assert [r.offset for r in log.read(T, 0, 8, max_records=4)] == [8, 9, 10, 11]
    assert [r.offset for r in log.read(T, 0, 15, max_records=500)] == [15, 16, 17, 18, 19]
    assert len(log.read(T, 0, 0)) == 20


def test_max_bytes_across_batches(log: mqlog.Log) -> None:
    log.create_topic(T)
    for i in range(5):
        log.append(T, 0, [bytes([i]) * 10])
    assert [r.offset for r in log.read(T, 0, 0, max_bytes=25)] == [0, 1]
    assert [r.offset for r in log.read(T, 0, 0, max_bytes=30)] == [0, 1, 2]
    assert [r.offset for r in log.read(T, 0, 1, max_bytes=5)] == [1]  # at least one
    assert [r.offset for r in log.read(T, 0, 1, max_bytes=0)] == [1]
    assert [r.offset for r in log.read(T, 0, 0, max_records=2, max_bytes=10**6)] == [0, 1]


def test_max_bytes_within_one_batch(log: mqlog.Log) -> None:
    log.create_topic(T)
    log.append(T, 0, [bytes([i]) * 10 for i in range(5)])  # one batch
    assert [r.offset for r in log.read(T, 0, 0, max_bytes=25)] == [0, 1]
    assert [r.offset for r in log.read(T, 0, 1, max_bytes=30)] == [1, 2, 3]
    assert [r.offset for r in log.read(T, 0, 2, max_bytes=1)] == [2]


def test_max_bytes_counts_keys_headers_and_values(log: mqlog.Log) -> None:
    log.create_topic(T)
    size = 10 + 5 + len(msgpack.packb({"h": b"x"}, use_bin_type=True))
    log.append(T, 0, [Record(b"v" * 10, key=b"k" * 5, headers={"h": b"x"})])
    log.append(T, 0, [Record(b"w" * 10, key=b"k" * 5, headers={"h": b"x"})])
    assert size == 21
    assert len(log.read(T, 0, 0, max_bytes=2 * size - 1)) == 1
    assert len(log.read(T, 0, 0, max_bytes=2 * size)) == 2


def test_iter(log: mqlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_iteration, "ITER_CHUNK_RECORDS", 3)  # several reads per iteration
    log.create_topic(T)
    for start in range(0, 10, 2):
        log.append(T, 0, [str(start).encode(), str(start + 1).encode()])
    assert [r.offset for r in log.iter(T, 0)] == list(range(10))
    assert [r.value for r in log.iter(T, 0, start=4, end=9)] == [b"4", b"5", b"6", b"7", b"8"]
    assert [r.offset for r in log.iter(T, 0, start=7, end=100)] == [7, 8, 9]
    assert list(log.iter(T, 0, start=10)) == []
    assert list(log.iter(T, 0, start=5, end=5)) == []


def test_iter_reaches_records_appended_while_iterating(log: mqlog.Log,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_iteration, "ITER_CHUNK_RECORDS", 2)
    log.create_topic(T)
    log.append(T, 0, [b"0", b"1", b"2"])
    seen = []
    for record in log.iter(T, 0):
        seen.append(record.offset)
        if record.offset == 1:
            log.append(T, 0, [b"3"])
    assert seen == [0, 1, 2, 3]


def test_offset_for_time(log_dir: Path, clock) -> None:
    """First offset with a timestamp >= ts, through several segments and index entries,
    with timestamps that go up and down."""
    base = clock.now_ms
    timestamps = [base + ((i * 7) % 13) * 1000 for i in range(36)]
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic(T, segment_bytes=4096, index_interval_bytes=100)
        for start in range(0, 36, 3):
            log.append(T, 0, [Record(b"x" * 300, timestamp=ts)
                              for ts in timestamps[start:start + 3]])
        assert log.describe_topic(T).partitions[0].segment_count == 3
        for target in range(base - 500, base + 13_500, 250):
            expected = next((i for i, ts in enumerate(timestamps) if ts >= target), 36)
            assert log.offset_for_time(T, 0, target) == expected, target
        log.alter_topic(T, retention_bytes=1)
        log.enforce_retention(T)
        start = log.start_offset(T, 0)
        assert start == 24
        assert log.offset_for_time(T, 0, base - 1) == start


@pytest.mark.parametrize("ts", [-(2**63), -1, 0, 2**63 - 1])
def test_offset_for_time_on_an_empty_partition(log: mqlog.Log, ts: int) -> None:
    log.create_topic(T)
    assert log.offset_for_time(T, 0, ts) == 0


# -- segments ----------------------------------------------------------------------------------


def test_roll_by_size(log: mqlog.Log, log_dir: Path) -> None:
    log.create_topic(T, segment_bytes=4096)
    for i in range(10):
        log.append(T, 0, [bytes([i]) * 1000])  # 1068-byte batches: 3 per segment
    assert sorted(n for n in file_sizes(log_dir) if n.endswith(".log")) == [
        "00000000000000000000.log", "00000000000000000003.log", "00000000000000000006.log",
        "00000000000000000009.log",
    ]
    assert log.describe_topic(T).partitions == [
        PartitionDescription(0, 0, 10, 10 * batch_bytes(1000), 4)
    ]
    sizes = file_sizes(log_dir)
    assert [sizes[f"{base:020d}.log"] for base in (0, 3, 6)] == [3 * batch_bytes(1000)] * 3
    assert [r.value for r in log.read(T, 0, 0)] == [bytes([i]) * 1000 for i in range(10)]


def test_a_batch_larger_than_a_segment_gets_its_own(log: mqlog.Log, log_dir: Path) -> None:
    log.create_topic(T, segment_bytes=4096)
    log.append(T, 0, [b"a"])
    log.append(T, 0, [b"b" * 3000, b"c" * 3000])
    log.append(T, 0, [b"d"])
    sizes = file_sizes(log_dir)
    assert sizes["00000000000000000000.log"] == batch_bytes(1)
    assert sizes["00000000000000000001.log"] == batch_bytes(3000, 3000)
    assert "00000000000000000003.log" in sizes
    assert [r.value[:1] for r in log.read(T, 0, 0)] == [b"a", b"b", b"c", b"d"]


def test_roll_by_age(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic(T, segment_ms=1000)
        log.append(T, 0, [b"0"])
        clock.advance(999)
        log.append(T, 0, [b"1"])
        clock.advance(1)
        log.append(T, 0, [b"2"])  # the segment is 1000 ms old: roll first
        log.append(T, 0, [b"3"])
        assert log.describe_topic(T).partitions[0].segment_count == 2
        assert sorted(n for n in file_sizes(log_dir) if n.endswith(".log")) == [
            "00000000000000000000.log", "00000000000000000002.log"
        ]
    clock.advance(1000)
    with mqlog.open(log_dir, clock=clock) as log:  # the age survives a reopen
        log.append(T, 0, [b"4"])
        assert log.describe_topic(T).partitions[0].segment_count == 3
        assert [r.value for r in log.read(T, 0, 0)] == [b"0", b"1", b"2", b"3", b"4"]


def test_an_empty_segment_does_not_roll_by_age(log: mqlog.Log, clock) -> None:
    log.create_topic(T, segment_ms=10)
    clock.advance(1000)
    log.append(T, 0, [b"a"])
    assert log.describe_topic(T).partitions[0].segment_count == 1


def test_index_entries_every_interval(log: mqlog.Log, log_dir: Path) -> None:
    log.create_topic(T, segment_bytes=100_000, index_interval_bytes=1000)
    for _ in range(6):
        log.append(T, 0, [b"x" * 1000])
    log.close()
    sizes = file_sizes(log_dir)
    assert sizes["00000000000000000000.index"] == 5 * 8  # every batch after the first
    assert sizes["00000000000000000000.timeindex"] == 5 * fmt.TIME_INDEX_DTYPE.itemsize
    data = (partition_dir(log_dir) / "00000000000000000000.index").read_bytes()
    entries = np.frombuffer(data, dtype=fmt.OFFSET_INDEX_DTYPE).tolist()
    assert entries == [(i, i * batch_bytes(1000)) for i in range(1, 6)]


def test_preallocated_while_open_and_trimmed_after_close(log_dir: Path, clock) -> None:
    capacity = index_capacity(8192, 4096)
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic(T, segment_bytes=8192)
        log.append(T, 0, [b"a" * 100, b"b" * 100, b"c" * 100])
        assert file_sizes(log_dir) == {
            "00000000000000000000.index": capacity * 8,
            "00000000000000000000.log": 8192,
            "00000000000000000000.timeindex": (capacity + 1) * fmt.TIME_INDEX_DTYPE.itemsize,
        }
        assert log.describe_topic(T).partitions[0].size_bytes == batch_bytes(100, 100, 100)
    assert file_sizes(log_dir) == {
        "00000000000000000000.index": 0,
        "00000000000000000000.log": batch_bytes(100, 100, 100),
        "00000000000000000000.timeindex": 0,
    }
    with mqlog.open(log_dir, clock=clock) as log:
        assert file_sizes(log_dir)["00000000000000000000.log"] == batch_bytes(100, 100, 100)
        log.append(T, 0, [b"d"])  # preallocated again while open
        assert file_sizes(log_dir)["00000000000000000000.log"] == 8192
        assert [r.value[:1] for r in log.read(T, 0, 0)] == [b"a", b"b", b"c", b"d"]
    assert file_sizes(log_dir)["00000000000000000000.log"] == batch_bytes(100, 100, 100) + (
        batch_bytes(1)
    )


def test_split_appends_stay_dense(log: mqlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "BATCH_BYTES_MAX", 200)
    log.create_topic(T)
    values = [bytes([65 + i]) * 50 for i in range(9)]  # 70 bytes per record: 2 per batch
    assert log.append(T, 0, values) == 0
    assert log.append(T, 0, [b"z"]) == 9
    assert [r.value for r in log.read(T, 0, 0)] == values + [b"z"]
    assert log.describe_topic(T).partitions[0].size_bytes == 4 * batch_bytes(50, 50) + (
        batch_bytes(50) + batch_bytes(1)
    )


@pytest.mark.parametrize("durability", ["none", "interval", "always"])
def test_durability_modes(log_dir: Path, clock, durability: str) -> None:
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic(T, durability=durability, segment_bytes=4096)
        for i in range(6):
            log.append(T, 0, [bytes([i]) * 1000])
        log.flush()
        assert [r.value[0] for r in log.read(T, 0, 0)] == list(range(6))
    with mqlog.open(log_dir, clock=clock) as log:
        assert [r.value[0] for r in log.read(T, 0, 0)] == list(range(6))


def test_context_manager_closes(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock) as log:
        assert repr(log) == f"<mqlog.Log {str(log_dir)!r}>"
    assert repr(log) == f"<mqlog.Log {str(log_dir)!r} closed>"
    log.close()  # idempotent


def test_describe_sums_over_partitions(log: mqlog.Log) -> None:
    log.create_topic(T, partitions=3, segment_bytes=4096)
    for partition, count in ((0, 4), (2, 1)):
        for _ in range(count):
            log.append(T, partition, [b"x" * 1000])
    description = log.describe_topic(T)
    assert description.partitions == [
        PartitionDescription(0, 0, 4, 4 * batch_bytes(1000), 2),
        PartitionDescription(1, 0, 0, 0, 1),
        PartitionDescription(2, 0, 1, batch_bytes(1000), 1),
    ]
    assert (description.record_count, description.size_bytes) == (5, 5 * batch_bytes(1000))


# -- several Log objects on one directory --------------------------------------------------------


def test_two_logs_see_each_others_appends(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock) as first, mqlog.open(log_dir, clock=clock) as second:
        first.create_topic(T, segment_bytes=4096)
        assert second.topics() == [T]
        assert first.append(T, 0, [b"a"]) == 0
        assert [r.value for r in second.read(T, 0, 0)] == [b"a"]
        assert second.append(T, 0, [b"b"]) == 1
        assert first.append(T, 0, [b"c"]) == 2
        for i in range(6):  # rolls made by `second` while `first` holds the old segment open
            second.append(T, 0, [bytes([i]) * 1000])
        assert [r.value[:1] for r in first.read(T, 0, 0)] == [b"a", b"b", b"c"] + [
            bytes([i]) for i in range(6)
        ]
        assert first.describe_topic(T) == second.describe_topic(T)
        assert first.describe_topic(T).partitions[0].segment_count == 2
        first.close()
        active = f"{6:020d}.log"
        assert file_sizes(log_dir)[active] == 4096  # `second` is still open
    assert file_sizes(log_dir)[active] == 3 * batch_bytes(1000)


def test_the_last_close_trims_partitions_it_never_opened(log_dir: Path, clock) -> None:
    """A log at rest holds no preallocated slack, whoever opened what."""
    # `other` closes first; the last to close never opened the partition.
    with mqlog.open(log_dir, clock=clock), mqlog.open(log_dir, clock=clock) as other:
        other.create_topic(T, segment_bytes=8192)
        other.append(T, 0, [b"hello"])
    assert file_sizes(log_dir) == {
        "00000000000000000000.index": 0,
        "00000000000000000000.log": batch_bytes(5),
        "00000000000000000000.timeindex": 0,
    }


def test_appends_to_a_topic_deleted_elsewhere_fail_then_reach_its_successor(
        log_dir: Path) -> None:
    # Two handles stand for two processes: each caches its own open topic.
    with mqlog.open(log_dir) as writer, mqlog.open(log_dir) as admin:
        writer.create_topic(T)
        assert writer.append(T, 0, [b"a", b"b"]) == 0
        held = writer.engine.partition(T, 0)  # as a producer holds it
        admin.delete_topic(T)
        with pytest.raises(UnknownTopicError, match=f"topic '{T}' was deleted"):
            writer.engine.append_to(held, [b"lost?"])
        with pytest.raises(UnknownTopicError, match=f"unknown topic '{T}'"):
            writer.read(T, 0, 0)
        with pytest.raises(UnknownTopicError, match=f"unknown topic '{T}'"):
            writer.append(T, 0, [b"c"])
        assert held.closed  # dropped by the lookups
        with pytest.raises(UnknownTopicError, match=f"topic '{T}' was deleted"):
            writer.engine.append_to(held, [b"still lost"])
        admin.create_topic(T)
        assert writer.append(T, 0, [b"d"]) == 0  # the new topic, from offset 0
        assert [r.value for r in admin.read(T, 0, 0)] == [b"d"]


@pytest.mark.parametrize("removed", [True, False], ids=["removed", "being-removed"])
def test_the_last_close_after_another_process_deleted_a_topic_it_read(
        log_dir: Path, removed: bool) -> None:
    """The last process to close trims its partitions' preallocation: a topic it
    had open that another process deleted (or is deleting: its directory renamed
    away, not yet removed) is skipped, not an error."""
    from mqlog.logstore._topic_files import doom_topic, remove_doomed

    reader = mqlog.open(log_dir)
    reader.create_topic(T)
    reader.create_topic("kept")
    reader.append("kept", 0, [b"k"])
    assert reader.read(T, 0, 0) == []  # opens the topic
    with mqlog.open(log_dir) as admin:
        if removed:
            admin.delete_topic(T)
        else:
            doomed = doom_topic(str(log_dir / "topics"), T)
    reader.close()
    if not removed:
        remove_doomed(doomed)
    with mqlog.open(log_dir) as again:
        assert again.topics() == ["kept"]
        assert [r.value for r in again.read("kept", 0, 0)] == [b"k"]


def test_lookups_see_a_topic_deleted_and_created_again_elsewhere(log_dir: Path) -> None:
    """Offsets asked by name never come from the handle of a deleted topic."""
    with mqlog.open(log_dir) as reader, mqlog.open(log_dir) as admin:
        reader.create_topic(T, partitions=2)
        reader.append(T, 0, [b"a", b"b"])
        held = reader.engine.partition(T, 0)
        assert (reader.start_offset(T, 0), reader.end_offset(T, 0)) == (0, 2)
        admin.delete_topic(T)
        with pytest.raises(UnknownTopicError):
            reader.end_offset(T, 0)
        assert held.closed  # the lookup dropped the deleted topic's handle
        admin.create_topic(T)
        admin.append(T, 0, [b"new"])
        assert (reader.start_offset(T, 0), reader.end_offset(T, 0)) == (0, 1)
        assert reader.describe_topic(T).partitions[0].end_offset == 1
        with pytest.raises(UnknownTopicError, match="was deleted"):
            reader.read(T, 0, 2)  # the first read by name after the deletion is told
        assert [r.value for r in reader.read(T, 0, 0)] == [b"new"]


def test_a_topic_deleted_while_this_thread_opens_one_of_its_partitions(log_dir: Path) -> None:
    """Opening a partition runs the end-floor hook, whose lookups may drop the
    very topic being opened (deleted meanwhile): no deadlock, the half-opened
    partition is closed, and the lookup opens the topic that has the name now."""
    with mqlog.open(log_dir) as log, mqlog.open(log_dir) as other:
        log.create_topic(T, partitions=2)
        log.create_topic("kept")
        old = log.engine.partition(T, 0)
        deleted: list[bool] = []
        real_floor = log.engine._table.end_floor

        def floor(topic: str, number: int) -> int | None:
            if topic == T and not deleted:
                deleted.append(True)
                other.delete_topic(T)
                other.create_topic(T, partitions=2)
                other.append(T, 1, [b"new"])
                log.end_offset("kept", 0)  # any lookup: it drops T's handle
            return real_floor(topic, number) if real_floor else None

        log.engine.set_end_floor(floor)
        partition = log.engine.partition(T, 1)
        assert old.closed
        assert not partition.closed and not partition.deleted()
        assert log.end_offset(T, 1) == 1
        assert log.engine.partition(T, 1) is partition


def test_a_topic_renamed_away_for_removal_counts_as_deleted(log_dir: Path) -> None:
    """Between the rename of a deleted topic's directory and the removal of its
    files, a handle already finds it deleted (whatever now has its name)."""
    from mqlog.logstore._topic_files import doom_topic, remove_doomed

    with mqlog.open(log_dir) as log:
        log.create_topic(T)
        held = log.engine.partition(T, 0)
        assert not held.deleted()
        doomed = doom_topic(str(log_dir / "topics"), T)
        assert held.deleted()
        log.create_topic(T)
        assert held.deleted()
        remove_doomed(doomed)
        assert held.deleted()


def test_whether_a_topic_was_deleted_never_trusts_a_descriptor_number(log_dir: Path) -> None:
    """A sweep on another thread may close a handle's state file while this one
    asks whether its topic was deleted, and the process may open another file
    under the freed number at once: the answer must come from the file at the
    path, compared with the file as opened, not from an ``fstat`` of that
    number (which answered for whatever file had it: "deleted")."""
    with mqlog.open(log_dir) as log, mqlog.open(log_dir) as admin:
        log.create_topic(T)
        held = log.engine.partition(T, 0)
        number = held.state_file.fd
        kept = os.dup(number)  # the state file stays open, under another number
        os.close(number)
        unrelated = os.open(log_dir / "unrelated", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            assert unrelated == number  # the lowest free number: the one freed
            assert not held.deleted()
            admin.delete_topic(T)
            assert held.deleted()
        finally:
            os.dup2(kept, number)  # the state file back under its number
            os.close(kept)


def test_no_append_succeeds_after_delete_topic_returned(log_dir: Path) -> None:
    with mqlog.open(log_dir) as writer, mqlog.open(log_dir) as admin:
        writer.create_topic(T, partitions=2)
        acknowledged: list[float] = []
        errors: list[Exception] = []
        stop = threading.Event()

        def append_until_refused() -> None:
            while not stop.is_set():
                try:
                    writer.append(T, 1, [b"x"])
                except UnknownTopicError as error:
                    errors.append(error)
                    return
                acknowledged.append(time.monotonic())

        thread = threading.Thread(target=append_until_refused)
        thread.start()
        while len(acknowledged) < 100:
            time.sleep(0.001)
        admin.delete_topic(T)
        deleted = time.monotonic()
        thread.join(timeout=10)
        stop.set()
        assert [type(e) for e in errors] == [UnknownTopicError]
        assert max(acknowledged) < deleted


def test_a_lookup_during_a_sweep_never_takes_a_handle_the_sweep_has_not_reached(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup made while another sweep is under way (here: from inside it, as
    another thread would between two of its steps) sweeps too, rather than
    take the handle of a deleted topic the first sweep has not looked at yet;
    the first sweep then passes over the handles the second one closed."""
    from mqlog.logstore._partition import Partition

    with mqlog.open(log_dir) as reader, mqlog.open(log_dir) as admin:
        for name in ("a", "b"):
            reader.create_topic(name)
            reader.append(name, 0, [b"x", b"y"])
            reader.engine.partition(name, 0)
        admin.delete_topic("a")
        admin.delete_topic("b")
        admin.create_topic("b")
        table = reader.engine._table
        looked_up_mid_sweep: list[list[Partition]] = []
        started: list[bool] = []
        real_deleted = Partition.deleted

        def deleted(partition: Partition) -> bool:
            if not started:  # the sweep's first step
                started.append(True)
                looked_up_mid_sweep.append(table.topic("b").open_partitions())
            return real_deleted(partition)

        monkeypatch.setattr(Partition, "deleted", deleted)
        assert reader.end_offset("b", 0) == 0
        assert looked_up_mid_sweep == [[]]  # the new topic's handle, nothing open yet
