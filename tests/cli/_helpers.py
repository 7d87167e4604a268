"""A small, fully known log for the CLI and inspection tests, and ways to damage it.

``build_log`` writes topic ``orders`` (2 partitions, 4 KiB segments, an index
entry every 200 bytes): partition 0 gets 30 batches of 5 values of 40 bytes,
one append per ms of a fake clock, so every batch is BATCH_BYTES long, a
segment holds BATCHES_PER_SEGMENT of them and rolls twice (3 segments);
partition 1 gets one record with a key and a header. Every position and
offset the tests assert follows from these constants.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import mqlog
from mqlog import Record

TOPIC = "orders"
BATCHES = 30
RECORDS_PER_BATCH = 5
VALUE_BYTES = 40
#: 48-byte header + 20-byte table row and the value per record.
BATCH_BYTES = 48 + RECORDS_PER_BATCH * (20 + VALUE_BYTES)
SEGMENT_BYTES = 4096
BATCHES_PER_SEGMENT = SEGMENT_BYTES // BATCH_BYTES
#: Base offsets of partition 0's segments.
SEGMENT_BASES = (0, 55, 110)
KEYED_RECORD = Record(b"hello", key=b"k1", headers={"h": b"v"})
#: The fake clock's time when batch 0 is appended; batch n is appended at START_MS + n.
START_MS = 1_700_000_000_000


class _TickingClock:
    """A clock for ``mqlog.open`` that moves only when told to."""

    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


def value(offset: int) -> bytes:
    """The value at ``offset`` of partition 0."""
    return (b"%05d:" % offset).ljust(VALUE_BYTES, b"=")


def batch_timestamp(batch: int) -> int:
    """The timestamp of every record of partition 0's batch number ``batch``."""
    return START_MS + batch


def build_log(path: Path) -> None:
    """Write the log described in the module docstring and close it."""
    clock = _TickingClock()
    with mqlog.open(path, clock=clock) as log:
        log.create_topic(TOPIC, partitions=2, segment_bytes=SEGMENT_BYTES,
                         index_interval_bytes=200)
        for batch in range(BATCHES):
            first = batch * RECORDS_PER_BATCH
            log.append(TOPIC, 0, [value(n) for n in range(first, first + RECORDS_PER_BATCH)])
            clock.now_ms += 1
        log.append(TOPIC, 1, [KEYED_RECORD])


def partition_dir(root: Path, partition: int = 0) -> Path:
    return root / "topics" / TOPIC / str(partition)


def segment_file(root: Path, base: int, suffix: str = ".log", partition: int = 0) -> Path:
    return partition_dir(root, partition) / f"{base:020d}{suffix}"


def batch_position(batch_in_segment: int) -> int:
    return batch_in_segment * BATCH_BYTES


def overwrite(path: Path, position: int, data: bytes) -> None:
    """Replace bytes of a file in place (the damage the tests inflict)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, position)
    finally:
        os.close(fd)


def flip_byte(path: Path, position: int) -> None:
    with open(path, "rb") as handle:
        handle.seek(position)
        old = handle.read(1)
    overwrite(path, position, bytes([old[0] ^ 0xFF]))


def set_batch_magic(path: Path, position: int, magic: int) -> None:
    """Overwrite the magic byte of the batch at ``position`` (header offset 12)."""
    overwrite(path, position + 12, struct.pack("<B", magic))


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and modification time."""
    files = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                files[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return files
