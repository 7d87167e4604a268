"""Readers never trip over writers: a file another process trims, unlinks or
renames under a reader gives the reader a re-map, a retry or a documented
MqlogError, never a raw error. Deterministic halves of the races; the
multi-process version is ``tests/crash/test_readers_and_writers.py``.

Two Log handles on one directory stand for two processes: each keeps its own
open topics, partitions and maps.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mqlog
from mqlog import UnknownTopicError
from mqlog.logstore import _segment
from mqlog.logstore._segment import Segment

T = "t"


def test_a_segment_trimmed_between_its_size_and_its_map_is_mapped_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: ``ValueError: mmap length is greater than file size`` in a tailing reader
    while writers rolled segments: a roll trims the old segment's preallocation
    between a reader's fstat and its mmap."""
    writer = Segment(str(tmp_path), 0, create=True)
    writer.preallocate(1 << 20, 16)
    writer.write(0, (b"x" * 100,), 100)
    reader = Segment(str(tmp_path), 0)  # another process's handle, nothing mapped yet
    stale = iter([1 << 20])  # the size the reader's fstat saw just before the trim
    real_size = Segment.file_size
    monkeypatch.setattr(_segment.Segment, "file_size",
                        lambda segment: next(stale, None) or real_size(segment))
    writer.trim(100, 0, 0)
    try:
        assert bytes(reader.buffer(100)[:100]) == b"x" * 100
        assert reader.mapped_bytes == 100
        assert next(stale, None) is None  # the stale size was met, then looked up again
    finally:
        reader.close()
        writer.close()


def test_a_partition_of_a_topic_deleted_elsewhere_is_unknown_and_not_recreated(
        log_dir: Path) -> None:
    with mqlog.open(log_dir) as admin, mqlog.open(log_dir) as reader:
        admin.create_topic(T, partitions=2)
        admin.append(T, 0, [b"old"])
        assert reader.end_offset(T, 0) == 1  # the reader has the topic open, partition 0 only
        admin.delete_topic(T)
        with pytest.raises(UnknownTopicError, match=f"'{T}'"):
            reader.read(T, 1, 0)
        assert os.listdir(log_dir / "topics") == []  # no directory of it came back
        with pytest.raises(UnknownTopicError, match=f"unknown topic '{T}'"):
            reader.read(T, 1, 0)


def test_a_reader_at_the_end_of_a_deleted_topic_moves_on_to_its_successor(
        log_dir: Path) -> None:
    with mqlog.open(log_dir) as admin, mqlog.open(log_dir) as reader:
        admin.create_topic(T)
        admin.append(T, 0, [b"first", b"second"])
        assert [r.value for r in reader.read(T, 0, 0)] == [b"first", b"second"]
        held = reader.engine.partition(T, 0)
        admin.delete_topic(T)
        with pytest.raises(UnknownTopicError, match=f"unknown topic '{T}'"):
            reader.read(T, 0, 2)  # deleted: from the first lookup after the deletion
        assert held.closed
        admin.create_topic(T)
        admin.append(T, 0, [b"reborn"])
        assert [r.value for r in reader.read(T, 0, 0)] == [b"reborn"]
        assert [len(c) for c in [reader.read_columns(T, 0, 0)]] == [1]


def test_a_reader_whose_view_is_older_than_a_deleted_topic_gets_unknown_topic(
        log_dir: Path) -> None:
    with mqlog.open(log_dir) as admin, mqlog.open(log_dir) as reader:
        admin.create_topic(T, segment_bytes=4096)
        admin.append(T, 0, [b"x" * 100])
        assert len(reader.read(T, 0, 0)) == 1
        for _ in range(3):
            admin.append(T, 0, [b"y" * 3000])  # rolls: the reader's view is stale
        admin.delete_topic(T)
        with pytest.raises(UnknownTopicError):
            reader.read(T, 0, 1)


def test_a_reader_by_name_is_told_of_a_deletion_it_did_not_see(log_dir: Path) -> None:
    """Deleted and created again between two reads: offsets by name are the new
    topic's at once, and the first read by name raises UnknownTopicError, once."""
    with mqlog.open(log_dir) as admin, mqlog.open(log_dir) as reader:
        admin.create_topic(T)
        admin.append(T, 0, [b"first", b"second"])
        assert [r.value for r in reader.read(T, 0, 0)] == [b"first", b"second"]
        admin.delete_topic(T)
        admin.create_topic(T)
        admin.append(T, 0, [b"reborn"])
        assert reader.end_offset(T, 0) == 1
        with pytest.raises(UnknownTopicError, match="was deleted"):
            reader.read(T, 0, 2)
        assert [r.value for r in reader.read(T, 0, 0)] == [b"reborn"]
        assert reader.append(T, 0, [b"more"]) == 1
