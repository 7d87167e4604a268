"""A log of many small batches across closed and active segments, damaged in
place while it is open, with what every read must return.

The log is written once per test session (``pristine``) and copied for each
case. A case opens the copy (recovery runs on the intact files), then flips
bytes of chosen batches in place -- the open log's maps see the new bytes, as a
reader would after a bad disk changed them -- and forgets which batches it had
already verified, as a reader in a new process would. Recovery is thus not
run on the damage: these tests are about reads, and repair.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import NamedTuple

import mqlog
from mqlog import Record
from mqlog.logstore import _format as fmt
from mqlog.logstore._segment import list_segment_bases, segment_name
from mqlog.logstore.verify import read_state

TOPIC = "events"
SEGMENT_BYTES = 4096
INDEX_INTERVAL_BYTES = 200
BATCHES = 160
BASE_MS = 1_700_000_000_000

#: A record as compared: offset, value, key, headers, timestamp.
Seen = tuple[int, bytes, bytes | None, dict, int]


class Batch(NamedTuple):
    """Where one batch lies: segment base, byte range, offsets."""

    segment: int
    position: int
    end: int
    base_offset: int
    count: int

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.count


def seen(record: Record) -> Seen:
    key = None if record.key is None else bytes(record.key)
    return record.offset, bytes(record.value), key, dict(record.headers), record.timestamp


def write_pristine(path: Path) -> list[Seen]:
    """Write the log (closed) and return every record written."""
    rng = random.Random(20261206)
    expected: list[Seen] = []
    with mqlog.open(path) as log:
        log.create_topic(TOPIC, segment_bytes=SEGMENT_BYTES,
                         index_interval_bytes=INDEX_INTERVAL_BYTES, durability="none")
        for batch in range(BATCHES):
            records = []
            for index in range(rng.randint(1, 4)):
                offset = len(expected) + index
                value = f"{offset}:".encode() + rng.randbytes(rng.randint(0, 40))
                key = rng.randbytes(rng.randint(1, 6)) if rng.random() < 0.3 else None
                headers = {"h": rng.randbytes(3)} if rng.random() < 0.2 else {}
                timestamp = BASE_MS + batch * 10 + index
                records.append(Record(value, key=key, headers=headers or None,
                                      timestamp=timestamp))
            first = log.append(TOPIC, 0, records)
            expected += [(first + i, bytes(r.value), r.key, dict(r.headers or {}), r.timestamp)
                         for i, r in enumerate(records)]
    return expected


class Pristine(NamedTuple):
    """The log as written (closed) and every record in it."""

    path: Path
    expected: list[Seen]

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing case
        return f"Pristine({self.path}, {len(self.expected)} records)"


class Lab:
    """A copy of the pristine log, open, and its batch layout."""

    def __init__(self, pristine: Pristine, path: Path) -> None:
        shutil.copytree(pristine.path, path)
        self.pristine = pristine.path
        self.path = path
        self.expected = pristine.expected
        self.directory = path / "topics" / TOPIC / "0"
        self.bases = list_segment_bases(str(self.directory))
        state = read_state(str(self.directory / "state"))
        self.end_offset = state.end_offset
        self.batches: list[Batch] = []
        for base in self.bases:
            data = self.file(base).read_bytes()
            limit = state.active_position if base == state.active_base_offset else len(data)
            position = 0
            while position < limit:
                header = fmt.decode_header(data, position, limit)
                self.batches.append(Batch(base, position, position + header.batch_length,
                                          header.base_offset, header.record_count))
                position += header.batch_length
        self.log = mqlog.open(path)
        self.log.end_offset(TOPIC, 0)  # opens the partition: recovery runs now, on intact files

    def file(self, base: int) -> Path:
        return self.directory / (segment_name(base) + ".log")

    def flip(self, batch: Batch, at: int, xor: int, length: int = 1) -> None:
        """XOR ``length`` bytes from ``at`` bytes into ``batch`` with ``xor`` (kept
        inside the batch)."""
        path = self.file(batch.segment)
        start = batch.position + at
        stop = min(start + length, batch.end)
        fd = os.open(path, os.O_RDWR)
        try:
            old = os.pread(fd, stop - start, start)
            os.pwrite(fd, bytes(b ^ xor for b in old), start)
        finally:
            os.close(fd)

    def changed(self, batch: Batch) -> bool:
        """Whether ``batch``'s bytes differ from the pristine log's."""
        name = segment_name(batch.segment) + ".log"
        now = self.file(batch.segment).read_bytes()[batch.position:batch.end]
        before = (self.pristine / "topics" / TOPIC / "0" / name).read_bytes()
        return now != before[batch.position:batch.end]

    def forget_verified(self) -> None:
        """Make this process's partition re-verify every batch it reads next (a
        reader in a new process has verified nothing yet)."""
        partition = self.log.engine.partition(TOPIC, 0)
        for segment in [*partition._view.segments.values(), *partition._fresh.values()]:
            segment._verified.clear()

    def records(self, first: int, stop: int) -> list[Seen]:
        return [r for r in self.expected if first <= r[0] < stop]

    def close(self) -> None:
        self.log.close()


def runs(batches: list[Batch], damaged: set[int]) -> list[list[int]]:
    """Runs of consecutive damaged batch indexes that lie in one segment."""
    out: list[list[int]] = []
    for index in sorted(damaged):
        if out and out[-1][-1] == index - 1 and (
                batches[index - 1].segment == batches[index].segment):
            out[-1].append(index)
        else:
            out.append([index])
    return out
