"""Sparse offset and time indexes: growth, lookups, validation and trimming."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mqlog.logstore import _format as fmt
from mqlog.logstore._index import OffsetIndex, SparseIndex, TimeIndex


@pytest.fixture
def offset_index(tmp_path: Path) -> Iterator[OffsetIndex]:
    index = OffsetIndex(str(tmp_path / "00000000000000000000.index"))
    yield index
    index.close()


@pytest.fixture
def time_index(tmp_path: Path) -> Iterator[TimeIndex]:
    index = TimeIndex(str(tmp_path / "00000000000000000000.timeindex"))
    yield index
    index.close()


def fill(index: SparseIndex, entries: list[tuple]) -> None:
    """Grow ``index`` to exactly ``entries`` and write them."""
    index.ensure_capacity(len(entries))
    for slot, entry in enumerate(entries):
        assert index.write(slot, entry) is True


def test_new_index_file_is_empty(offset_index: OffsetIndex) -> None:
    assert os.path.getsize(offset_index.path) == 0
    assert offset_index.capacity == 0
    assert offset_index.entries.dtype == fmt.OFFSET_INDEX_DTYPE
    assert offset_index.write(0, (1, 100)) is False


def test_opening_an_existing_index_keeps_its_entries(tmp_path: Path) -> None:
    path = str(tmp_path / "x.index")
    first = OffsetIndex(path)
    fill(first, [(3, 300), (9, 900)])
    first.close()
    again = OffsetIndex(path)
    assert again.capacity == 2
    assert again.entries.tolist() == [(3, 300), (9, 900)]
    again.close()


def test_ensure_capacity_grows_a_zero_filled_file(offset_index: OffsetIndex) -> None:
    offset_index.ensure_capacity(10)
    assert os.path.getsize(offset_index.path) == 10 * 8
    assert offset_index.capacity == 10
    assert offset_index.entries.tolist() == [(0, 0)] * 10
    offset_index.ensure_capacity(4)  # never shrinks
    assert offset_index.capacity == 10


def test_write_until_full(offset_index: OffsetIndex) -> None:
    offset_index.ensure_capacity(2)
    assert offset_index.write(0, (1, 100)) is True
    assert offset_index.write(1, (2, 200)) is True
    assert offset_index.write(2, (3, 300)) is False
    assert offset_index.entries.tolist() == [(1, 100), (2, 200)]


def test_entries_reach_the_file(offset_index: OffsetIndex) -> None:
    fill(offset_index, [(5, 4096), (70000, 2**31)])
    expected = np.array([(5, 4096), (70000, 2**31)], dtype=fmt.OFFSET_INDEX_DTYPE).tobytes()
    with open(offset_index.path, "rb") as handle:
        assert handle.read() == expected


def test_remap_sees_growth_by_another_handle(tmp_path: Path) -> None:
    path = str(tmp_path / "x.index")
    reader = OffsetIndex(path)
    writer = OffsetIndex(path)
    fill(writer, [(1, 10), (2, 20), (3, 30)])
    assert reader.capacity == 0
    reader.remap()
    assert reader.capacity == 3
    assert reader.entries.tolist() == [(1, 10), (2, 20), (3, 30)]
    reader.close()
    writer.close()


def test_trim_cuts_the_file_to_its_entries(offset_index: OffsetIndex) -> None:
    offset_index.ensure_capacity(100)
    offset_index.write(0, (1, 10))
    offset_index.write(1, (2, 20))
    offset_index.trim(2)
    assert os.path.getsize(offset_index.path) == 16
    assert offset_index.capacity == 2
    assert offset_index.entries.tolist() == [(1, 10), (2, 20)]
    offset_index.trim(0)
    assert os.path.getsize(offset_index.path) == 0
    assert offset_index.capacity == 0


ENTRIES = [(4, 4100), (9, 8300), (15, 12400)]


@pytest.mark.parametrize(
    ("relative_offset", "count", "expected"),
    [
        (0, 3, (-1, 0, 0)),
        (3, 3, (-1, 0, 0)),
        (4, 3, (0, 4, 4100)),
        (8, 3, (0, 4, 4100)),
        (9, 3, (1, 9, 8300)),
        (14, 3, (1, 9, 8300)),
        (15, 3, (2, 15, 12400)),
        (10**6, 3, (2, 15, 12400)),
        (10**6, 2, (1, 9, 8300)),
        (10**6, 0, (-1, 0, 0)),
    ],
)
def test_offset_floor(offset_index: OffsetIndex, relative_offset: int, count: int,
                      expected: tuple[int, int, int]) -> None:
    fill(offset_index, ENTRIES)
    offset_index.ensure_capacity(8)  # zeroed slack past the valid entries is ignored
    assert offset_index.floor(relative_offset, count) == expected


@pytest.mark.parametrize(
    ("entries", "limit", "expected"),
    [
        ([], 10_000, 0),
        (ENTRIES, 20_000, 3),
        (ENTRIES, 12_400, 2),  # an entry must point below the data end
        (ENTRIES + [(0, 0)], 20_000, 3),  # zeroed slack
        ([(0, 0)] + ENTRIES, 20_000, 0),  # position 0 is never indexed
        ([(4, 4100), (4, 8300)], 20_000, 1),  # offsets must increase
        ([(4, 4100), (9, 4100)], 20_000, 1),  # positions must increase
        ([(4, 4100), (3, 8300), (15, 12400)], 20_000, 1),
    ],
)
def test_valid_prefix(offset_index: OffsetIndex, entries: list, limit: int,
                      expected: int) -> None:
    fill(offset_index, entries)
    assert offset_index.valid_prefix(limit) == expected


TIMES = [fmt.time_entry(*entry) for entry in [(1000, 5), (1000, 9), (2500, 20), (4000, 31)]]


@pytest.mark.parametrize(
    ("timestamp", "count", "expected"),
    [
        (-(2**63), 4, 0),
        (1000, 4, 0),  # the entries at 1000 may cover a record at exactly 1000
        (1001, 4, 9),
        (2500, 4, 9),
        (2501, 4, 20),
        (10**15, 4, 31),
        (10**15, 2, 9),
        (10**15, 0, 0),
    ],
)
def test_time_floor_below(time_index: TimeIndex, timestamp: int, count: int,
                          expected: int) -> None:
    fill(time_index, TIMES)
    assert time_index.entries.dtype == fmt.TIME_INDEX_DTYPE
    assert time_index.floor_below(timestamp, count) == expected


def test_time_index_file_layout(time_index: TimeIndex) -> None:
    fill(time_index, [fmt.time_entry(-5, 1), fmt.time_entry(2**40, 7)])
    with open(time_index.path, "rb") as handle:
        data = handle.read()
    assert data == (
        (-5).to_bytes(8, "little", signed=True) + (1).to_bytes(4, "little")
        + fmt.time_check(-5, 1).to_bytes(4, "little")
        + (2**40).to_bytes(8, "little") + (7).to_bytes(4, "little")
        + fmt.time_check(2**40, 7).to_bytes(4, "little")
    )


def test_time_entry_check_word_catches_every_single_bit_flip() -> None:
    timestamp, relative, check = fmt.time_entry(1_795_000_000_123, 4321)
    for bit in range(64):
        flipped = (timestamp ^ (1 << bit)) - (2**64 if bit == 63 and timestamp >= 0 else 0)
        assert fmt.time_check(flipped, relative) != check
    for bit in range(32):
        assert fmt.time_check(timestamp, relative ^ (1 << bit)) != check
    entries = np.array([fmt.time_entry(t, r) for t, r in [(5, 1), (-7, 2), (2**62, 3)]],
                       dtype=fmt.TIME_INDEX_DTYPE)
    assert fmt.time_check(entries["timestamp"], entries["relative_offset"]).tolist() == (
        entries["check"].tolist())


def test_damaged_time_entries_are_skipped(time_index: TimeIndex) -> None:
    fill(time_index, TIMES)
    time_index.entries[2] = (2500, 20, TIMES[2][2] ^ 1)  # a flipped check bit
    assert time_index.floor_below(3000, 4) == 9  # falls back to the entry before
    assert time_index.valid_prefix() == 2
