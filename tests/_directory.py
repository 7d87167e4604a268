"""What a log directory holds, to assert that a rejected call changed nothing."""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

#: Files are compared in blocks of this many bytes; all-zero blocks (holes of the
#: sparse, preallocated segment and state files) are skipped.
BLOCK_BYTES = 64 * 1024
_ZEROS = bytes(BLOCK_BYTES)


def snapshot(directory: Path) -> dict[str, str | None]:
    """Every entry under ``directory`` by relative path: a digest of a file's size
    and bytes, or None for a directory (so that an empty directory created by a
    call counts as a change)."""
    return {
        str(path.relative_to(directory)): file_digest(path) if path.is_file() else None
        for path in sorted(directory.rglob("*"))
    }


def digest(directory: Path) -> str:
    """One hash of :func:`snapshot`: every entry's name and, for files, bytes."""
    return xxhash.xxh3_128_hexdigest(repr(sorted(snapshot(directory).items())).encode())


def file_digest(path: Path) -> str:
    """A hash of a file's size and bytes that reads only its data regions (a hole
    reads as zeros, so a hole and written zeros hash alike)."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        hasher.update(b"%d:" % size)
        position = 0
        while position < size:
            try:
                position = os.lseek(handle.fileno(), position, os.SEEK_DATA)
            except OSError:  # no data after position (ENXIO)
                break
            end = os.lseek(handle.fileno(), position, os.SEEK_HOLE)
            position -= position % BLOCK_BYTES
            handle.seek(position)
            while position < end:
                block = handle.read(BLOCK_BYTES)
                if not block:
                    break
                if block != _ZEROS[: len(block)]:
                    hasher.update(b"%d:" % position + block)
                position += len(block)
    return hasher.hexdigest()


def restore_files(directory: Path, files: dict[str, bytes]) -> None:
    """Make ``directory`` hold exactly ``files`` (name -> bytes) again. Files are
    rewritten in place: replacing or truncating them to zero first makes ext4
    flush them on close, which would dominate a test that restores often."""
    for path in directory.iterdir():
        if path.name not in files:
            path.unlink()
    for name, data in files.items():
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
