"""create_topic(exist_ok=True), a file given as the log directory, and the records
present in a compacted partition."""

from __future__ import annotations

from pathlib import Path

import pytest

import mqlog
from mqlog.errors import ConfigError, TopicExistsError


def test_exist_ok_returns_the_matching_topic_and_changes_nothing(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        created = log.create_topic("orders", 3, durability="always")
        log.append("orders", 1, [b"a", b"b"])
        again = log.create_topic("orders", 3, exist_ok=True, durability="always")
        assert again.name == "orders" and again.config == created.config
        assert [p.end_offset for p in again.partitions] == [0, 2, 0]
        # Settings not given are not compared: the topic may have been altered since.
        log.alter_topic("orders", retention_ms=60_000)
        assert log.create_topic("orders", 3, exist_ok=True).config.retention_ms == 60_000


def test_exist_ok_names_every_difference(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("orders", 2)
        with pytest.raises(TopicExistsError) as raised:
            log.create_topic("orders", 4, exist_ok=True, durability="always",
                             flush_ms=100)  # flush_ms is the default: no difference
        assert str(raised.value) == ("topic 'orders' already exists with partitions 2 "
                                     "(asked 4), durability 'interval' (asked 'always')")
        with pytest.raises(TopicExistsError, match="already exists$"):
            log.create_topic("orders", 2)  # without exist_ok: as before
        with pytest.raises(ConfigError):  # bad config is bad input, topic or not
            log.create_topic("orders", 2, exist_ok=True, durability="never")
        assert len(log.describe_topic("orders").partitions) == 2


def test_a_file_is_not_a_log_directory(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    for options in ({}, {"create": False}, {"read_only": True}):
        with pytest.raises(ConfigError, match="notes.txt is a file, not a log directory"):
            mqlog.open(path, **options)
    assert path.read_text() == "hello\n"


def test_a_compacted_partition_counts_the_records_present(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=4096,
                         min_cleanable_dirty_ratio=0.01)
        for n in range(400):
            log.append("c", 0, [mqlog.Record(b"v%d" % n, key=b"k%d" % (n % 32))])
        log.compact("c")
        [partition] = log.describe_topic("c").partitions
        present = sum(1 for _ in log.iter("c", 0))
        assert present < 400 and (partition.start_offset, partition.end_offset) == (0, 400)
        assert partition.records_present == partition.record_count == present
        assert log.describe_topic("c").record_count == present


def test_other_topics_count_the_offset_span_without_reading(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("d")
        log.append("d", 0, [b"x"] * 7)
        [partition] = log.describe_topic("d").partitions
        assert (partition.records_present, partition.record_count) == (None, 7)
