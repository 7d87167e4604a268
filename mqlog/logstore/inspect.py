"""Read-only inspection of a log directory: verify every byte, dump one segment.

:func:`verify_log` checks a whole log directory: every batch's framing and
checksum, offset continuity within and across segments, that offset- and
time-index entries point at batch starts with matching offsets and are
monotonic, and that each partition's published state agrees with its files.
:func:`dump_segment` decodes the batches (and records) of one ``.log`` file.
Gap batches (offsets recovery recorded as missing, see ``_format``) are valid
batches without records. :func:`verify_log` also returns the recovery journal
(``_journal``): what earlier recoveries cut, skipped or rebuilt.

Both only read, so they are safe on a damaged log and never change what they
report on: files are opened ``O_RDONLY`` and mapped ``PROT_READ``; the state
file is parsed from its bytes (``StateFile`` would create or extend it); and
``mqlog.open`` is never called (opening a partition runs recovery, which cuts
a damaged tail). On a log that other processes are appending to, the result
is a snapshot: data written after the state was read shows as an unpublished
tail (a warning, not an error).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import mmap
import os
import stat
from array import array
from collections.abc import Iterator, Mapping
from typing import Literal

import numpy as np

from mqlog.errors import CorruptMetadataError, MqlogError
from mqlog.logstore import _batch
from mqlog.logstore import _format as fmt
from mqlog.logstore._journal import RecoveryEvent, read_journal
from mqlog.logstore._segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    list_segment_bases,
    segment_name,
)
from mqlog.logstore._state import FILE_SIZE, PartitionState, decode_state
from mqlog.logstore._topic import read_metadata
from mqlog.logstore.config import validate_topic_name

#: Same names as the log store uses (mqlog.logstore._log / _partition).
LAYOUT_FILE = "mqlog.json"
LAYOUT_VERSION = 1
TOPICS_DIR = "topics"
STATE_FILE = "state"
#: "No record yet" in running timestamp maxima (as the partition publishes it).
NO_TIMESTAMP = -(2**63)
#: Written by compaction (mqlog.logstore._compaction) in a partition it cleaned.
CLEANER_CHECKPOINT = "cleaner.json"
#: Checks of one partition before giving up on seeing its segments hold still.
CHECK_ATTEMPTS = 5

Severity = Literal["error", "warning"]


# -- results ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding. ``error``: data is damaged or files disagree. ``warning``: a
    state a crash legitimately leaves behind, which the next open tidies up."""

    severity: Severity
    description: str
    topic: str | None = None
    partition: int | None = None
    file: str | None = None
    offset: int | None = None
    position: int | None = None

    def location(self) -> str:
        """Where, as ``file position P offset O`` (the parts that are known)."""
        parts = []
        if self.file is not None:
            parts.append(self.file)
        elif self.topic is not None:
            parts.append(self.topic if self.partition is None else f"{self.topic}/{self.partition}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        return " ".join(parts)


@dataclasses.dataclass
class PartitionReport:
    """What was checked in one partition; offsets are those of its published state."""

    topic: str
    partition: int
    start_offset: int | None = None
    end_offset: int | None = None
    segments: int = 0
    batches: int = 0
    records: int = 0
    bytes: int = 0


@dataclasses.dataclass
class VerifyReport:
    """Result of :func:`verify_log`: per-partition counts and every problem found."""

    path: str
    topics: list[str]
    partitions: list[PartitionReport]
    problems: list[Problem]
    #: The recovery journal, oldest first: history, not problems (see ``_journal``).
    recoveries: list[RecoveryEvent] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors

    @property
    def segments(self) -> int:
        return sum(p.segments for p in self.partitions)

    @property
    def batches(self) -> int:
        return sum(p.batches for p in self.partitions)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.partitions)


@dataclasses.dataclass(frozen=True)
class DumpedRecord:
    """One record of a dumped batch."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes]


@dataclasses.dataclass(frozen=True)
class DumpedBatch:
    """One batch of a segment file as its header says it is.

    ``valid`` is False when framing or checksum fail; ``error`` then says why
    and ``records`` is empty (nothing unverified is decoded). A batch whose
    framing fails is the last one yielded: where the next one starts is unknown.
    """

    position: int
    base_offset: int
    record_count: int
    first_timestamp: int
    max_timestamp: int
    batch_length: int
    magic: int
    attributes: int
    checksum: int
    valid: bool
    error: str | None = None
    records: tuple[DumpedRecord, ...] = ()

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.record_count

    @property
    def gap(self) -> bool:
        """A gap batch: its offsets are recorded as missing, it holds no records."""
        return bool(self.attributes & fmt.ATTR_GAP)


# -- reading files without changing them -------------------------------------------------


def _map_file(path: str) -> bytes | mmap.mmap:
    """The whole file, mapped read-only (``b""`` when empty: empty files cannot be mapped)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a segment file", path)
        size = info.st_size
        return mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else b""
    finally:
        os.close(fd)


def _read_index(path: str, dtype: np.dtype) -> np.ndarray | None:
    """All whole entries of an index file; None when the file is missing."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    usable = len(data) - len(data) % dtype.itemsize
    return np.frombuffer(data[:usable], dtype=dtype)


def read_state(path: str) -> PartitionState | None:
    """The newest valid slot of a partition state file, or None if neither is valid.

    Same layout and choice as ``_state.StateFile.read`` (checked by the tests),
    but reads the bytes without opening the file for writing: ``StateFile``
    would create or extend it. A short file reads as zero-padded, as
    ``StateFile`` would see it. Raises FileNotFoundError when there is no file.
    """
    with open(path, "rb") as handle:
        return decode_state(handle.read(FILE_SIZE).ljust(FILE_SIZE, b"\0"))


# -- dump --------------------------------------------------------------------------------


def dump_segment(path: str | os.PathLike, records: bool = True) -> Iterator[DumpedBatch]:
    """Decode the batches of one segment (``.log``) file, in file order.

    Stops at the end of the written data (a zero length field, as in the
    preallocated tail, or the end of the file) or after yielding a batch whose
    framing is broken. A batch failing only its checksum is yielded invalid and
    the walk continues after it. ``records=False`` skips decoding the records.
    Raises OSError (FileNotFoundError, IsADirectoryError) at the call when the
    file cannot be read.
    """
    return _dump_batches(_map_file(os.fspath(path)), records)


def _dump_batches(buffer, records: bool) -> Iterator[DumpedBatch]:
    size = len(buffer)
    position = 0
    while True:
        try:
            header = fmt.decode_header(buffer, position, size)
        except fmt.BatchError as error:
            if str(error) != "end":
                yield _broken_batch(buffer, position, str(error))
            return
        try:
            fmt.verify_batch(buffer, position, header)
        except fmt.BatchError as error:
            yield _dumped(position, header, str(error), ())
        else:
            decoded = _decode_records(buffer, position, header) if records else ()
            yield _dumped(position, header, None, decoded)
        position += header.batch_length


def _dumped(position: int, header: fmt.BatchHeader, error: str | None,
            records: tuple[DumpedRecord, ...]) -> DumpedBatch:
    return DumpedBatch(
        position=position, base_offset=header.base_offset, record_count=header.record_count,
        first_timestamp=header.first_timestamp, max_timestamp=header.max_timestamp,
        batch_length=header.batch_length, magic=header.magic, attributes=header.attributes,
        checksum=header.checksum, valid=error is None, error=error, records=records,
    )


def _broken_batch(buffer, position: int, error: str) -> DumpedBatch:
    """What the header bytes at ``position`` say (zero-padded if the file ends inside them)."""
    raw = bytes(buffer[position : position + fmt.BATCH_HEADER_SIZE])
    (checksum, length, magic, attributes, _r1, base, count, _r2, first_ts, max_ts) = (
        fmt.BATCH_HEADER.unpack(raw.ljust(fmt.BATCH_HEADER_SIZE, b"\0"))
    )
    header = fmt.BatchHeader(checksum, length, magic, attributes, base, count, first_ts, max_ts)
    return _dumped(position, header, error, ())


def _decode_records(buffer, position: int, header: fmt.BatchHeader) -> tuple[DumpedRecord, ...]:
    if fmt.is_gap(header):
        return ()
    decoded, _size = _batch.decode(buffer, position, header)
    return tuple(
        DumpedRecord(r.offset, r.timestamp, r.key, r.value, dict(r.headers)) for r in decoded
    )


# -- verify ------------------------------------------------------------------------------


def verify_log(path: str | os.PathLike) -> VerifyReport:
    """Check every topic, partition, segment and index of the log at ``path``.

    Raises FileNotFoundError when ``path`` is not a directory and MqlogError
    when it is not a log directory (neither ``mqlog.json`` nor ``topics/``);
    everything else found is reported as a :class:`Problem`.
    """
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist", root)
    topics_dir = os.path.join(root, TOPICS_DIR)
    has_layout = os.path.exists(os.path.join(root, LAYOUT_FILE))
    if not has_layout and not os.path.isdir(topics_dir):
        raise MqlogError(f"{root} is not an mqlog log directory (no {LAYOUT_FILE})")
    report = VerifyReport(root, [], [], [], read_journal(root))
    _check_layout(root, report.problems)
    for name in _topic_names(topics_dir):
        report.topics.append(name)
        _verify_topic(os.path.join(topics_dir, name), name, report)
    return report


def _check_layout(root: str, problems: list[Problem]) -> None:
    path = os.path.join(root, LAYOUT_FILE)
    try:
        with open(path) as handle:
            version = json.load(handle).get("layout_version")
    except (OSError, ValueError, AttributeError) as error:
        problems.append(Problem("error", f"cannot read the layout file: {error}", file=path))
        return
    if version != LAYOUT_VERSION:
        problems.append(Problem(
            "error", f"layout version {version!r}, this mqlog reads {LAYOUT_VERSION}", file=path,
        ))


def _topic_names(topics_dir: str) -> list[str]:
    """Topic directories, sorted; staging and deleting directories are skipped."""
    if not os.path.isdir(topics_dir):
        return []
    names = []
    for name in os.listdir(topics_dir):
        try:
            validate_topic_name(name, internal=True)
        except MqlogError:
            continue
        if os.path.isdir(os.path.join(topics_dir, name)):
            names.append(name)
    return sorted(names)


def _verify_topic(directory: str, name: str, report: VerifyReport) -> None:
    try:
        partition_count, config = read_metadata(directory)
    except (OSError, CorruptMetadataError) as error:
        report.problems.append(Problem(
            "error", f"cannot read the topic metadata: {error}", topic=name,
            file=os.path.join(directory, "topic.json"),
        ))
        return
    for number in range(partition_count):
        partition_dir = os.path.join(directory, str(number))
        if not os.path.isdir(partition_dir):
            report.problems.append(Problem(
                "error", "partition directory is missing", topic=name, partition=number,
                file=partition_dir,
            ))
            continue
        compacted = config.cleanup_policy == "compact" or os.path.exists(
            os.path.join(partition_dir, CLEANER_CHECKPOINT))
        partition, problems = _check_partition(partition_dir, name, number, compacted)
        report.partitions.append(partition)
        report.problems.extend(problems)


def _segments_snapshot(directory: str) -> tuple[int | None, list[int]]:
    """What changes when segments roll or are deleted: the state epoch and the files."""
    try:
        state = read_state(os.path.join(directory, STATE_FILE))
    except FileNotFoundError:
        state = None
    return (None if state is None else state.epoch), list_segment_bases(directory)


def _check_partition(directory: str, topic: str, number: int,
                     compacted: bool) -> tuple[PartitionReport, list[Problem]]:
    """Check one partition; again when its segments changed meanwhile (a log in use
    rolls and deletes segments: a check across such a change sees files and state
    from different moments and would report damage that is not there)."""
    for _attempt in range(CHECK_ATTEMPTS):
        before = _segments_snapshot(directory)
        check = _PartitionCheck(directory, topic, number, compacted)
        try:
            check.run()
        except FileNotFoundError:  # a segment deleted by retention meanwhile
            continue
        if _segments_snapshot(directory) == before:
            return check.report, check.problems
    check.problem("warning", f"the partition's segments changed during each of "
                  f"{CHECK_ATTEMPTS} attempts to check it (it is in use); what is reported "
                  f"may come from files of different moments")
    return check.report, check.problems


@dataclasses.dataclass
class _Walk:
    """The batches found in one segment file: where they start and what they hold."""

    positions: array = dataclasses.field(default_factory=lambda: array("q"))
    offsets: array = dataclasses.field(default_factory=lambda: array("q"))
    #: Largest timestamp of the segment's records before each batch.
    max_before: array = dataclasses.field(default_factory=lambda: array("q"))
    end_position: int = 0
    end_offset: int = 0
    max_timestamp: int = NO_TIMESTAMP
    records: int = 0
    #: Batches whose checksum failed (walked over: their framing was sound).
    damaged_batches: int = 0
    #: False when a framing error stopped the walk before ``end_position``'s limit.
    complete: bool = True


class _PartitionCheck:
    """Verify one partition directory once: fills ``report`` and ``problems``."""

    def __init__(self, directory: str, topic: str, number: int, compacted: bool) -> None:
        self.directory = directory
        self.topic = topic
        self.number = number
        #: Compaction removes records from closed segments: their offsets may skip ahead.
        self.compacted = compacted
        self.problems: list[Problem] = []
        self.report = PartitionReport(topic, number)

    def problem(self, severity: Severity, description: str, file: str | None = None,
                offset: int | None = None, position: int | None = None) -> None:
        self.problems.append(Problem(severity, description, self.topic, self.number,
                                     file or self.directory, offset, position))

    def run(self) -> PartitionReport:
        bases = list_segment_bases(self.directory)
        state = self._state(bool(bases))
        if state is not None:
            self.report.start_offset = state.log_start_offset
            self.report.end_offset = state.end_offset
            bases = self._drop_retention_leftovers(bases, state)
            self._check_state_bounds(bases, state)
        expected: int | None = None
        for index, base in enumerate(bases):
            path = self._path(base, LOG_SUFFIX)
            if expected is not None and (base < expected or (
                    base > expected and not self.compacted)):
                self.problem("error", f"segment starts at offset {base} but the previous one "
                             f"ends at offset {expected}", path, offset=base)
            walk = self._check_segment(base, bases[index + 1:], state)
            expected = walk.end_offset if walk.complete else None
        return self.report

    def _path(self, base: int, suffix: str) -> str:
        return os.path.join(self.directory, segment_name(base) + suffix)

    # -- state ---------------------------------------------------------------------------

    def _state(self, has_segments: bool) -> PartitionState | None:
        path = os.path.join(self.directory, STATE_FILE)
        try:
            state = read_state(path)
        except FileNotFoundError:
            if has_segments:
                self.problem("error", "state file is missing: the partition's end is not "
                             "published", path)
            return None
        if state is None:
            self.problem("error", "state file has no valid slot: the partition's end is not "
                         "published", path)
        elif not has_segments:
            self.problem("error", f"state publishes offsets {state.log_start_offset}.."
                         f"{state.end_offset} but there is no segment file", path)
            return None
        return state

    def _drop_retention_leftovers(self, bases: list[int], state: PartitionState) -> list[int]:
        """Segments wholly below the log start: retention died before deleting them."""
        bases = list(bases)
        while len(bases) > 1 and bases[1] <= state.log_start_offset:
            base = bases.pop(0)
            self.problem("warning", f"segment is wholly below the log start offset "
                         f"{state.log_start_offset} (retention did not finish deleting it; the "
                         f"next open removes it)", self._path(base, LOG_SUFFIX), offset=base)
        return bases

    def _check_state_bounds(self, bases: list[int], state: PartitionState) -> None:
        path = os.path.join(self.directory, STATE_FILE)
        if state.log_start_offset < bases[0]:
            self.problem("error", f"state says the log starts at offset "
                         f"{state.log_start_offset} but the first segment starts at offset "
                         f"{bases[0]}", path, offset=state.log_start_offset)
        if not state.log_start_offset <= state.end_offset:
            self.problem("error", f"state's log start offset {state.log_start_offset} is past "
                         f"its end offset {state.end_offset}", path)
        if state.flushed_offset > state.end_offset:
            self.problem("error", f"state's flushed offset {state.flushed_offset} is past its "
                         f"end offset {state.end_offset}", path)
        if state.active_base_offset not in bases:
            self.problem("error", f"state's active segment {segment_name(state.active_base_offset)}"
                         f" has no file", path, offset=state.active_base_offset)

    # -- segments ------------------------------------------------------------------------

    def _check_segment(self, base: int, later: list[int], state: PartitionState | None) -> _Walk:
        path = self._path(base, LOG_SUFFIX)
        buffer = _map_file(path)
        self.report.segments += 1
        if state is not None and base > state.active_base_offset:
            return self._check_unpublished_segment(base, buffer, state)
        active = state is not None and base == state.active_base_offset
        # Without a state the newest segment is still the one being appended to.
        closed = not active if state is not None else bool(later)
        limit = state.active_position if active else len(buffer)
        if limit > len(buffer):
            self.problem("error", f"state publishes {limit} bytes but the file holds "
                         f"{len(buffer)}", path)
            limit = len(buffer)
        walk = self._walk(base, buffer, limit, gaps=self.compacted and closed)
        if walk.complete:
            walk.complete = self._check_tail(base, buffer, walk, active, closed)
        if active and walk.complete:
            self._check_active_state(walk, state)
        self._check_offset_index(base, walk, state.offset_index_count if active else None)
        end = later[0] if later else walk.end_offset
        self._check_time_index(base, walk, state.time_index_count if active else None,
                               end if closed else None)
        return walk

    def _walk(self, base: int, buffer, limit: int, gaps: bool) -> _Walk:
        """Check every batch from the file start up to ``limit``; with ``gaps``, a
        batch may start past where the previous one ended (compaction removed records)."""
        path = self._path(base, LOG_SUFFIX)
        walk = _Walk(end_offset=base)
        position = 0
        while position < limit:
            try:
                header = fmt.decode_header(buffer, position, limit)
            except fmt.BatchError as error:
                if str(error) != "end":
                    walk.complete = False
                    self.problem("error", f"broken batch framing: {error}", path,
                                 offset=walk.end_offset, position=position)
                break
            intact = self._check_batch(path, buffer, position, header, walk, gaps)
            walk.positions.append(position)
            walk.offsets.append(header.base_offset)
            walk.max_before.append(walk.max_timestamp)
            if intact:  # a damaged header's timestamps would only cause knock-on errors
                walk.max_timestamp = max(walk.max_timestamp, header.max_timestamp)
            else:
                walk.damaged_batches += 1
            walk.end_offset = header.next_offset
            if not fmt.is_gap(header):  # a gap's offsets are no records
                walk.records += header.record_count
            position += header.batch_length
        walk.end_position = position
        self.report.batches += len(walk.positions)
        self.report.records += walk.records
        self.report.bytes += position
        return walk

    def _check_batch(self, path: str, buffer, position: int, header: fmt.BatchHeader,
                     walk: _Walk, gaps: bool) -> bool:
        """Report what is wrong with one batch; False when its checksum fails."""
        if header.base_offset < walk.end_offset or (
                header.base_offset > walk.end_offset and not gaps):
            self.problem("error", f"batch has base offset {header.base_offset}, expected "
                         f"{walk.end_offset}", path, offset=header.base_offset,
                         position=position)
        try:
            fmt.verify_batch(buffer, position, header)
        except fmt.BatchError as error:
            self.problem("error", f"bad batch: {error}", path, offset=header.base_offset,
                         position=position)
            return False
        if fmt.is_gap(header):
            return True  # a gap batch: no records, hence no timestamps to check
        timestamps = fmt.record_table(buffer, position, header.record_count)["timestamp"]
        if int(timestamps[0]) != header.first_timestamp or (
            int(timestamps.max()) != header.max_timestamp
        ):
            self.problem("error", f"batch header timestamps {header.first_timestamp}/"
                         f"{header.max_timestamp} disagree with its records' "
                         f"{int(timestamps[0])}/{int(timestamps.max())}", path,
                         offset=header.base_offset, position=position)
        return True

    def _check_tail(self, base: int, buffer, walk: _Walk, active: bool, closed: bool) -> bool:
        """What follows the data: nothing, zeroed preallocation, or leftover bytes.
        False when the walk ended early: a zeroed length field hides data after it."""
        position = walk.end_position
        if position >= len(buffer):
            return True
        path = self._path(base, LOG_SUFFIX)
        if active:  # only the next header: the preallocated rest may be 100s of MiB
            try:
                fmt.decode_header(buffer, position, len(buffer))
                reason = "a batch"
            except fmt.BatchError as error:
                reason = None if str(error) == "end" else str(error)
            if reason is not None:
                self.problem("warning", f"bytes after the published end ({reason}) were "
                             f"written but never published (a writer died, or is writing "
                             f"now); opening the log discards them", path,
                             offset=walk.end_offset, position=position)
            return True
        rest = np.frombuffer(buffer, dtype=np.uint8, offset=position)
        if rest.any():
            first = position + int((rest != 0).argmax())
            self.problem("error", f"a zero length field ends the data but non-zero bytes "
                         f"follow at position {first}: the batches there "
                         f"are unreachable", path, offset=walk.end_offset, position=position)
            return False
        if closed:
            self.problem("warning", f"closed segment was not trimmed: {len(rest)} zero bytes "
                         f"follow its data (the next open trims it)", path, position=position)
        return True

    def _check_unpublished_segment(self, base: int, buffer, state: PartitionState) -> _Walk:
        """A segment newer than the published active one: a roll the writer did not publish."""
        path = self._path(base, LOG_SUFFIX)
        try:
            fmt.decode_header(buffer, 0, len(buffer))
        except fmt.BatchError as error:
            if str(error) == "end" and base == state.end_offset:
                self.problem("warning", "empty segment from a roll that was not published "
                             "(the next open continues in it)", path, offset=base)
                return _Walk(end_offset=base, complete=False)
        self.problem("error", f"segment is newer than the published active segment "
                     f"{segment_name(state.active_base_offset)} and holds data", path,
                     offset=base)
        return _Walk(end_offset=base, complete=False)

    def _check_active_state(self, walk: _Walk, state: PartitionState) -> None:
        path = os.path.join(self.directory, STATE_FILE)
        if (walk.end_offset, walk.end_position) != (state.end_offset, state.active_position):
            self.problem("error", f"state publishes end offset {state.end_offset} at position "
                         f"{state.active_position} but the active segment's batches end at "
                         f"offset {walk.end_offset}, position {walk.end_position}", path,
                         offset=walk.end_offset, position=walk.end_position)
        if not walk.damaged_batches and walk.max_timestamp != state.active_max_timestamp:
            self.problem("error", f"state publishes max timestamp {state.active_max_timestamp}"
                         f" but the active segment's largest is {walk.max_timestamp}", path)

    # -- indexes -------------------------------------------------------------------------

    def _index_entries(self, path: str, dtype: np.dtype, published: int | None) -> np.ndarray:
        """The entries to check: the published count (active segment) or, for a
        closed segment, every entry but trailing all-zero preallocation."""
        entries = _read_index(path, dtype)
        if entries is None:
            entries = np.zeros(0, dtype=dtype)
        if published is not None:
            if published > len(entries):
                self.problem("error", f"state publishes {published} index entries but the file "
                             f"holds {len(entries)}", path)
            return entries[:published]
        rows = entries.view(np.uint8).reshape(len(entries), dtype.itemsize)
        nonzero = np.flatnonzero(rows.any(axis=1))
        return entries[: int(nonzero[-1]) + 1 if len(nonzero) else 0]

    def _report_bad_entries(self, path: str, base: int, relative: np.ndarray,
                            positions: np.ndarray | None,
                            checks: list[tuple[np.ndarray, str]]) -> None:
        """One problem per index file: how many entries fail, and the first one's reason
        (the first failing check, in the order given)."""
        bad = np.zeros(len(relative), dtype=bool)
        for passed, _reason in checks:
            bad |= ~passed
        slots = np.flatnonzero(bad)
        if not len(slots):
            return
        first = int(slots[0])
        reason = next(why for passed, why in checks if not passed[first])
        self.problem("error", f"{len(slots)} of {len(bad)} index entries are bad; first: entry "
                     f"{first} {reason}", path, offset=base + int(relative[first]),
                     position=None if positions is None else int(positions[first]))

    def _check_offset_index(self, base: int, walk: _Walk, published: int | None) -> None:
        path = self._path(base, INDEX_SUFFIX)
        entries = self._index_entries(path, fmt.OFFSET_INDEX_DTYPE, published)
        if not walk.complete:  # past a framing error nothing can be checked
            entries = entries[entries["position"] < walk.end_position]
        relative = entries["relative_offset"].astype(np.int64)
        positions = entries["position"].astype(np.int64)
        slot, at_start = _find(np.frombuffer(walk.positions, dtype=np.int64), positions)
        batch_offsets = np.append(np.frombuffer(walk.offsets, dtype=np.int64), -1)
        self._report_bad_entries(path, base, relative, positions, [
            (_increasing(relative, strict=True) & _increasing(positions, strict=True),
             "does not increase on the previous one"),
            (at_start, "does not point at a batch start"),
            (batch_offsets[slot] == base + relative, "points at a batch with another offset"),
        ])

    def _check_time_index(self, base: int, walk: _Walk, published: int | None,
                          closed_end: int | None) -> None:
        path = self._path(base, TIME_INDEX_SUFFIX)
        entries = self._index_entries(path, fmt.TIME_INDEX_DTYPE, published)
        if not walk.complete:
            entries = entries[entries["relative_offset"] < walk.end_offset - base]
        relative = entries["relative_offset"].astype(np.int64)
        timestamps = entries["timestamp"]
        starts = np.frombuffer(walk.offsets, dtype=np.int64) - base
        max_before = np.frombuffer(walk.max_before, dtype=np.int64)
        if closed_end is not None:
            # A closed segment's last entry may cover all of it: up to its data's end,
            # or (after compaction removed the last records) up to the next segment.
            ends = sorted({walk.end_offset - base, closed_end - base})
            starts = np.append(starts, ends)
            max_before = np.append(max_before, [walk.max_timestamp] * len(ends))
        slot, at_start = _find(starts, relative)
        self._report_bad_entries(path, base, relative, None, [
            (entries["check"] == fmt.time_check(timestamps, entries["relative_offset"]),
             "has a bad check word"),
            (_increasing(relative, strict=True) & _increasing(timestamps, strict=False),
             "does not increase on the previous one"),
            (at_start, "does not point at a batch start"),
            (timestamps >= np.append(max_before, NO_TIMESTAMP)[slot],
             "has a timestamp below that of a record before it"),
        ])


def _find(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query: its slot in the sorted ``keys`` (``len(keys)`` when absent, so
    arrays one longer than ``keys`` can be indexed with it) and whether it is there."""
    extended = np.append(keys, np.iinfo(np.int64).max)
    slot = np.minimum(np.searchsorted(extended, queries), len(keys))
    return slot, extended[slot] == queries


def _increasing(values: np.ndarray, strict: bool) -> np.ndarray:
    """Per entry: whether it is above (``strict``) or at least its predecessor."""
    passed = np.ones(len(values), dtype=bool)
    passed[1:] = values[1:] > values[:-1] if strict else values[1:] >= values[:-1]
    return passed
