"""Small file-system helpers shared by the log store."""

from __future__ import annotations

import mmap
import os

# -- syncs ------------------------------------------------------------------------------
# Every fsync, fdatasync and msync of the storage and consumer layers goes through
# these four functions: they are the one seam where tests watch what is made
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
