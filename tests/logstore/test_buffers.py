"""Keys, values and header values given as any buffer are stored as their bytes.

``len()`` of a buffer counts its items, not its bytes (a memoryview of an
``array("i")`` of 3 items holds 12 bytes): a batch framed with ``len()`` fails
its own checks when read, so the next open cuts it and everything after it.
Each test appends, appends one more record after, reopens and reads back.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np
import pytest

import mqlog
from mqlog import Record
from mqlog.logstore import _batch

T = "t"

#: (id, a buffer, the bytes it stands for)
BUFFERS = [
    ("array-b", array("b", [1, -2, 3]), array("b", [1, -2, 3]).tobytes()),
    ("array-h", array("h", [1, 2, 3]), array("h", [1, 2, 3]).tobytes()),
    ("array-i", array("i", [1, 2, 3]), array("i", [1, 2, 3]).tobytes()),
    ("array-d", array("d", [0.5, 2.0]), array("d", [0.5, 2.0]).tobytes()),
    ("memoryview-i", memoryview(array("i", [1, 2, 3])), array("i", [1, 2, 3]).tobytes()),
    ("memoryview-q", memoryview(array("q", [7] * 5)), array("q", [7] * 5).tobytes()),
    ("memoryview-slice", memoryview(b"abcdef")[1:4], b"bcd"),
    ("bytearray", bytearray(b"xyz"), b"xyz"),
    ("numpy-int64", np.arange(4, dtype=np.int64), np.arange(4, dtype=np.int64).tobytes()),
    ("numpy-2d", np.ones((2, 3), dtype=np.uint16), np.ones((2, 3), dtype=np.uint16).tobytes()),
    ("numpy-strided", np.arange(6, dtype=np.int32)[::2],
     np.arange(6, dtype=np.int32)[::2].tobytes()),
    ("numpy-empty-rows", np.zeros((3, 0)), b""),
    ("numpy-scalar", np.float32(1.5), np.float32(1.5).tobytes()),
]
IDS = [row[0] for row in BUFFERS]


@pytest.fixture
def log_path(log_dir: Path, clock) -> Path:
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        log.create_topic(T)
    return log_dir


def append_then_reread(log_path: Path, clock, records: list) -> list[Record]:
    """Append ``records`` and one plain record after them, reopen, read everything."""
    with mqlog.open(log_path, clock=clock) as log:
        first = log.append(T, 0, records)
        assert log.append(T, 0, [b"after"]) == first + len(records)
    with mqlog.open(log_path, clock=clock) as log:
        assert log.end_offset(T, 0) == len(records) + 1
        read = log.read(T, 0, 0)
    assert read[-1].value == b"after"
    return read[:-1]


@pytest.mark.parametrize(("buffer", "expected"), [row[1:] for row in BUFFERS], ids=IDS)
@pytest.mark.parametrize("where", ["key", "value", "header"])
def test_a_buffer_is_stored_as_its_bytes(log_path: Path, clock, buffer, expected: bytes,
                                         where: str) -> None:
    record = {
        "key": Record(b"v", key=buffer),
        "value": Record(buffer, key=b"k"),
        "header": Record(b"v", headers={"h": buffer}),
    }[where]
    [read] = append_then_reread(log_path, clock, [record])
    got = {"key": read.key, "value": read.value, "header": read.headers.get("h")}[where]
    assert got == expected


@pytest.mark.parametrize("count", [1, 16, 17, 200], ids=lambda n: f"{n}-records")
def test_plain_buffer_values_in_small_and_large_appends(log_path: Path, clock,
                                                        count: int) -> None:
    """Values without keys or headers take the fast paths (a few records, many)."""
    values = [BUFFERS[index % len(BUFFERS)][1] for index in range(count)]
    expected = [BUFFERS[index % len(BUFFERS)][2] for index in range(count)]
    read = append_then_reread(log_path, clock, values)
    assert [record.value for record in read] == expected


def test_buffers_mixed_with_bytes_keep_their_boundaries(log_path: Path, clock) -> None:
    """An item with more items than bytes (shape (3, 0)) next to one with more bytes
    than items (4 int32): their len()s sum to the payload's size, but the
    boundaries between them must come from their byte counts."""
    values = [np.zeros((3, 0)), np.arange(1, dtype=np.int32), b"x"] * 7
    read = append_then_reread(log_path, clock, values)
    assert [record.value for record in read] == [b"", b"\0\0\0\0", b"x"] * 7


def test_the_size_limit_counts_bytes(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic(T, max_record_bytes=8)
        log.append(T, 0, [array("i", [1, 2])])  # 8 bytes
        with pytest.raises(mqlog.RecordTooLargeError):
            log.append(T, 0, [array("i", [1, 2, 3])])  # 3 items, 12 bytes
        assert log.end_offset(T, 0) == 1


def test_an_encoder_bug_is_caught_before_anything_is_written() -> None:
    """The encoder checks its own framing: a table that does not frame the payload
    is an assertion, not a batch."""
    keys = mqlog.logstore._format.ATTR_HAS_KEYS
    table = np.zeros(2, dtype=mqlog.logstore._format.RECORD_DTYPE)
    table["key_length"] = -1
    table["payload_end"] = [3, 5]
    _batch.EncodedBatch(table, b"12345", 0)
    with pytest.raises(AssertionError):
        _batch.EncodedBatch(table, b"1234", 0)
    table["payload_end"] = [6, 5]
    with pytest.raises(AssertionError):
        _batch.EncodedBatch(table, b"12345", keys)
    table["payload_end"] = [3, 5]
    table["key_length"] = [4, -1]
    with pytest.raises(AssertionError):
        _batch.EncodedBatch(table, b"12345", keys)


class Tagged(bytes):
    """A bytes subclass: still bytes, whatever its object size."""


@pytest.mark.parametrize("count", [3, 40], ids=["small", "large"])
def test_bytes_subclasses_are_stored_as_bytes(log_path: Path, clock, count: int) -> None:
    values = [Tagged(b"v%d" % index) if index % 2 else b"w%d" % index for index in range(count)]
    read = append_then_reread(log_path, clock, values)
    assert [record.value for record in read] == [bytes(value) for value in values]
