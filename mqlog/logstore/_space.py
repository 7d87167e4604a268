"""Disk space and storage failures: reserving blocks before a map writes them,
and the errors a full or failing disk becomes.

Owner: nobody (stateless helpers used by every file the log store writes).

A store through a shared memory map into a page whose blocks the file system
has not allocated (a sparse file grown with ``ftruncate``) allocates them when
the page is written back or faulted; on a full disk the kernel can only answer
with ``SIGBUS``, which kills the process. So every file mqlog writes through a
map is reserved first with :func:`reserve` (``posix_fallocate``): a full disk
surfaces there, as :class:`~mqlog.errors.DiskFullError`, before anything was
written. Files written with ``pwrite``/``pwritev`` (segment data) need no
reservation: the call itself fails with ``ENOSPC``.

Limit: on copy-on-write file systems (btrfs, ZFS) an overwrite needs new
blocks even where space was reserved, so no reservation can make a mapped
write safe there.
"""

from __future__ import annotations

import errno
import os

from mqlog.errors import DiskFullError, StorageFailedError

#: Errors that mean "no room": a full file system or an exhausted quota.
NO_SPACE = frozenset((errno.ENOSPC, errno.EDQUOT))


def disk_full(path: str, bytes_needed: int, error: OSError | None = None,
              doing: str = "writing") -> DiskFullError:
    """The DiskFullError for ``bytes_needed`` bytes that did not fit in ``path``."""
    code = error.errno if error is not None and error.errno in NO_SPACE else errno.ENOSPC
    error_name = errno.errorcode.get(code, str(code))
    return DiskFullError(
        f"disk full ({error_name}): {doing} {bytes_needed} bytes to {path}; nothing was "
        "published, retry once space is freed",
        filename=path, bytes_needed=bytes_needed, code=code,
    )


def storage_failed(what: str, path: str, error: BaseException) -> StorageFailedError:
    """The StorageFailedError for ``what`` (e.g. "fdatasync") of ``path`` failing."""
    return StorageFailedError(
        f"{what} of {path} failed ({error}): writes to it are refused until the log "
        "is closed and opened again", original=error,
    )


def reserve(fd: int, length: int, path: str) -> None:
    """Allocate blocks for bytes ``[0, length)`` of the file (growing it to
    ``length`` if shorter), so that writing them through a map cannot fault.

    Raises DiskFullError when the file system has no room; the file's length
    is then unchanged or grown by whatever the file system could reserve, and
    its contents are unchanged.
    """
    if length <= 0:
        return
    try:
        os.posix_fallocate(fd, 0, length)
    except OSError as error:
        if error.errno in NO_SPACE:
            raise disk_full(path, length, error, doing="reserving") from error
        raise
