"""One segment: a data file of batches plus its sparse offset and time indexes.

Owner: the partition. The data file is preallocated (sparse) when created and
trimmed to its valid length when the segment is rolled or the log is closed
cleanly. Batches are written with ``pwritev`` (a full disk is a
``DiskFullError``, not a ``SIGBUS``) and read through a shared read-only memory
map, so readers in other processes see a batch as soon as its bytes are
written; they only read below the published position (see ``_state``).

File names follow Kafka: the base offset as 20 zero-padded digits plus
``.log``, ``.index`` and ``.timeindex`` (see ``layout``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
from collections.abc import Sequence

from mqlog.logstore import _format as fmt
from mqlog.logstore._files import fdatasync_file
from mqlog.logstore._index import OffsetIndex, TimeIndex
from mqlog.logstore._resync import DamagedRangeError, resync
from mqlog.logstore._space import NO_SPACE, disk_full, storage_failed
from mqlog.logstore.layout import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SEGMENT_SUFFIXES,
    TIME_INDEX_SUFFIX,
    segment_base,
    segment_name,
)

#: Verified batch positions remembered per segment, so re-reading a batch
#: (seeks, consumers re-polling) does not hash it again.
_VERIFIED_CACHE_MAX = 4096


def list_segment_bases(directory: str) -> list[int]:
    """Base offsets of the segments in ``directory``, ascending."""
    return sorted(base for base in map(segment_base, os.listdir(directory)) if base is not None)


def remove_segment_files(directory: str, base_offset: int) -> None:
    """Delete a segment's data and index files (missing ones are fine)."""
    stem = os.path.join(directory, segment_name(base_offset))
    for suffix in SEGMENT_SUFFIXES:
        try:
            os.unlink(stem + suffix)
        except FileNotFoundError:
            pass


#: The smallest batch on disk (a header and one record row): an index gets at
#: most one entry per batch, so this bounds the entries a segment can need.
MIN_BATCH_BYTES = fmt.BATCH_HEADER_SIZE + fmt.RECORD_DTYPE.itemsize


def index_capacity(segment_bytes: int, index_interval_bytes: int) -> int:
    """Entries an index needs: one per ``index_interval_bytes`` of data (at most
    one per batch), plus slack. The index files' blocks are reserved, so this
    bounds the disk space they take."""
    return segment_bytes // max(index_interval_bytes, MIN_BATCH_BYTES) + 2


class Segment:
    """Data file + indexes of one segment, open in this process."""

    def __init__(self, directory: str, base_offset: int, create: bool = False,
                 read_only: bool = False) -> None:
        """Open the segment's files (``create``: a new segment; ``read_only``: an
        existing one, opened and mapped for reading only, creating nothing)."""
        self.base_offset = base_offset
        stem = os.path.join(directory, segment_name(base_offset))
        self.path = stem + LOG_SUFFIX
        flags = os.O_RDONLY if read_only else os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(self.path, flags, 0o644)
        self.index = OffsetIndex(stem + INDEX_SUFFIX, read_only)
        self.time_index = TimeIndex(stem + TIME_INDEX_SUFFIX, read_only)
        self._map: mmap.mmap | None = None
        self.mapped_bytes = 0
        self._verified: set[int] = set()
        #: Largest timestamp of a closed segment, once known.
        self.max_timestamp: int | None = None
        #: For a closed segment: valid index entries and the data end, learnt on load.
        self.closed_index_count = -1
        self.closed_time_count = -1
        #: Bytes of a closed segment (its file is immutable once closed).
        self.closed_size = -1
        #: A closed segment rewritten by compaction: its offsets may have gaps.
        self.compacted = False

    # -- reading ---------------------------------------------------------------

    def replaced(self) -> bool:
        """True if the file at this segment's path is no longer the one open here
        (compaction swapped in a cleaned copy)."""
        try:
            return os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False

    def file_size(self) -> int:
        return os.fstat(self.fd).st_size

    def buffer(self, needed_bytes: int) -> mmap.mmap:
        """The read-only map of the data file covering at least ``needed_bytes``.

        Another process may trim the file at any time (a roll, or the last close
        cutting the preallocation), never below what a reader may read: a trim
        between the size lookup and the mapping is met by looking again."""
        if needed_bytes > self.mapped_bytes or self._map is None:
            while True:
                size = self.file_size()
                if size == 0:
                    raise fmt.BatchError("segment file is empty")
                try:
                    # The old map (if any) is dropped, not closed: numpy views of it
                    # held by other threads stay valid until they are released.
                    self._map = mmap.mmap(self.fd, size, prot=mmap.PROT_READ)
                except ValueError:  # "mmap length is greater than file size": trimmed
                    continue
                break
            self.mapped_bytes = size
        return self._map

    def header_at(self, position: int, limit: int, verify: bool = True) -> fmt.BatchHeader:
        """The batch header at ``position`` (checksum verified once per process)."""
        buffer = self.buffer(limit)
        limit = min(limit, self.mapped_bytes)
        header = fmt.decode_header(buffer, position, limit)
        if verify and position not in self._verified:
            fmt.verify_batch(buffer, position, header)
            if len(self._verified) >= _VERIFIED_CACHE_MAX:
                self._verified.clear()
            self._verified.add(position)
        return header

    def forget_verified_from(self, position: int) -> None:
        self._verified = {p for p in self._verified if p < position}

    def locate(self, offset: int, limit: int, index_count: int, hint: int = -1,
               end_offset: int = 2**63 - 1) -> tuple[int, fmt.BatchHeader | None]:
        """(position, header) of the first intact batch holding ``offset`` or a
        later one, scanning from the nearest index entry that names an intact
        batch; (limit, None) if the segment's data ends first. Damage before
        ``offset`` is stepped over (see ``_resync``); when ``offset`` lies in
        damage, raises DamagedRangeError saying where it ends. ``end_offset``:
        the segment's end (the next segment's base, or the partition's end).

        ``hint``: the position of a batch the caller read last; a reader going on
        where it stopped then needs no index lookup and no scan."""
        if 0 <= hint < limit:
            try:
                header = self.header_at(hint, limit)
                if header.base_offset <= offset < header.next_offset:
                    return hint, header
                following = hint + header.batch_length
                if header.next_offset == offset and following < limit:
                    header = self.header_at(following, limit)
                    if header.base_offset == offset:
                        return following, header
            except fmt.BatchError:
                pass  # not a batch start any more (recovery cut): look it up
        position, expected = self._indexed_start(offset, limit, index_count)
        return self.walk_to(offset, position, expected, limit, index_count, end_offset)

    def walk_to(self, offset: int, position: int, expected: int, limit: int,
                index_count: int, end_offset: int) -> tuple[int, fmt.BatchHeader | None]:
        """As :meth:`locate`, walking from the batch start ``position``, where a
        batch with offset ``expected`` (at most ``offset``) or above begins."""
        while position < limit:
            try:
                header = self.header_at(position, limit)
            except fmt.BatchError as error:
                reason = str(error)
            else:
                if header.base_offset >= expected:
                    if header.next_offset > offset:
                        return position, header
                    expected = header.next_offset
                    position += header.batch_length
                    continue
                reason = f"batch has offset {header.base_offset}, expected {expected} or above"
            damage = resync(self, position, expected, limit, index_count, end_offset, reason)
            if offset < damage.next_offset:
                raise DamagedRangeError(damage)
            if damage.next_position is None:
                break
            position, expected = damage.next_position, damage.next_offset
        return limit, None

    def _indexed_start(self, offset: int, limit: int, index_count: int) -> tuple[int, int]:
        """(position, offset) of the last index entry at or below ``offset`` that
        names an intact batch with that offset; (0, base offset) if none does."""
        slot, _relative, _position = self.index.floor(offset - self.base_offset, index_count)
        positions = self.index.columns["position"]
        relatives = self.index.columns["relative_offset"]
        while slot >= 0:
            position = int(positions[slot])
            if 0 < position < limit:
                try:
                    header = self.header_at(position, limit)
                except fmt.BatchError:
                    header = None
                if header is not None and (
                        header.base_offset == self.base_offset + int(relatives[slot])):
                    return position, header.base_offset
            slot -= 1  # a damaged entry, or one naming a damaged batch: an earlier one
        return 0, self.base_offset

    # -- writing (partition lock held) -----------------------------------------

    def write(self, position: int, buffers: Sequence[bytes | bytearray | memoryview],
              expected: int) -> None:
        """Write ``buffers`` (``expected`` bytes in all) at ``position``, beyond the
        published end.

        A full disk raises DiskFullError, any other failure StorageFailedError;
        either way the bytes of this write that did land are zeroed first, so
        that no part of a batch that was never published lies past the
        published end, where a later, shorter batch would leave it for
        recovery to find."""
        written = 0
        try:
            written = os.pwritev(self.fd, buffers, position)
            if written < expected:  # the disk filled up mid-write: learn why
                rest = memoryview(b"".join(buffers))
                while written < expected:
                    step = os.pwrite(self.fd, rest[written:], position + written)
                    if step <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    written += step
        except OSError as error:
            self._discard(position, written, error)
            if error.errno in NO_SPACE:
                raise disk_full(self.path, expected, error) from error
            raise storage_failed("writing", self.path, error) from error

    def _discard(self, position: int, length: int, cause: OSError) -> None:
        """Zero ``length`` bytes written at ``position`` by a write that failed;
        if even that fails, raise StorageFailedError (the partition is then
        latched and recovery zeroes the tail on the next open)."""
        if length <= 0:
            return
        self.forget_verified_from(position)
        if _punch_hole(self.fd, position, length):
            return
        try:
            os.pwrite(self.fd, bytes(length), position)
        except OSError as error:
            raise storage_failed(f"writing (then zeroing after {cause})", self.path,
                                 error) from error

    def preallocate(self, data_bytes: int, index_capacity: int) -> None:
        """Grow the data file (sparse: written with ``pwritev``) and the indexes
        (blocks reserved: written through maps) so appends need no remap.
        Raises DiskFullError when the indexes cannot be reserved."""
        if self.file_size() < data_bytes:
            os.ftruncate(self.fd, data_bytes)
        self.index.ensure_capacity(index_capacity)
        self.time_index.ensure_capacity(index_capacity + 1)

    def flush(self) -> None:
        """fdatasync the data file. A failure raises StorageFailedError: the pages
        it covered may have been marked clean without reaching the disk, so the
        caller must not retry as if nothing happened (see ``Partition.flush``)."""
        try:
            fdatasync_file(self.fd)
        except OSError as error:
            raise storage_failed("fdatasync", self.path, error) from error

    def trim(self, data_bytes: int, index_count: int, time_count: int) -> None:
        """Cut data and indexes to their valid lengths."""
        if self.mapped_bytes > data_bytes:
            self._map = None
            self.mapped_bytes = 0
        os.ftruncate(self.fd, data_bytes)
        self.index.trim(index_count)
        self.time_index.trim(time_count)

    def has_bytes_at(self, position: int) -> bool:
        """True if anything but zeros lies in the header-sized window at ``position``."""
        return any(os.pread(self.fd, fmt.BATCH_HEADER_SIZE, position))

    def zero_from(self, position: int) -> None:
        """Discard everything from ``position`` to the end of the file (recovery cut
        a bad tail): the bytes read back as zeros, the length is unchanged."""
        size = self.file_size()
        if size <= position:
            return
        self.forget_verified_from(position)
        if not _punch_hole(self.fd, position, size - position):
            chunk = bytes(1 << 20)
            while position < size:
                step = min(len(chunk), size - position)
                os.pwrite(self.fd, chunk[:step], position)
                position += step

    def close(self) -> None:
        """Release this process's handles (idempotent; maps go when unreferenced)."""
        self._map = None
        self.mapped_bytes = 0
        self.index.close()
        self.time_index.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- closed segments ---------------------------------------------------------

    def load_closed(self) -> None:
        """Learn the valid index prefixes of a closed segment (index files are
        not trusted: junk entries are ignored, lookups then scan further)."""
        self.index.remap()
        self.time_index.remap()
        size = self.closed_size = self.file_size()
        self.closed_index_count = self.index.valid_prefix(size)
        self.closed_time_count = self.time_index.valid_prefix()
        try:  # compaction marks every batch it writes; the first one tells
            first = fmt.decode_header(self.buffer(size), 0, size)
            self.compacted = bool(first.attributes & fmt.ATTR_COMPACTED)
        except fmt.BatchError:
            self.compacted = False


_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = None


def _punch_hole(fd: int, position: int, length: int) -> bool:
    """Deallocate a byte range (reads back as zeros); False where unsupported."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                                        ctypes.c_int64]
        mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
        return _libc.fallocate(fd, mode, position, length) == 0
    except (OSError, AttributeError):
        return False
