"""Verify one partition directory: its state file, segments and indexes, read only.

:class:`PartitionCheck` is one pass over one partition for ``verify.verify_log``,
which owns the retries when segments change meanwhile. The pass walks every
batch of every segment (framing, checksum, offset continuity, timestamps),
compares the active segment with the published state, and checks that each
offset- and time-index entry points at a batch start with a matching offset
and that entries increase. Nothing is opened for writing: the state file is
parsed from its bytes (``StateFile`` would create or extend it), segments are
mapped ``PROT_READ``.

Owns no state beyond the pass: a :class:`PartitionReport` (counts) and the
:class:`Problem` list it fills.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
from array import array
from typing import Literal

import numpy as np

from mqlog.logstore import _format as fmt
from mqlog.logstore._files import map_read_only
from mqlog.logstore._kafka_batch import as_native
from mqlog.logstore._segment import list_segment_bases
from mqlog.logstore._state import FILE_SIZE, PartitionState, decode_state
from mqlog.logstore.layout import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    STATE_FILE,
    TIME_INDEX_SUFFIX,
    segment_name,
)

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


@dataclasses.dataclass
class _Walk:
    """The batches found in one segment file: where they start and what they hold."""

    positions: array[int] = dataclasses.field(default_factory=lambda: array("q"))
    offsets: array[int] = dataclasses.field(default_factory=lambda: array("q"))
    #: Largest timestamp of the segment's records before each batch.
    max_before: array[int] = dataclasses.field(default_factory=lambda: array("q"))
    end_position: int = 0
    end_offset: int = 0
    max_timestamp: int = fmt.NO_TIMESTAMP
    records: int = 0
    #: Batches whose checksum failed (walked over: their framing was sound).
    damaged_batches: int = 0
    #: False when a framing error stopped the walk before ``end_position``'s limit.
    complete: bool = True


class PartitionCheck:
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
        buffer = map_read_only(path)
        self.report.segments += 1
        if state is not None and base > state.active_base_offset:
            return self._check_unpublished_segment(base, buffer, state)
        active_state = state if state is not None and base == state.active_base_offset else None
        active = active_state is not None
        # Without a state the newest segment is still the one being appended to.
        closed = not active if state is not None else bool(later)
        limit = active_state.active_position if active_state is not None else len(buffer)
        if limit > len(buffer):
            self.problem("error", f"state publishes {limit} bytes but the file holds "
                         f"{len(buffer)}", path)
            limit = len(buffer)
        walk = self._walk(base, buffer, limit, gaps=self.compacted and closed)
        if walk.complete:
            walk.complete = self._check_tail(base, buffer, walk, active, closed)
        if active_state is not None and walk.complete:
            self._check_active_state(walk, active_state)
        self._check_offset_index(
            base, walk, active_state.offset_index_count if active_state is not None else None)
        end = later[0] if later else walk.end_offset
        self._check_time_index(
            base, walk, active_state.time_index_count if active_state is not None else None,
            end if closed else None)
        return walk

    def _walk(self, base: int, buffer: bytes | mmap.mmap, limit: int,
              gaps: bool) -> _Walk:
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

    def _check_batch(self, path: str, buffer: bytes | mmap.mmap, position: int,
                     header: fmt.BatchHeader, walk: _Walk, gaps: bool) -> bool:
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
        try:
            table_buffer, at, _native = as_native(buffer, position, header)
        except fmt.BatchError as error:  # a stored Kafka batch whose records do not parse
            self.problem("error", f"bad batch: {error}", path, offset=header.base_offset,
                         position=position)
            return False
        if header.attributes & fmt.ATTR_KAFKA:
            return True  # its records parse; a Kafka batch without timestamps (-1) has
            # the append time in its mqlog header, so the two need not agree
        timestamps = fmt.record_table(table_buffer, at, header.record_count)["timestamp"]
        if int(timestamps[0]) != header.first_timestamp or (
            int(timestamps.max()) != header.max_timestamp
        ):
            self.problem("error", f"batch header timestamps {header.first_timestamp}/"
                         f"{header.max_timestamp} disagree with its records' "
                         f"{int(timestamps[0])}/{int(timestamps.max())}", path,
                         offset=header.base_offset, position=position)
        return True

    def _check_tail(self, base: int, buffer: bytes | mmap.mmap, walk: _Walk, active: bool,
                    closed: bool) -> bool:
        """What follows the data: nothing, zeroed preallocation, or leftover bytes.
        False when the walk ended early: a zeroed length field hides data after it."""
        position = walk.end_position
        if position >= len(buffer):
            return True
        path = self._path(base, LOG_SUFFIX)
        if active:  # only the next header: the preallocated rest may be 100s of MiB
            reason: str | None
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

    def _check_unpublished_segment(self, base: int, buffer: bytes | mmap.mmap,
                                   state: PartitionState) -> _Walk:
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
            (timestamps >= np.append(max_before, fmt.NO_TIMESTAMP)[slot],
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
