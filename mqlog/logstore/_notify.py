"""Append notifications across threads and processes: a futex in a shared file.

Owner: the Log. ``<log>/notify`` is a 64-byte file every process maps. Its
first u32 is a change counter that every append increments after publishing
its batch; its second u32 is a "someone is waiting" flag; its third u32 is
the topics counter, which every creation and deletion of a topic increments
under the log's metadata lock (so no increment is lost) and which tells each
process when to look again at the topics it holds open (see
``TopicTable.topic``). A reader that finds
nothing new sets the flag, re-checks, and sleeps in ``FUTEX_WAIT`` on the
counter; an appender that finds the flag set clears it and calls
``FUTEX_WAKE``. Sleeping readers use no CPU and wake within microseconds of an
append in any process.

A lost wake-up is impossible in the common case (``FUTEX_WAIT`` returns at once
if the counter moved since the reader looked) and bounded otherwise: every
wait is cut into slices of at most ``WAIT_SLICE_S``. Where futexes are not
available (not Linux), waiting falls back to sleeping in short slices.

A read-only Log maps the file for reading only: it cannot raise the flag, so
it polls the counter every ``READ_ONLY_POLL_S`` instead of sleeping until woken.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import platform
import struct
import sys
import time
from collections.abc import Callable

from mqlog.logstore._space import reserve
from mqlog.logstore.layout import NOTIFY_FILE

FILE_SIZE = 64
#: Longest single sleep: bounds the cost of a wake-up lost to a race.
WAIT_SLICE_S = 0.05
#: Sleep of the portable fallback (no futex): bounds its wake-up latency.
FALLBACK_SLEEP_S = 0.0005
#: Poll period of a read-only Log (it cannot ask appenders to wake it): bounds
#: how late a read-only tail sees an append.
READ_ONLY_POLL_S = 0.01

_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine())
_WORD = struct.Struct("<I")
#: Index of the topics counter among the file's u32 words.
_TOPICS_WORD = 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_syscall() -> Callable[..., int] | None:
    if _SYS_FUTEX is None or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syscall
    except (OSError, AttributeError):
        return None


_syscall = _load_syscall()


def _zeros() -> mmap.mmap:
    """A private zero-filled map: the counter of a file no process created yet."""
    return mmap.mmap(-1, FILE_SIZE)


def _map_existing(path: str) -> mmap.mmap | None:
    """The counters file at ``path`` mapped for reading; None while it is missing
    or shorter than FILE_SIZE (being created)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if os.fstat(fd).st_size < FILE_SIZE:
            return None
        return mmap.mmap(fd, FILE_SIZE, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)


class Notifier:
    """The shared change counter of one log directory."""

    def __init__(self, directory: str, read_only: bool = False) -> None:
        path = os.path.join(directory, NOTIFY_FILE)
        self._read_only = read_only
        #: Read-only, while no writer has created the file: its path, looked for again.
        self._missing_path: str | None = None
        if read_only:
            self._map_for_reading(path)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                reserve(fd, FILE_SIZE, path)  # written through the map: never a SIGBUS
                self._map = mmap.mmap(fd, FILE_SIZE)
            finally:
                os.close(fd)
            self._counter = ctypes.c_uint32.from_buffer(self._map, 0)
            self._address = ctypes.addressof(self._counter)
        #: The file as u32 words (the topics counter is read on every lookup by name).
        self._words = memoryview(self._map).cast("I")

    def _map_for_reading(self, path: str) -> None:
        """Map the counters read-only. A missing or short file (no writer opened
        the log yet) reads as counters at 0, and until a writer has created it
        every ``value`` and ``topic_changes`` call looks for it again (one
        ``open``), so that no topic change a writer counts once it exists goes
        unseen."""
        mapped = _map_existing(path)
        if mapped is not None:
            self._map = mapped
            return
        self._map = _zeros()
        self._missing_path = path
        # Instance attributes, so that the usual case pays nothing for the look;
        # callers that took the bound methods before the file appeared keep
        # these, which then cost one test.
        self.value = self._value_until_mapped  # type: ignore[method-assign]
        self.topic_changes = self._topic_changes_until_mapped  # type: ignore[method-assign]

    def _look_for_the_file(self) -> None:
        """Map the counters file if a writer has created it since (read-only)."""
        path = self._missing_path
        if path is None:
            return
        mapped = _map_existing(path)
        if mapped is None:
            return
        self._map = mapped
        self._words = memoryview(mapped).cast("I")
        self._missing_path = None
        self.__dict__.pop("value", None)
        self.__dict__.pop("topic_changes", None)

    def _value_until_mapped(self) -> int:
        self._look_for_the_file()
        return Notifier.value(self)

    def _topic_changes_until_mapped(self) -> int:
        self._look_for_the_file()
        return Notifier.topic_changes(self)

    def value(self) -> int:
        """The counter now; pass it to :meth:`wait` after finding nothing new."""
        return _WORD.unpack_from(self._map, 0)[0]

    def topic_changes(self) -> int:
        """The topics counter now: it moves whenever any process creates or
        deletes a topic."""
        return self._words[_TOPICS_WORD]

    def count_topic_change(self) -> None:
        """Move the topics counter (the log's metadata lock held: no move is
        lost), then wake sleepers as an append does."""
        words = self._words
        words[_TOPICS_WORD] = (words[_TOPICS_WORD] + 1) & 0xFFFFFFFF
        self.notify()

    def notify(self) -> None:
        """Called after every append: move the counter, wake sleepers if any."""
        counter = self._map
        _WORD.pack_into(counter, 0, (_WORD.unpack_from(counter, 0)[0] + 1) & 0xFFFFFFFF)
        if counter[4]:
            counter[4] = 0
            if _syscall is not None:
                _syscall(_SYS_FUTEX, ctypes.c_void_p(self._address), _FUTEX_WAKE, 0x7FFFFFFF,
                         None, None, 0)

    def wait(self, seen: int, timeout_s: float) -> None:
        """Sleep until the counter moves away from ``seen`` or ``timeout_s`` passes
        (spurious early returns are possible: callers re-check their condition)."""
        if self._read_only:
            if self.value() == seen:
                time.sleep(min(max(timeout_s, 0.0), READ_ONLY_POLL_S))
            return
        self._map[4] = 1
        if self.value() != seen:
            return
        timeout_s = min(max(timeout_s, 0.0), WAIT_SLICE_S)
        if _syscall is None:
            time.sleep(min(timeout_s, FALLBACK_SLEEP_S))
            return
        seconds = int(timeout_s)
        spec = _Timespec(seconds, int((timeout_s - seconds) * 1e9))
        _syscall(_SYS_FUTEX, ctypes.c_void_p(self._address), _FUTEX_WAIT, ctypes.c_uint32(seen),
                 ctypes.byref(spec), None, 0)

    def close(self) -> None:
        """Unmap the file; the counters then read 0 (a closed log's callers get
        LogClosedError from the log, not an error from the map)."""
        if not self._read_only:
            del self._counter
        self._missing_path = None  # a closed log looks for no file
        self._words.release()
        self._map.close()
        self._map = _zeros()
        self._words = memoryview(self._map).cast("I")
