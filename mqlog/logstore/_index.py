"""Sparse, memory-mapped indexes of one segment: offset -> position and time -> offset.

Owner: the segment; entries are appended by whoever holds the partition lock.

An index file is a preallocated array of fixed-size entries (see
``_format.OFFSET_INDEX_DTYPE`` / ``TIME_INDEX_DTYPE``) whose blocks are
reserved when it is grown, so storing an entry through the map never faults.
Entries are appended in increasing order of relative offset (asserted); the
number of valid entries is published in the partition state for the active
segment and is the file length for a closed (trimmed) segment. Indexes carry
no checksum: they are validated against the log on open and rebuilt from it
when they disagree.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from mqlog.logstore import _format as fmt
from mqlog.logstore._space import reserve


class SparseIndex:
    """One index file mapped as a numpy structured array of its whole length."""

    def __init__(self, path: str, dtype: np.dtype, read_only: bool = False) -> None:
        self.path = path
        self.dtype = dtype
        #: Mapped read-only and never created: a missing file reads as no entries.
        self.read_only = read_only
        if not read_only:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
        assert dtype.names is not None, "an index's dtype has named fields"
        self._names: tuple[str, ...] = dtype.names
        self.capacity = 0
        self.entries = np.zeros(0, dtype=dtype)
        self.columns = {name: self.entries[name] for name in self._names}
        self.remap()

    def remap(self) -> None:
        """Map the file at its current length (another process may have changed it)."""
        try:
            capacity = os.stat(self.path).st_size // self.dtype.itemsize
        except FileNotFoundError:
            if not self.read_only:
                raise
            capacity = 0  # read-only: never written, so no entries
        if capacity == self.capacity:
            return
        # A plain ndarray over an mmap (the array keeps the map alive): numpy's
        # memmap subclass costs about 70 us to create and adds microseconds to
        # every slice, and opening many partitions and lookups are both hot.
        fd = os.open(self.path, os.O_RDONLY if self.read_only else os.O_RDWR)
        access = mmap.ACCESS_READ if self.read_only else mmap.ACCESS_DEFAULT
        try:
            while True:
                capacity = os.fstat(fd).st_size // self.dtype.itemsize
                if not capacity:
                    entries = np.zeros(0, dtype=self.dtype)
                    break
                try:
                    mapped = mmap.mmap(fd, capacity * self.dtype.itemsize, access=access)
                except ValueError:  # trimmed since the fstat (a roll): look again
                    continue
                entries = np.frombuffer(mapped, dtype=self.dtype, count=capacity)
                break
        finally:
            os.close(fd)
        self.capacity = capacity
        self.entries = entries
        self.columns = {name: self.entries[name] for name in self._names}

    def ensure_capacity(self, capacity: int) -> None:
        """Grow the zero-filled file to hold ``capacity`` entries, with its blocks
        reserved (``_space.reserve``): entries are stored through the map, and a
        store into an unallocated page on a full disk would be a SIGBUS. A full
        disk raises DiskFullError here instead, before any entry is written."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            reserve(fd, max(capacity * self.dtype.itemsize, os.fstat(fd).st_size), self.path)
        finally:
            os.close(fd)
        self.remap()

    def write(self, slot: int, entry: tuple[int, ...]) -> bool:
        """Store ``entry`` at ``slot``; False when the index is full (lookups
        then scan further, they stay correct)."""
        if slot >= self.capacity:
            return False
        self.entries[slot] = entry
        return True

    def trim(self, count: int) -> None:
        """Cut the file to ``count`` entries (segment rolled or log closed cleanly)."""
        self.close()
        os.truncate(self.path, count * self.dtype.itemsize)
        self.remap()

    def close(self) -> None:
        self.entries = np.zeros(0, dtype=self.dtype)
        self.columns = {name: self.entries[name] for name in self._names}
        self.capacity = 0


class OffsetIndex(SparseIndex):
    """Entries (relative_offset, position): the batch holding relative_offset starts at position."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        super().__init__(path, fmt.OFFSET_INDEX_DTYPE, read_only)

    def floor(self, relative_offset: int, count: int) -> tuple[int, int, int]:
        """(slot, relative offset, position) of the last entry at or below
        ``relative_offset`` among the first ``count``; (-1, 0, 0) when there is
        none (scan from the segment start). Callers check the batch found there."""
        if count <= 0:
            return -1, 0, 0
        column = self.columns["relative_offset"][:count]
        slot = int(column.searchsorted(relative_offset, side="right")) - 1
        if slot < 0:
            return -1, 0, 0
        return slot, int(column[slot]), int(self.columns["position"][slot])

    def valid_prefix(self, limit_position: int, count: int | None = None) -> int:
        """How many leading entries (of the first ``count``, default all) are well
        formed: strictly increasing offsets and positions, positions > 0 and below
        ``limit_position``."""
        entries = self.entries if count is None else self.entries[:count]
        if len(entries) == 0:
            return 0
        offsets = entries["relative_offset"].astype(np.int64)
        positions = entries["position"].astype(np.int64)
        good = (positions > 0) & (positions < limit_position)
        good[1:] &= (np.diff(offsets) > 0) & (np.diff(positions) > 0)
        bad = np.flatnonzero(~good)
        return int(bad[0]) if len(bad) else len(entries)


class TimeIndex(SparseIndex):
    """Entries (timestamp, relative_offset): every record of the segment before
    relative_offset has a timestamp <= timestamp, and the entries' timestamps never
    decrease. The last entry of a closed segment covers the whole segment."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        super().__init__(path, fmt.TIME_INDEX_DTYPE, read_only)

    def floor_below(self, timestamp: int, count: int) -> int:
        """Relative offset to start scanning from for the first record with a
        timestamp >= ``timestamp``: the last entry whose timestamp is below it,
        skipping back over damaged entries (0: scan the whole segment)."""
        if count <= 0:
            return 0
        column = self.columns["timestamp"][:count]
        slot = int(column.searchsorted(timestamp, side="left")) - 1
        while slot >= 0:
            stamp, relative, check = (int(v) for v in self.entries[slot])
            if stamp < timestamp and check == fmt.time_check(stamp, relative):
                return relative
            slot -= 1
        return 0

    def valid_prefix(self) -> int:
        """How many leading entries have a good check word, strictly increasing
        relative offsets and non-decreasing timestamps."""
        entries = self.entries
        if len(entries) == 0:
            return 0
        good = entries["check"] == fmt.time_check(entries["timestamp"],
                                                   entries["relative_offset"])
        good[1:] &= (np.diff(entries["relative_offset"].astype(np.int64)) > 0) & (
            np.diff(entries["timestamp"]) >= 0)
        bad = np.flatnonzero(~good)
        return int(bad[0]) if len(bad) else len(entries)
