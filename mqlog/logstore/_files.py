"""Small file-system helpers shared by the log store."""

from __future__ import annotations

import os


def fsync_directory(path: str) -> None:
    """Make a directory's entries (created, renamed, deleted files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
