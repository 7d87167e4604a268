"""``mqlog repair``: move damaged batches out of segments, keeping every intact
record at its offset.

:func:`repair_log` finds, in every segment of every partition (or of one
topic), the byte ranges that hold no intact batch, as reads find them (see
``_resync``): a batch that fails its framing or checksum, bytes between
batches, offsets that are missing, a segment whose data ends early. Each such
range stands for the offsets from the one expected there to the base offset of
the next intact batch.

A dry run (the default) only reads: files are mapped read-only and the log is
not opened (opening runs recovery). With ``execute=True``, each damaged
partition is repaired under its append lock (appenders in every process wait;
readers take no lock and never see a half-written file):

1. A damaged active segment is first rolled, so that it is closed: no
   appender writes to a file that is being replaced.
2. The damaged bytes of each segment are copied to a quarantine file beside
   it, ``<base>.log.quarantine-<UTC time>``, back to back in file order, with
   ``<same name>.json`` listing each range (position in the segment and in the
   quarantine file, length, offsets, reason). Quarantine files are fsynced
   before the segment is replaced and kept until deleted by hand.
3. The segment is rewritten without them: intact batches are copied byte for
   byte, at new positions; each damaged offset range becomes a gap marker
   (``ATTR_GAP``), so the offsets stay taken and readers step over them; the
   offset and time indexes are rebuilt. Each file is replaced with
   ``_files.atomic_write`` (indexes first, data last); a repair that dies
   midway leaves the old segment in place, and its temporary files are
   removed by the next open or repair.
4. A new epoch is published, so readers in every process reopen the segment.

Afterwards every intact record is read at its old offset with its old bytes,
and ``mqlog verify`` finds no damage in the partition.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import mmap
import os
import time
from collections.abc import Iterable

import numpy as np

from mqlog.errors import UnknownTopicError
from mqlog.logstore import _format as fmt
from mqlog.logstore._files import atomic_write, fsync_file, remove_stale_temporaries
from mqlog.logstore._partition import Partition
from mqlog.logstore._resync import resync
from mqlog.logstore._segment import list_segment_bases
from mqlog.logstore._state import PartitionState, decode_state
from mqlog.logstore._topic import read_metadata
from mqlog.logstore.engine import Engine
from mqlog.logstore.layout import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    QUARANTINE_DESCRIPTION_SUFFIX,
    QUARANTINE_INFIX,
    QUARANTINE_TIME_FORMAT,
    SEGMENT_NAME_DIGITS,
    STATE_FILE,
    TIME_INDEX_SUFFIX,
    TOPIC_METADATA_FILE,
    TOPICS_DIR,
    segment_name,
)


@dataclasses.dataclass(frozen=True)
class DamagedRange:
    """Bytes ``position`` .. ``end_position`` (exclusive) of a segment file that
    hold no intact batch, standing for offsets ``first_offset`` ..
    ``next_offset - 1`` (none when equal: stray bytes only)."""

    topic: str
    partition: int
    file: str
    position: int
    end_position: int
    first_offset: int
    next_offset: int
    reason: str

    @property
    def size_bytes(self) -> int:
        return self.end_position - self.position

    @property
    def record_count(self) -> int:
        """Offsets the range stands for (its records cannot be read)."""
        return self.next_offset - self.first_offset


@dataclasses.dataclass
class RepairReport:
    """What :func:`repair_log` found and, when ``executed``, did."""

    path: str
    executed: bool
    ranges: list[DamagedRange]
    #: Quarantine files written (executed repairs only).
    quarantine_files: list[str] = dataclasses.field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return bool(self.ranges)


def repair_log(path: str | os.PathLike, execute: bool = False,
               topic: str | None = None) -> RepairReport:
    """Find (and with ``execute``, repair) damaged batches in the log at ``path``,
    in every topic or in ``topic``. See the module docstring.

    Raises FileNotFoundError when ``path`` is not a directory and
    UnknownTopicError for a ``topic`` it does not hold."""
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist", root)
    names = _topic_names(root)
    if topic is not None:
        if topic not in names:
            raise UnknownTopicError(f"unknown topic {topic!r}")
        names = [topic]
    if not execute:
        ranges = [damage for name in names for damage in _plan_topic(root, name)]
        return RepairReport(root, False, ranges)
    with Engine(root, create=False) as log:
        return repair_open_log(log, names)


def repair_open_log(log: Engine, topics: Iterable[str]) -> RepairReport:
    """Repair the damaged partitions of ``topics`` in an open ``log`` (what
    ``repair_log(..., execute=True)`` does once it has opened the log)."""
    report = RepairReport(log.path, True, [])
    stamp = time.strftime(QUARANTINE_TIME_FORMAT, time.gmtime())
    for name in topics:
        for number in range(len(log.describe_topic(name).partitions)):
            ranges, written = _repair_partition(log.partition(name, number), stamp)
            report.ranges += ranges
            report.quarantine_files += written
    return report


# -- finding damage ------------------------------------------------------------------


class _SegmentFile:
    """A segment's data and offset index, mapped read-only (what ``_resync``
    needs of a segment, without opening anything for writing)."""

    def __init__(self, directory: str, base_offset: int) -> None:
        self.base_offset = base_offset
        self.path = os.path.join(directory, segment_name(base_offset) + LOG_SUFFIX)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            self._map = mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else b""
        finally:
            os.close(fd)
        self.index = _IndexEntries(os.path.join(directory, segment_name(base_offset)
                                                + INDEX_SUFFIX))

    def __len__(self) -> int:
        return len(self._map)

    def buffer(self, _needed_bytes: int) -> mmap.mmap | bytes:
        return self._map

    def header_at(self, position: int, limit: int) -> fmt.BatchHeader:
        header = fmt.decode_header(self._map, position, min(limit, len(self._map)))
        fmt.verify_batch(self._map, position, header)
        return header

    def compacted(self) -> bool:
        """Compaction marks every batch it writes; the first one tells."""
        try:
            return bool(self.header_at(0, len(self._map)).attributes & fmt.ATTR_COMPACTED)
        except fmt.BatchError:
            return False


class _IndexEntries:
    """An offset index file's whole entries, read-only."""

    def __init__(self, path: str) -> None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            data = b""
        size = fmt.OFFSET_INDEX_DTYPE.itemsize
        entries = np.frombuffer(data[: len(data) - len(data) % size],
                                dtype=fmt.OFFSET_INDEX_DTYPE)
        self.capacity = len(entries)
        names = fmt.OFFSET_INDEX_DTYPE.names
        assert names is not None, "an index's dtype has named fields"
        self.columns = {name: entries[name] for name in names}


def find_damage(segment: _SegmentFile, limit: int, index_count: int, end_offset: int,
                compacted: bool, topic: str = "", partition: int = 0) -> list[DamagedRange]:
    """The damaged ranges of one segment whose data ends at ``limit`` and whose
    offsets end at ``end_offset``, walking its batches as reads do."""
    out: list[DamagedRange] = []
    position, expected = 0, segment.base_offset

    def add(start: int, stop: int, first: int, after: int, reason: str) -> None:
        out.append(DamagedRange(topic, partition, segment.path, start, stop, first, after,
                                reason))

    while position < limit:
        if expected >= end_offset:  # every offset is accounted for: only zeros may follow
            rest = np.frombuffer(segment.buffer(limit), dtype=np.uint8,
                                 count=limit - position, offset=position)
            if rest.any():
                add(position, limit, expected, expected, "bytes after the segment's data")
            break
        try:
            header = segment.header_at(position, limit)
        except fmt.BatchError as error:
            reason = str(error)
        else:
            if header.base_offset >= expected:
                if header.base_offset > expected and not (
                        compacted or header.attributes & fmt.ATTR_COMPACTED):
                    add(position, position, expected, header.base_offset, "offsets are missing")
                expected = header.next_offset
                position += header.batch_length
                continue
            reason = f"batch has offset {header.base_offset}, expected {expected} or above"
        damage = resync(segment, position, expected, limit, index_count, end_offset, reason)
        stop = limit if damage.next_position is None else damage.next_position
        add(position, stop, expected, damage.next_offset, reason)
        position, expected = stop, damage.next_offset
    if expected < end_offset and not compacted:
        add(limit, limit, expected, end_offset, "the segment's data ends early")
    return out


def _topic_names(root: str) -> list[str]:
    directory = os.path.join(root, TOPICS_DIR)
    if not os.path.isdir(directory):
        return []
    return sorted(name for name in os.listdir(directory)
                  if os.path.isfile(os.path.join(directory, name, TOPIC_METADATA_FILE)))


def _plan_topic(root: str, topic: str) -> list[DamagedRange]:
    directory = os.path.join(root, TOPICS_DIR, topic)
    try:
        partition_count, config = read_metadata(directory)
    except (OSError, ValueError, KeyError, TypeError):
        return []  # not a topic mqlog can open: verify reports it
    ranges = []
    for number in range(partition_count):
        partition_dir = os.path.join(directory, str(number))
        try:
            with open(os.path.join(partition_dir, STATE_FILE), "rb") as handle:
                state = decode_state(handle.read())
        except (FileNotFoundError, NotADirectoryError):
            continue
        if state is not None:
            ranges += _plan_partition(partition_dir, topic, number, state,
                                      config.cleanup_policy == "compact")
    return ranges


def _plan_partition(directory: str, topic: str, number: int, state: PartitionState,
                    compact_policy: bool) -> list[DamagedRange]:
    """The damaged ranges of a partition's published segments."""
    bases = [base for base in list_segment_bases(directory) if base <= state.active_base_offset]
    while len(bases) > 1 and bases[1] <= state.log_start_offset:
        bases.pop(0)  # wholly below the log start: retention is deleting it
    ranges = []
    for slot, base in enumerate(bases):
        try:
            segment = _SegmentFile(directory, base)
        except FileNotFoundError:
            continue
        active = base == state.active_base_offset
        end = bases[slot + 1] if slot + 1 < len(bases) else state.end_offset
        limit = min(state.active_position, len(segment)) if active else len(segment)
        index_count = state.offset_index_count if active else segment.index.capacity
        ranges += find_damage(segment, limit, index_count, end,
                              compact_policy or segment.compacted(), topic, number)
    return ranges


# -- repairing -------------------------------------------------------------------------


def _repair_partition(partition: Partition, stamp: str) -> tuple[list[DamagedRange], list[str]]:
    """Repair one open partition under its append lock: (ranges, quarantine files)."""
    directory = partition.directory
    compact_policy = partition.config().cleanup_policy == "compact"
    with partition.locked() as state:
        if state is None:
            return [], []
        remove_stale_temporaries(directory)
        ranges = _plan_partition(directory, partition.topic, partition.number, state,
                                 compact_policy)
        if not ranges:
            return [], []
        active = os.path.join(directory, segment_name(state.active_base_offset) + LOG_SUFFIX)
        if any(damage.file == active for damage in ranges):
            state = partition.roll(state, partition.config())  # never rewrite a file in use
            ranges = _plan_partition(directory, partition.topic, partition.number, state,
                                     compact_policy)
        bases = partition.refresh_view(state).bases.tolist()
        written = []
        for path in sorted({damage.file for damage in ranges}):
            base = int(os.path.basename(path)[:SEGMENT_NAME_DIGITS])
            end = bases[bases.index(base) + 1]
            mine = [damage for damage in ranges if damage.file == path]
            quarantine = _quarantine(path, mine, stamp)
            if quarantine is not None:
                written.append(quarantine)
            _rewrite(path, base, end, mine, partition.config().index_interval_bytes)
        published = partition.publish(state.replace(epoch=state.epoch + 1), state)
        partition.refresh_view(published)  # this process reopens the rewritten segments
    return ranges, written


def _quarantine(path: str, ranges: list[DamagedRange], stamp: str) -> str | None:
    """Copy the damaged bytes of ``path`` to its quarantine file (and describe them
    in ``<quarantine>.json``), fsynced; None when no range holds bytes."""
    if not any(damage.size_bytes for damage in ranges):
        return None
    target = path + QUARANTINE_INFIX + stamp
    described = []
    with open(path, "rb") as source, open(target, "wb") as out:
        for damage in ranges:
            if not damage.size_bytes:
                continue
            described.append({
                "position": damage.position, "size_bytes": damage.size_bytes,
                "quarantine_position": out.tell(), "first_offset": damage.first_offset,
                "next_offset": damage.next_offset, "reason": damage.reason,
            })
            source.seek(damage.position)
            out.write(source.read(damage.size_bytes))
        out.flush()
        fsync_file(out.fileno())
    with open(target + QUARANTINE_DESCRIPTION_SUFFIX, "w") as handle:
        json.dump({"segment": os.path.basename(path), "ranges": described}, handle, indent=1)
        handle.flush()
        fsync_file(handle.fileno())
    return target


def _rewrite(path: str, base: int, end: int, ranges: list[DamagedRange],
             index_interval_bytes: int) -> None:
    """Replace segment ``path`` by a copy without ``ranges`` (gap markers in their
    place) and rebuilt indexes, atomically per file (data renamed last)."""
    with open(path, "rb") as handle:
        data = handle.read()
    stem = path[: -len(LOG_SUFFIX)]
    offsets: list[tuple[int, int]] = []
    times: list[tuple[int, int, int]] = []
    out = bytearray()
    max_timestamp = fmt.NO_TIMESTAMP
    last_indexed = 0

    def append(batch: bytes | memoryview, header: fmt.BatchHeader) -> None:
        nonlocal max_timestamp, last_indexed
        relative = header.base_offset - base
        if len(out) - last_indexed >= index_interval_bytes:
            offsets.append((relative, len(out)))
            times.append(fmt.time_entry(max_timestamp, relative))
            last_indexed = len(out)
        out.extend(batch)
        if not fmt.is_gap(header):
            max_timestamp = max(max_timestamp, header.max_timestamp)

    position = 0
    pending = sorted(ranges, key=lambda damage: (damage.position, damage.first_offset))
    for damage in [*pending, None]:
        stop = len(data) if damage is None else damage.position
        while position < stop:  # intact batches, copied byte for byte
            try:
                header = fmt.decode_header(data, position, stop)
            except fmt.BatchError:
                break  # zeros after the data (an untrimmed segment)
            append(memoryview(data)[position:position + header.batch_length], header)
            position += header.batch_length
        if damage is None:
            break
        if damage.record_count > 0:
            marker = fmt.gap_batch(damage.first_offset, damage.record_count,
                                   int(time.time() * 1000))
            append(marker, fmt.decode_header(marker, 0, len(marker)))
        position = damage.end_position
    times.append(fmt.time_entry(max_timestamp, end - base))  # covers the whole segment
    atomic_write(stem + INDEX_SUFFIX, np.array(offsets, dtype=fmt.OFFSET_INDEX_DTYPE).tobytes())
    atomic_write(stem + TIME_INDEX_SUFFIX, np.array(times, dtype=fmt.TIME_INDEX_DTYPE).tobytes())
    atomic_write(path, bytes(out))


def describe(ranges: Iterable[DamagedRange]) -> list[str]:
    """One line per range, as ``mqlog repair`` prints it."""
    lines = []
    for damage in ranges:
        offsets = (f"offsets {damage.first_offset}..{damage.next_offset - 1}"
                   if damage.record_count else "no offsets")
        lines.append(f"{damage.topic}/{damage.partition} {os.path.basename(damage.file)} "
                     f"bytes {damage.position}..{damage.end_position} ({damage.size_bytes} "
                     f"bytes, {offsets}): {damage.reason}")
    return lines
