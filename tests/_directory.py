"""What a log directory holds, to assert that a rejected call changed nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry under ``directory`` by relative path: a file's bytes, or None for
    a directory (so that an empty directory created by a call counts as a change)."""
    return {
        str(path.relative_to(directory)): path.read_bytes() if path.is_file() else None
        for path in sorted(directory.rglob("*"))
    }


def digest(directory: Path) -> str:
    """A hash of :func:`snapshot`: every entry's name and, for files, bytes."""
    hasher = hashlib.sha256()
    for name, content in snapshot(directory).items():
        hasher.update(name.encode() + b"\0")
        hasher.update(b"D" if content is None else b"F%d:" % len(content) + content)
    return hasher.hexdigest()
