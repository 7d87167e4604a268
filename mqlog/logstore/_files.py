"""Small file-system helpers shared by the log store."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import secrets
import stat
from collections.abc import Iterable, Sequence

from mqlog.logstore.layout import TEMPORARY_NAME, TEMPORARY_SUFFIX

# -- syncs ------------------------------------------------------------------------------
# Every fsync, fdatasync, msync and syncfs of the storage and consumer layers goes
# through these five functions: they are the one seam where tests watch what is made
# durable (a simulated power loss keeps only that) and inject ENOSPC or EIO.
# Import them by name or call them through this module; never call os.fsync,
# os.fdatasync or mmap.flush directly.


def fsync_file(fd: int) -> None:
    """Make a file's data and metadata durable (``fsync``)."""
    os.fsync(fd)


def fdatasync_file(fd: int) -> None:
    """Make a file's data, and the metadata needed to read it back, durable."""
    os.fdatasync(fd)


def sync_map(mapping: mmap.mmap, fd: int) -> None:
    """Make the pages written through ``mapping``, a shared map of the file open
    as ``fd``, durable (``msync``); ``fd`` tells observers of the seam which file."""
    mapping.flush()


def fsync_directory(path: str) -> None:
    """Make a directory's entries (created, renamed, deleted files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync_file(fd)
    finally:
        os.close(fd)


def _kernel_reports_syncfs_errors() -> bool:
    """True on Linux 5.8 and later: before it, ``syncfs`` returned 0 even when a
    writeback failed, so a success proved nothing."""
    if platform.system() != "Linux":
        return False
    try:
        major, minor = (int(part) for part in platform.release().split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 8)


#: Set to 1 to never use syncfs (flush each partition's files on its own): for a
#: log sharing its file system with programs that leave much unsynced data,
#: which every syncfs would write back too.
NO_SYNCFS_VARIABLE = "MQLOG_NO_SYNCFS"

_libc = (ctypes.CDLL(None, use_errno=True)
         if _kernel_reports_syncfs_errors() and os.environ.get(NO_SYNCFS_VARIABLE) != "1"
         else None)

#: Whether :func:`sync_file_system` may be used here: Linux 5.8 or later, and
#: not turned off with ``MQLOG_NO_SYNCFS=1``.
CAN_SYNC_FILE_SYSTEM = _libc is not None and hasattr(_libc, "syncfs")


def sync_file_system(fds: Sequence[int]) -> None:
    """Make every file and directory open as one of ``fds`` durable at once:
    one ``syncfs`` per file system they are on (their data, metadata and
    directory entries, with every other dirty file of that file system).

    On ext4 here one syncfs over eight partitions took about as long as their
    fdatasyncs one after another (bench/flush_partitions.py), and it also
    writes back every other dirty file of the file system. Linux reports
    through it a writeback error of *any* file of the file system (one per
    open file description, as for fsync), so a failure does not say which
    file lost pages: the caller
    falls back to syncing each file (``fdatasync_file``), which reports the
    error only on the files it hit. Only where ``CAN_SYNC_FILE_SYSTEM``."""
    if _libc is None:
        raise OSError(errno.ENOSYS, "syncfs is not usable on this system")
    done: set[int] = set()
    for fd in fds:
        device = os.fstat(fd).st_dev
        if device in done:
            continue
        done.add(device)
        if _libc.syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))


# -- atomic replacement of small files -----------------------------------------------------
#
# Every metadata file of a log (mqlog.json, topic.json, cleaner.json, a group's
# assignment.json, a queue's nack reasons) is replaced with atomic_write, never
# written in place: a reader or a crash sees the old content or the new, never a
# mix. A writer's temporary file is named after the target, its process id and a
# random token, in the target's directory (rename is atomic only within one file
# system), so concurrent writers never share one (``layout.TEMPORARY_NAME``).


def temporary_name(path: str) -> str:
    """A fresh temporary path beside ``path``, unique across threads and processes."""
    return f"{path}.{os.getpid()}-{secrets.token_hex(8)}{TEMPORARY_SUFFIX}"


def atomic_write(path: str, data: bytes, durable: bool = True) -> None:
    """Replace the file at ``path`` by ``data`` atomically.

    Writes a temporary file beside it (:func:`temporary_name`), renames it over
    ``path``. With ``durable`` (the default) the temporary file is fsynced before
    the rename and the directory after it, so once this returns the new content
    survives a power loss; without, a crash of the process still leaves the old
    content or the new, and only a power loss may bring the old one back. On any
    error the temporary file is removed and ``path`` is unchanged.
    """
    temporary = temporary_name(path)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                fsync_file(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_directory(os.path.dirname(path) or ".")


def process_is_alive(pid: int) -> bool:
    """True if a process with this id exists on this host (ours included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def map_read_only(path: str) -> bytes | mmap.mmap:
    """The whole file at ``path``, mapped read-only (``b""`` when it is empty: an
    empty file cannot be mapped). Raises IsADirectoryError for a directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a segment file", path)
        return mmap.mmap(fd, info.st_size, prot=mmap.PROT_READ) if info.st_size else b""
    finally:
        os.close(fd)


def remove_stale_temporaries(directory: str, names: Iterable[str] | None = None) -> list[str]:
    """Remove the temporary files :func:`atomic_write` left in ``directory`` when its
    process died; return the names removed. ``names``: the directory's entries, if
    the caller listed it already.

    Safe with any number of live processes: a temporary file is removed only when
    the process id in its name is not alive on this host, so no live writer can be
    using it (a writer only ever writes the temporary files it named itself). A
    process id reused since keeps its file until that process ends too: harmless,
    a temporary file is never read.
    """
    if names is None:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
    removed = []
    for name in names:
        match = TEMPORARY_NAME.match(name)
        if match is None or process_is_alive(int(match["pid"])):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:  # another process removed it first
            continue
        removed.append(name)
    return removed
