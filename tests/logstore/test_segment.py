"""One segment: naming, writing and locating batches, preallocation, trimming, zeroing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._segment import (
    Segment,
    index_capacity,
    list_segment_bases,
    remove_segment_files,
    segment_name,
)

NOW_MS = 1_700_000_000_000


def framed(base_offset: int, values: list[bytes]) -> tuple:
    """The buffers of one batch of plain ``values`` starting at ``base_offset``."""
    (batch,) = _batch.encode(values, NOW_MS, 1 << 20)
    return batch.frame(base_offset)


def batch_length(values: list[bytes]) -> int:
    """Bytes of a batch of plain ``values``: header, table rows, payload."""
    return 48 + 20 * len(values) + sum(len(value) for value in values)


@pytest.fixture
def segment(tmp_path: Path) -> Iterator[Segment]:
    """A new segment with base offset 100."""
    segment = Segment(str(tmp_path), 100, create=True)
    yield segment
    segment.close()


def write_batches(segment: Segment, batches: list[list[bytes]]) -> list[int]:
    """Write consecutive batches from the segment start; return their positions."""
    positions = []
    position = 0
    offset = segment.base_offset
    for values in batches:
        segment.write(position, framed(offset, values), batch_length(values))
        positions.append(position)
        position += batch_length(values)
        offset += len(values)
    return positions


def test_segment_name_is_20_digits() -> None:
    assert segment_name(0) == "00000000000000000000"
    assert segment_name(52817) == "00000000000000052817"
    assert segment_name(2**63 - 1) == "09223372036854775807"


def test_index_capacity() -> None:
    assert index_capacity(4096, 4096) == 3
    assert index_capacity(128 * 1024 * 1024, 4096) == 32770
    assert index_capacity(10_000, 1) == 10_000 // 68 + 2  # one entry per batch at most


def test_new_segment_creates_three_empty_files(tmp_path: Path, segment: Segment) -> None:
    assert sorted(os.listdir(tmp_path)) == [
        "00000000000000000100.index", "00000000000000000100.log",
        "00000000000000000100.timeindex",
    ]
    assert segment.path == str(tmp_path / "00000000000000000100.log")
    assert segment.file_size() == 0
    with pytest.raises(fmt.BatchError, match="^segment file is empty$"):
        segment.buffer(1)


def test_create_refuses_an_existing_segment(tmp_path: Path, segment: Segment) -> None:
    with pytest.raises(FileExistsError):
        Segment(str(tmp_path), 100, create=True)


def test_opening_a_missing_segment_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Segment(str(tmp_path), 7)


def test_list_segment_bases_ignores_other_files(tmp_path: Path) -> None:
    for name in [
        "00000000000000000300.log", "00000000000000000007.log", "00000000000000000007.index",
        "00000000000000000300.timeindex", "state", "0000000000000000007.log",
        "000000000000000000007.log", "0000000000000000000x.log", "00000000000000000009.log.tmp",
        "00000000000000000011.index",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert list_segment_bases(str(tmp_path)) == [7, 300]


def test_remove_segment_files(tmp_path: Path) -> None:
    Segment(str(tmp_path), 5, create=True).close()
    Segment(str(tmp_path), 9, create=True).close()
    (tmp_path / "00000000000000000009.index").unlink()
    remove_segment_files(str(tmp_path), 9)  # a missing file is fine
    remove_segment_files(str(tmp_path), 12)
    assert sorted(os.listdir(tmp_path)) == [
        "00000000000000000005.index", "00000000000000000005.log",
        "00000000000000000005.timeindex",
    ]


def test_preallocate_grows_files_sparsely(segment: Segment) -> None:
    segment.preallocate(8192, 5)
    assert segment.file_size() == 8192
    assert os.path.getsize(segment.index.path) == 5 * 8
    assert os.path.getsize(segment.time_index.path) == 6 * fmt.TIME_INDEX_DTYPE.itemsize
    assert os.stat(segment.path).st_blocks * 512 < 8192  # nothing allocated yet
    assert not segment.has_bytes_at(0)


def test_write_then_read_headers(segment: Segment) -> None:
    segment.preallocate(4096, 3)
    positions = write_batches(segment, [[b"a", b"bb"], [b"ccc"], [b"dddd", b"e", b"f"]])
    assert positions == [0, 91, 91 + 71]
    limit = positions[-1] + batch_length([b"dddd", b"e", b"f"])
    headers = [segment.header_at(position, limit) for position in positions]
    assert [(h.base_offset, h.record_count) for h in headers] == [(100, 2), (102, 1), (103, 3)]
    with pytest.raises(fmt.BatchError, match="^end$"):
        segment.header_at(limit, 4096)
    with pytest.raises(fmt.BatchError, match="^end$"):
        segment.header_at(limit, limit)
    assert segment.has_bytes_at(positions[1])
    assert not segment.has_bytes_at(limit)


def test_write_past_the_preallocation_extends_the_file(segment: Segment) -> None:
    segment.preallocate(4096, 3)
    value = b"v" * 5000
    segment.write(0, framed(100, [value]), batch_length([value]))
    assert segment.file_size() == batch_length([value])
    header = segment.header_at(0, segment.file_size())
    assert header.batch_length == batch_length([value])


def test_header_at_verifies_the_checksum(segment: Segment) -> None:
    write_batches(segment, [[b"hello"]])
    os.pwrite(segment.fd, b"J", 48 + 20)  # first payload byte
    with pytest.raises(fmt.BatchError, match="^checksum mismatch$"):
        segment.header_at(0, batch_length([b"hello"]))
    header = segment.header_at(0, batch_length([b"hello"]), verify=False)
    assert header.record_count == 1


def test_verified_batches_are_not_hashed_again_until_forgotten(segment: Segment) -> None:
    write_batches(segment, [[b"hello"]])
    limit = batch_length([b"hello"])
    segment.header_at(0, limit)
    os.pwrite(segment.fd, b"J", 48 + 20)
    assert segment.header_at(0, limit).base_offset == 100  # remembered as verified
    segment.forget_verified_from(0)
    with pytest.raises(fmt.BatchError, match="^checksum mismatch$"):
        segment.header_at(0, limit)


def test_locate_with_and_without_index_entries(segment: Segment) -> None:
    segment.preallocate(4096, 4)
    batches = [[b"x" * 10] * 3 for _ in range(6)]  # offsets 100.., 3 per batch
    positions = write_batches(segment, batches)
    limit = positions[-1] + batch_length(batches[-1])
    segment.index.write(0, (6, positions[2]))
    segment.index.write(1, (12, positions[4]))
    for count in (0, 1, 2):
        for offset in range(100, 118):
            position, header = segment.locate(offset, limit, count)
            assert position == positions[(offset - 100) // 3]
            assert header.base_offset <= offset < header.next_offset
    assert segment.locate(118, limit, 2) == (limit, None)  # past the data


def test_trim_cuts_data_and_indexes(segment: Segment) -> None:
    segment.preallocate(8192, 4)
    write_batches(segment, [[b"abc"], [b"de"]])
    segment.index.write(0, (1, 71))
    segment.time_index.write(0, fmt.time_entry(NOW_MS, 1))
    segment.time_index.write(1, fmt.time_entry(NOW_MS, 2))
    segment.header_at(0, 8192)  # holds a map of the full preallocated length
    segment.trim(141, 1, 2)
    assert segment.file_size() == 141
    assert os.path.getsize(segment.index.path) == 8
    assert os.path.getsize(segment.time_index.path) == 2 * fmt.TIME_INDEX_DTYPE.itemsize
    assert segment.header_at(71, 141).base_offset == 101


def test_zero_from_discards_a_tail_keeping_the_length(segment: Segment) -> None:
    segment.preallocate(4096, 3)
    write_batches(segment, [[b"keep"], [b"drop"]])
    segment.header_at(72, 4096)
    segment.zero_from(72)
    assert segment.file_size() == 4096
    assert not segment.has_bytes_at(72)
    with pytest.raises(fmt.BatchError, match="^end$"):
        segment.header_at(72, 4096)
    assert segment.header_at(0, 4096).base_offset == 100
    segment.zero_from(5000)  # beyond the end: nothing to do
    assert segment.file_size() == 4096


def test_load_closed_ignores_junk_index_entries(tmp_path: Path, segment: Segment) -> None:
    segment.preallocate(4096, 4)
    positions = write_batches(segment, [[b"a"], [b"b"], [b"c"], [b"d"]])
    size = positions[-1] + batch_length([b"d"])
    segment.index.write(0, (1, positions[1]))
    segment.index.write(1, (3, positions[3]))
    segment.index.write(2, (2, 10))  # junk: goes backwards
    segment.time_index.write(0, fmt.time_entry(NOW_MS, 1))
    segment.time_index.write(1, fmt.time_entry(NOW_MS, 3))
    segment.time_index.write(2, fmt.time_entry(NOW_MS - 1, 4))  # junk: timestamp decreases
    segment.trim(size, 4, 4)
    segment.close()
    closed = Segment(str(tmp_path), 100)
    closed.load_closed()
    assert (closed.closed_index_count, closed.closed_time_count) == (2, 2)
    assert closed.locate(103, closed.file_size(), closed.closed_index_count)[0] == positions[3]
    closed.close()


def test_close_is_idempotent(segment: Segment) -> None:
    segment.close()
    segment.close()
    assert segment.fd == -1
