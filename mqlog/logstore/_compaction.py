"""Log compaction: keep only the latest record of each key in closed segments.

For topics with ``cleanup_policy="compact"`` (such as ``__consumer_offsets``).
One cleaner per partition at a time, across processes (``cleaner.lock``):

1. Map every key to its latest offset, reading the whole partition up to the
   published end.
2. For each closed segment that holds a record some later record of the same
   key supersedes, write a cleaned copy (``<base>.log.cleaned`` and its indexes):
   the surviving records keep their offsets, so offsets now have gaps; a
   tombstone (empty value) survives until it is ``delete_retention_ms`` old.
   Records without a key are always kept.
3. Under the partition lock, swap the copy in with ``rename`` and publish a new
   epoch; readers in every process then reopen the segment. A segment deleted
   by retention meanwhile is skipped.

The active segment is never rewritten, so appends never wait for a cleaner
except during the swap. Reading a compacted partition gives, for every key,
the same latest value as reading it uncompacted.

``cleaner.json`` remembers up to which offset the partition was cleaned; a
partition is compacted on its own after a segment roll when the bytes written
since then reach ``min_cleanable_dirty_ratio`` of its closed bytes.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._files import fsync_directory, fsync_file
from mqlog.logstore._record import Record
from mqlog.logstore._segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    segment_name,
)

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

CLEANED_SUFFIX = ".cleaned"
CHECKPOINT_FILE = "cleaner.json"
#: Records read or written per step while cleaning.
CHUNK_RECORDS = 10_000
#: Largest record a cleaned copy may hold (the topic's limit applied when it was written).
_NO_LIMIT = 2**62


@dataclasses.dataclass(frozen=True)
class CompactionResult:
    segments_rewritten: int
    records_removed: int
    bytes_before: int
    bytes_after: int


def compact(partition: Partition, now_ms: int, force: bool = False) -> CompactionResult | None:
    """Compact ``partition`` if it is due (or ``force``); None if skipped (not due,
    or another process is cleaning it)."""
    lock_fd = os.open(os.path.join(partition.directory, "cleaner.lock"),
                      os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return _compact_locked(partition, now_ms, force)
    finally:
        os.close(lock_fd)


def _compact_locked(partition: Partition, now_ms: int, force: bool) -> CompactionResult | None:
    config = partition.config()
    state = partition.state()
    view = partition._refresh(state)
    bases = view.bases.tolist()
    closed = bases[:-1]
    if not closed:
        return None
    sizes = {base: view.segments[base].file_size() for base in closed}
    checkpoint = _read_checkpoint(partition.directory)
    total = sum(sizes.values())
    dirty = sum(size for base, size in sizes.items() if base >= checkpoint)
    if not force and (total == 0 or dirty / total < config.min_cleanable_dirty_ratio):
        return None
    latest = _latest_offsets(partition, state.log_start_offset, state.end_offset)
    horizon = now_ms - config.delete_retention_ms
    rewritten = removed = after = 0
    for index, base in enumerate(closed):
        end = bases[index + 1]
        records = list(_records(partition, max(base, state.log_start_offset), end))
        keep = [r for r in records if r.key is None or (
            latest.get(r.key) == r.offset and (len(r.value) or r.timestamp >= horizon))]
        if not keep:  # a segment keeps one record: its batches say it was compacted
            keep = records[-1:]
        if len(keep) == len(records):
            after += sizes[base]
            continue
        _write_cleaned(partition.directory, base, end, keep, config.index_interval_bytes)
        if _swap_in(partition, base):
            rewritten += 1
            removed += len(records) - len(keep)
            after += os.path.getsize(os.path.join(partition.directory,
                                                  segment_name(base) + LOG_SUFFIX))
    _write_checkpoint(partition.directory, bases[-1])
    return CompactionResult(rewritten, removed, total, after)


def _records(partition: Partition, start: int, end: int) -> Iterator[Record]:
    offset = start
    while offset < end:
        chunk = partition.read(offset, CHUNK_RECORDS, None)
        chunk = [record for record in chunk if record.offset < end]
        if not chunk:
            return
        yield from chunk
        offset = chunk[-1].offset + 1


def _latest_offsets(partition: Partition, start: int, end: int) -> dict[bytes, int]:
    latest: dict[bytes, int] = {}
    for record in _records(partition, start, end):
        if record.key is not None:
            latest[bytes(record.key)] = record.offset
    return latest


def _runs(records: Sequence[Record]) -> Iterator[list[Record]]:
    """Maximal runs of consecutive offsets (a batch's offsets are consecutive)."""
    run: list[Record] = []
    for record in records:
        if run and (record.offset != run[-1].offset + 1 or len(run) >= CHUNK_RECORDS):
            yield run
            run = []
        run.append(record)
    if run:
        yield run


def _write_cleaned(directory: str, base: int, end: int, records: Sequence[Record],
                   index_interval_bytes: int) -> None:
    """Write the cleaned copy of segment ``base`` (data and both indexes)."""
    stem = os.path.join(directory, segment_name(base))
    position = 0
    last_indexed = 0
    max_timestamp = -(2**63)
    offset_entries: list[tuple[int, int]] = []
    time_entries: list[tuple[int, int, int]] = []
    with open(stem + LOG_SUFFIX + CLEANED_SUFFIX, "wb") as data:
        for run in _runs(records):
            copies = [Record(r.value, r.key, r.headers or None, r.timestamp) for r in run]
            next_offset = run[0].offset
            for batch in _batch.encode(copies, 0, _NO_LIMIT):
                batch.attributes |= fmt.ATTR_COMPACTED  # gaps before it are legitimate
                relative = next_offset - base
                if position - last_indexed >= index_interval_bytes:
                    offset_entries.append((relative, position))
                    time_entries.append(fmt.time_entry(max_timestamp, relative))
                    last_indexed = position
                for part in batch.frame(next_offset):
                    data.write(part)
                position += batch.length
                next_offset += batch.count
                max_timestamp = max(max_timestamp, batch.max_timestamp)
        data.flush()
        fsync_file(data.fileno())
    time_entries.append(fmt.time_entry(max_timestamp, end - base))  # its newest timestamp
    np.array(offset_entries, dtype=fmt.OFFSET_INDEX_DTYPE).tofile(
        stem + INDEX_SUFFIX + CLEANED_SUFFIX)
    np.array(time_entries, dtype=fmt.TIME_INDEX_DTYPE).tofile(
        stem + TIME_INDEX_SUFFIX + CLEANED_SUFFIX)


def _swap_in(partition: Partition, base: int) -> bool:
    """Replace segment ``base`` by its cleaned copy (partition lock held); False,
    discarding the copy, if retention deleted the segment meanwhile."""
    stem = os.path.join(partition.directory, segment_name(base))
    suffixes = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
    with partition._locked() as state:
        if state is None or base >= state.active_base_offset or not os.path.exists(
            stem + LOG_SUFFIX
        ) or base < state.log_start_offset:
            for suffix in suffixes:
                try:
                    os.unlink(stem + suffix + CLEANED_SUFFIX)
                except FileNotFoundError:
                    pass
            return False
        for suffix in suffixes:
            os.replace(stem + suffix + CLEANED_SUFFIX, stem + suffix)
        fsync_directory(partition.directory)
        partition._publish(state.replace(epoch=state.epoch + 1), state)
    return True


def _read_checkpoint(directory: str) -> int:
    try:
        with open(os.path.join(directory, CHECKPOINT_FILE)) as handle:
            return int(json.load(handle)["cleaned_upto"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0


def _write_checkpoint(directory: str, offset: int) -> None:
    path = os.path.join(directory, CHECKPOINT_FILE)
    with open(path + ".tmp", "w") as handle:
        json.dump({"cleaned_upto": offset}, handle)
    os.replace(path + ".tmp", path)
