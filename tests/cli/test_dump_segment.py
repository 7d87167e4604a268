"""mqlog.logstore.dump: dump_segment decodes a segment file, damaged or not, and
refuses a file that is not a segment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mqlog
from mqlog.logstore import _format as fmt
from mqlog.logstore.dump import DumpedBatch, DumpedRecord, NotASegmentError, dump_segment

from ._helpers import (
    BATCH_BYTES,
    KEYED_RECORD,
    RECORDS_PER_BATCH,
    SEGMENT_BASES,
    batch_position,
    batch_timestamp,
    flip_byte,
    segment_file,
    set_batch_magic,
    value,
)


def test_dump_segment_decodes_headers_and_records(built: Path) -> None:
    batches = list(dump_segment(segment_file(built, SEGMENT_BASES[1])))
    assert [b.position for b in batches] == [batch_position(i) for i in range(11)]
    assert [b.base_offset for b in batches] == list(range(55, 110, 5))
    first = batches[0]
    assert isinstance(first, DumpedBatch)
    assert (first.record_count, first.batch_length, first.magic, first.attributes) == (
        RECORDS_PER_BATCH, BATCH_BYTES, 1, 0)
    assert first.valid is True and first.error is None
    assert first.first_timestamp == first.max_timestamp == batch_timestamp(11)
    assert first.records[0] == DumpedRecord(55, first.first_timestamp, None, value(55), {})
    assert [r.value for r in batches[-1].records] == [value(n) for n in range(105, 110)]


def test_dump_segment_keys_and_headers(built: Path) -> None:
    (batch,) = dump_segment(segment_file(built, 0, partition=1))
    (record,) = batch.records
    assert (record.offset, record.key, record.value, record.headers) == (
        0, KEYED_RECORD.key, KEYED_RECORD.value, {"h": b"v"})
    assert batch.attributes == fmt.ATTR_HAS_KEYS | fmt.ATTR_HAS_HEADERS


def test_dump_segment_without_records(built: Path) -> None:
    batches = list(dump_segment(segment_file(built, 0), records=False))
    assert len(batches) == 11
    assert all(b.records == () for b in batches)


def test_dump_segment_checksum_error_continues(built: Path) -> None:
    path = segment_file(built, 0)
    flip_byte(path, batch_position(1) + 200)
    batches = list(dump_segment(path))
    assert len(batches) == 11
    assert [(b.valid, b.error, len(b.records)) for b in batches[:3]] == [
        (True, None, 5), (False, "checksum mismatch", 0), (True, None, 5)]


def test_dump_segment_broken_framing_is_the_last_batch(built: Path) -> None:
    path = segment_file(built, 0)
    set_batch_magic(path, batch_position(3), 0x42)
    batches = list(dump_segment(path))
    assert len(batches) == 4
    last = batches[-1]
    assert (last.valid, last.error, last.magic, last.base_offset, last.position) == (
        False, "bad magic 66", 0x42, 15, batch_position(3))


def test_dump_segment_header_cut_by_the_file_end(built: Path) -> None:
    path = segment_file(built, 0)
    os.truncate(path, batch_position(1) + 16)
    last = list(dump_segment(path))[-1]
    assert (last.valid, last.error, last.batch_length, last.base_offset) == (
        False, "truncated header", BATCH_BYTES, 0)


def test_dump_segment_stops_at_preallocated_zeros(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("t", segment_bytes=1 << 16)
        log.append("t", 0, [b"x"])
        batches = list(dump_segment(log_dir / "topics/t/0/00000000000000000000.log"))
    assert [(b.base_offset, b.valid) for b in batches] == [(0, True)]


def test_dump_segment_of_missing_file_raises_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        dump_segment(tmp_path / "missing.log")


def test_dump_segment_of_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory, not a segment file"):
        dump_segment(tmp_path)


def test_dump_segment_of_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.log"
    path.touch()


# -- a file that is not a segment ------------------------------------------------------------


@pytest.mark.parametrize(("content", "reason"), [
    (b"hello, this is a text file and not a segment of any log\n" * 3, "bad magic 105"),
    (b"short", "truncated header"),
])
def test_dump_segment_refuses_a_file_that_is_not_a_segment(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(NotASegmentError, match=f"^{path}: not a segment file: {reason}$"):
        dump_segment(path)


def test_a_copied_segment_under_another_name_is_dumped(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bin"
    copy.write_bytes(segment_file(built, 0).read_bytes())
    assert len(list(dump_segment(copy))) == 11


def test_a_segment_named_file_with_a_broken_first_batch_is_damage(built: Path) -> None:
    """Named like a segment, it is one: damaged, not refused."""
    path = segment_file(built, 0)
    set_batch_magic(path, 0, 0x42)
    (batch,) = dump_segment(path)
    assert (batch.valid, batch.error, batch.position) == (False, "bad magic 66", 0)
