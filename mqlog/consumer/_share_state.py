"""The durable per-partition state of a queue (share) group.

Owner: whoever holds the state file's lock (a thread lock plus an exclusive
``flock``, held for one operation). Any number of workers -- threads or
processes -- share one partition through this file, as Kafka share groups
(KIP-932) share a partition through the share-partition state.

The file (``<log>/queues/<group>/<topic>/<partition>``) is memory-mapped, its
blocks reserved when it is opened (a store into a page without blocks would be
a SIGBUS on a full disk; a full disk raises DiskFullError at open instead);
every change is in the page cache once the operation returns, so it survives the
crash of any process. A ``durable`` state (the topic's durability is
``always``) also flushes the file (``msync``) before an operation returns, so
acks and delivery counts survive a power loss too. Layout (little-endian)::

    header, 64 bytes:
      0   8s  magic "MQLSHARE"
      8   u32 version (1)
      12  u32 capacity: most records in flight at once (the window)
      16  i64 start: every offset below it is finished (acknowledged or archived)
      24  i64 window_end: offsets in [start, window_end) have entries
      32  u64 expired: records dropped because their time to live ran out
      40  u64 dead_lettered: records moved to the dead-letter topic
      48  u64 corrupt: records archived because their batch on disk is damaged
    entries, capacity x 32 bytes; the entry of offset o is at o % capacity:
      0   u8  state: AVAILABLE, ACQUIRED, ACKED or ARCHIVED
      1   u8  deliveries: how many times the record was handed to a worker
      2   u16 reserved
      4   u32 owner: the member that holds an ACQUIRED record
      8   i64 time: ACQUIRED -> lock deadline (ms); AVAILABLE -> not before (ms)
      16  i64 first delivery (ms since the epoch; 0 before the first)
      24  i64 last delivery (ms)

Invariants: ``start <= window_end <= start + capacity``; ``start`` only moves
forward, over entries that are ACKED or ARCHIVED; a record's ``deliveries``
never decreases, so a record that crashes its worker every time reaches
``max_deliveries`` and is archived.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from mqlog.errors import DiskFullError, StorageFailedError
from mqlog.logstore import fsync_directory, fsync_file, reserve, storage_failed, sync_map

AVAILABLE, ACQUIRED, ACKED, ARCHIVED = 0, 1, 2, 3
#: The owner of records handed out with receipt handles (``mqlog.consumer._receipts``):
#: no worker, so only their deadline frees them. Worker ids are never 0.
DETACHED = 0
MAGIC = b"MQLSHARE"
VERSION = 1
HEADER = struct.Struct("<8sIIqq")
HEADER_SIZE = 64
ENTRY_DTYPE = np.dtype([
    ("state", "u1"), ("deliveries", "u1"), ("reserved", "<u2"), ("owner", "<u4"),
    ("time", "<i8"), ("first_ms", "<i8"), ("last_ms", "<i8"),
])
assert ENTRY_DTYPE.itemsize == 32
#: Deliveries are counted in a byte.
DELIVERIES_MAX = 255
_COUNTERS = {"expired": 32, "dead_lettered": 40, "corrupt": 48}
#: The first fields of an entry, for single-record reads without numpy.
_ENTRY_HEAD = struct.Struct("<BBHIq")


def _read_header(fd: int) -> tuple[int, int, int] | None:
    """(capacity, start, window_end) from the header of the share state open at
    ``fd``; None unless it holds a whole header of this version."""
    header = os.pread(fd, HEADER.size, 0)
    if len(header) < HEADER.size:
        return None
    magic, version, capacity, start, window_end = HEADER.unpack(header)
    if magic != MAGIC or version != VERSION:
        return None
    return capacity, start, window_end


def window_end_of(path: str) -> int | None:
    """The ``window_end`` in the header of the share state at ``path``: every
    offset below it was taken into the queue's window. None when there is no
    such file, or not a whole header of this version (being created)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        header = _read_header(fd)
    finally:
        os.close(fd)
    return None if header is None else header[2]


class Acquired(NamedTuple):
    """Records handed to a worker, in offset order: per record its offset, its
    delivery number (1 = first) and when it was first delivered; and how many
    of them were taken from a worker whose lock ran out."""

    offsets: list[int]
    deliveries: list[int]
    first_ms: list[int]
    #: When each was handed out before this time (0 for a first delivery).
    last_ms: list[int]
    expired: int
    #: A record on its last attempt was met: the receive ends with these records.
    stopped: bool = False


class ShareState:
    """The state file of one partition for one queue group."""

    #: The first failed flush, once there is one (see :meth:`_sync`).
    _failure: StorageFailedError | None = None

    def __init__(self, path: str, capacity: int, initial_start: int,
                 durable: bool = False, read_only: bool = False) -> None:
        """Open (creating it if missing) the state file at ``path``; ``read_only``:
        an existing file, mapped for the lock-free reads only."""
        if read_only:
            self._open_for_reading(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        #: Flush every change before the operation returns (see the module).
        self.durable = durable
        self._thread_lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._open(path, capacity, initial_start, durable)
        except BaseException:
            os.close(self._fd)
            raise

    def _open(self, path: str, capacity: int, initial_start: int, durable: bool) -> None:
        """Create the file if it is new, check it, reserve its blocks and map it."""
        with self._flock():
            size = os.fstat(self._fd).st_size
            if size == 0:
                try:
                    reserve(self._fd, HEADER_SIZE + capacity * ENTRY_DTYPE.itemsize, path)
                except DiskFullError:
                    os.ftruncate(self._fd, 0)  # still new: the next open creates it
                    raise
                os.pwrite(self._fd, HEADER.pack(MAGIC, VERSION, capacity, initial_start,
                                                initial_start), 0)
                if durable:  # the file and the directories makedirs may have created
                    fsync_file(self._fd)
                    directory = os.path.dirname(path)
                    for _level in range(3):  # <topic>, <group> and queues/
                        fsync_directory(directory)
                        directory = os.path.dirname(directory)
            header = _read_header(self._fd)
            if header is None:
                raise ValueError(f"{path} is not a version {VERSION} queue state file")
            capacity = header[0]
            # Every write goes through the map: a page without blocks would fault
            # (SIGBUS) on a full disk. A no-op for files created as above.
            reserve(self._fd, HEADER_SIZE + capacity * ENTRY_DTYPE.itemsize, path)
        self.capacity = capacity
        self._map = mmap.mmap(self._fd, HEADER_SIZE + capacity * ENTRY_DTYPE.itemsize)
        self.entries = np.frombuffer(self._map, dtype=ENTRY_DTYPE, count=capacity,
                                     offset=HEADER_SIZE)

    def _open_for_reading(self, path: str) -> None:
        """Map an existing state file read-only: only the lock-free reads work."""
        self.path = path
        self.durable = False
        self._thread_lock = threading.Lock()
        self._fd = os.open(path, os.O_RDONLY)
        header = _read_header(self._fd)
        if header is None:
            os.close(self._fd)
            raise ValueError(f"{path} is not a version {VERSION} queue state file")
        capacity = self.capacity = header[0]
        self._map = mmap.mmap(self._fd, HEADER_SIZE + capacity * ENTRY_DTYPE.itemsize,
                              access=mmap.ACCESS_READ)
        self.entries = np.frombuffer(self._map, dtype=ENTRY_DTYPE, count=capacity,
                                     offset=HEADER_SIZE)

    # -- locking and the header ----------------------------------------------------------

    @contextmanager
    def _flock(self):
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def locked(self):
        """Hold the state for one operation (threads and processes); a durable state
        is flushed once the operation is done. Raises StorageFailedError once a
        flush has failed (see :meth:`_sync`)."""
        self._check_failure()
        with self._thread_lock, self._flock():
            yield
        if self.durable:
            self._sync()

    def _sync(self) -> None:
        """Flush the file's changed pages to disk (msync). A failure latches: the
        pages may be marked clean without being on disk, so this and every later
        operation on this object raises StorageFailedError naming it (a new
        object, e.g. of a new queue consumer, opens the file afresh)."""
        try:
            sync_map(self._map, self._fd)
        except OSError as error:
            if self._failure is None:
                self._failure = storage_failed("msync", self.path, error)
            raise self._failure from error

    @property
    def failed(self) -> bool:
        """Whether a flush failed: every operation raises StorageFailedError."""
        return self._failure is not None

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise StorageFailedError(f"queue state {self.path} refuses writes since a "
                                     f"flush failed: {self._failure}",
                                     original=self._failure.original)

    def bounds(self) -> tuple[int, int]:
        """(start, window_end); lock-free reads may be a moment old."""
        return struct.unpack_from("<qq", self._map, 16)

    def _set_bounds(self, start: int, window_end: int) -> None:
        struct.pack_into("<qq", self._map, 16, start, window_end)

    def count(self, name: str, amount: int) -> None:
        """Add to one of the header's counters (``expired``, ``dead_lettered``,
        ``corrupt``)."""
        position = _COUNTERS[name]
        with self.locked():
            value = struct.unpack_from("<Q", self._map, position)[0]
            struct.pack_into("<Q", self._map, position, value + amount)

    def counters(self) -> dict[str, int]:
        return {name: struct.unpack_from("<Q", self._map, position)[0]
                for name, position in _COUNTERS.items()}

    def next_due(self, now_ms: int) -> int | None:
        """When the next record becomes ready without an append (a delay or a lock
        running out), in ms since the epoch; None if none will."""
        start, end = self.bounds()
        if start >= end:
            return None
        window = self.entries[self._slots(start, end)]
        waiting = (window["state"] == AVAILABLE) | (window["state"] == ACQUIRED)
        times = window["time"][waiting & (window["time"] > now_ms)]
        return int(times.min()) + 1 if len(times) else None

    def _slots(self, first: int, last: int) -> np.ndarray:
        """Ring slots of offsets ``first`` .. ``last - 1``."""
        return np.arange(first, last, dtype=np.int64) % self.capacity

    # -- operations (each under the lock) -------------------------------------------------------

    def acquire(self, member: int, now_ms: int, lock_ms: int, limit: int, log_start: int,
                log_end: int, last_delivery: int | None = None,
                alone_ok: bool = True) -> Acquired:
        """Hand out up to ``limit`` records to ``member`` until ``now_ms + lock_ms``.

        Takes, in offset order, records that are AVAILABLE and due and records
        whose lock expired, then records new to the window (up to ``log_end``
        and the capacity).

        A redelivery that would be a record's last attempt (delivery number
        ``last_delivery``) is handed out alone, so that a record that kills its
        worker every time cannot take the records received with it down too:
        if it comes first and ``alone_ok`` (the caller holds nothing from this
        receive yet) it is the only record taken, else taking stops before it.
        Either way ``Acquired.stopped`` tells the caller to end its receive.
        """
        with self.locked():
            start, end = self.bounds()
            if start < log_start:  # retention deleted records nobody finished
                start, end = log_start, max(end, log_start)
            start = self._advance(start, end)
            picked = np.zeros(0, dtype=np.int64)
            stopped = False
            if end > start:
                slots = self._slots(start, end)
                window = self.entries[slots]
                states, times = window["state"], window["time"]
                ready = ((states == AVAILABLE) & (times <= now_ms)) | (
                    (states == ACQUIRED) & (times < now_ms))
                picked = slots[np.flatnonzero(ready)[:limit]]
                if last_delivery is not None and last_delivery > 1 and len(picked):
                    prior = self.entries["deliveries"][picked]
                    last = np.flatnonzero(prior == last_delivery - 1)
                    if len(last):
                        stopped = True
                        picked = picked[:1] if last[0] == 0 and alone_ok else picked[:last[0]]
            new_end = min(log_end, start + self.capacity, end + limit - len(picked))
            if new_end > end and not stopped:  # records new to the window: take them
                fresh = self._slots(end, new_end)
                self.entries[fresh] = np.zeros(len(fresh), dtype=ENTRY_DTYPE)
                picked = np.concatenate([picked, fresh])
                end = new_end
            self._set_bounds(start, end)
            if not len(picked):
                return Acquired([], [], [], [], 0, stopped)
            expired = int(np.count_nonzero(self.entries["state"][picked] == ACQUIRED))
            deliveries = np.minimum(self.entries["deliveries"][picked].astype(np.int64) + 1,
                                    DELIVERIES_MAX)
            first = self.entries["first_ms"][picked]
            first = np.where(first == 0, now_ms, first)
            previous_last = self.entries["last_ms"][picked].tolist()
            self.entries["state"][picked] = ACQUIRED
            self.entries["deliveries"][picked] = deliveries
            self.entries["owner"][picked] = member
            self.entries["time"][picked] = now_ms + lock_ms
            self.entries["first_ms"][picked] = first
            self.entries["last_ms"][picked] = now_ms
            offsets = (start + (picked - start) % self.capacity).tolist()
            return Acquired(offsets, deliveries.tolist(), first.tolist(), previous_last,
                            expired, stopped)

    def ack_fast(self, member: int, offset: int, now_ms: int, margin_ms: int) -> bool:
        """Mark a held record ACKED without the lock, when that is safe: no other
        worker may take a record before its lock deadline, and this one is at
        least ``margin_ms`` away from it. One byte is written, so the change is
        atomic. Returns False when the caller must use :meth:`finish`."""
        position = HEADER_SIZE + (offset % self.capacity) * ENTRY_DTYPE.itemsize
        state, _deliveries, _reserved, owner, deadline = _ENTRY_HEAD.unpack_from(
            self._map, position)
        if state != ACQUIRED or owner != member or now_ms >= deadline - margin_ms:
            return False
        self._check_failure()
        start, end = self.bounds()
        if not start <= offset < end:
            return False
        self._map[position] = ACKED
        if self.durable:
            self._sync()
        return True

    def finish(self, member: int, offsets: Iterable[int], state: int) -> list[int]:
        """Mark records ACKED or ARCHIVED; returns the offsets that were not held by
        ``member`` any more (another worker took them after their lock ran out)."""
        with self.locked():
            start, end = self.bounds()
            lost = []
            for offset in offsets:
                if offset < start:
                    continue  # already finished
                position = HEADER_SIZE + (offset % self.capacity) * ENTRY_DTYPE.itemsize
                current, _d, _r, owner, _t = _ENTRY_HEAD.unpack_from(self._map, position)
                if offset < end and current in (ACKED, ARCHIVED):
                    continue
                if offset >= end or current != ACQUIRED or owner != member:
                    lost.append(offset)
                    continue
                self._map[position] = state
            self._set_bounds(self._advance(start, end), end)
            return lost

    def release(self, member: int, offsets: Iterable[int], not_before_ms: int,
                undeliver: bool = False) -> list[int]:
        """Make records AVAILABLE again from ``not_before_ms`` (nack, or not due yet).
        With ``undeliver`` the delivery that just happened does not count (the
        record was never handed to user code). Returns offsets not held any more."""
        with self.locked():
            slots, lost = self._held(member, offsets)
            self.entries["state"][slots] = AVAILABLE
            self.entries["time"][slots] = not_before_ms
            if undeliver:
                counts = self.entries["deliveries"][slots]
                self.entries["deliveries"][slots] = np.where(counts > 0, counts - 1, 0)
            return lost

    def extend(self, member: int, offsets: Iterable[int], deadline_ms: int) -> list[int]:
        """Push the lock deadline of held records; returns offsets not held any more."""
        with self.locked():
            slots, lost = self._held(member, offsets)
            self.entries["time"][slots] = deadline_ms
            return lost

    def _held(self, member: int, offsets: Iterable[int]) -> tuple[list[int], list[int]]:
        """(slots of the ``offsets`` that ``member`` holds, the other offsets); lock held."""
        start, end = self.bounds()
        slots, lost = [], []
        for offset in offsets:
            slot = offset % self.capacity
            if start <= offset < end and self.entries["state"][slot] == ACQUIRED and (
                self.entries["owner"][slot] == member
            ):
                slots.append(slot)
            else:
                lost.append(offset)
        return slots, lost

    def release_owners(self, dead: set[int]) -> int:
        """Make the records held by dead members available at once; returns how many."""
        if not dead:
            return 0
        with self.locked():
            start, end = self.bounds()
            slots = self._slots(start, end)
            window = self.entries[slots]
            held = slots[(window["state"] == ACQUIRED) & np.isin(window["owner"], list(dead))]
            self.entries["time"][held] = 0
            self.entries["state"][held] = AVAILABLE
            return len(held)

    def reset(self, start: int) -> None:
        """Forget every record's state and begin again at ``start`` (an administrative
        move of the group's position, made while no worker is live). The counters
        are kept."""
        with self.locked():
            self.entries[:] = np.zeros(self.capacity, dtype=ENTRY_DTYPE)
            self._set_bounds(start, start)

    def _advance(self, start: int, end: int) -> int:
        """The first unfinished offset at or after ``start`` (lock held)."""
        step = 256
        while start < end:
            window = self.entries["state"][self._slots(start, min(end, start + step))]
            unfinished = np.flatnonzero((window != ACKED) & (window != ARCHIVED))
            if len(unfinished):
                return start + int(unfinished[0])
            start += len(window)
        return start

    # -- read-only views (no lock: for metrics) -----------------------------------------------

    def counts(self, now_ms: int) -> dict[str, int]:
        """The position (first unfinished offset: ``start`` may lag behind lock-free
        acks) and, from there to the window's end, how many records are ready, in
        flight, delayed (not yet due) and finished."""
        start, end = self.position(), self.bounds()[1]
        window = self.entries[self._slots(start, end)]
        states, times = window["state"], window["time"]
        return {
            "position": start,
            "window_end": end,
            "in_flight": int(np.count_nonzero((states == ACQUIRED) & (times >= now_ms))),
            "ready": int(np.count_nonzero(
                ((states == AVAILABLE) & (times <= now_ms))
                | ((states == ACQUIRED) & (times < now_ms)))),
            "delayed": int(np.count_nonzero((states == AVAILABLE) & (times > now_ms))),
            "finished": int(np.count_nonzero((states == ACKED) | (states == ARCHIVED))),
        }

    def position(self) -> int:
        """The first unfinished offset (``start`` may lag behind lock-free acks)."""
        return self._advance(*self.bounds())

    def owners(self) -> set[int]:
        start, end = self.bounds()
        window = self.entries[self._slots(start, end)]
        return set(window["owner"][window["state"] == ACQUIRED].tolist())

    def close(self) -> None:
        del self.entries
        self._map.close()
        os.close(self._fd)
