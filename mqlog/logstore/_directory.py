"""The log directory itself: its layout file, its lock files, and what dead processes left.

Owner: the Engine that opened the directory. Layout (names from ``layout``)::

    <path>/mqlog.json              layout version
    <path>/.lock                   every open Engine holds a shared flock on it
    <path>/.meta.lock              exclusive flock around topic create/alter/delete
    <path>/topics/<name>/          one topic (see _topic), partitions inside
    <path>/topics/~creating-<hex>/ a topic being built by create_topic (metadata lock held)
    <path>/topics/~deleting-<hex>/ a topic being deleted

Any number of processes may open the same directory. An engine that can take
``.lock`` exclusively when it closes is the last one open.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from mqlog.errors import ConfigError, CorruptMetadataError, MqlogError
from mqlog.logstore._files import atomic_write, remove_stale_temporaries
from mqlog.logstore.layout import (
    CREATING_PREFIX,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    META_LOCK_FILE,
    OPEN_LOCK_FILE,
    TOPICS_DIR,
)


def prepare(path: str, *, create: bool, read_only: bool) -> None:
    """Check that ``path`` is a log directory of this layout version, creating it
    (and its layout file) if missing unless ``create`` is False or ``read_only``;
    a writable open then removes what dead processes left (:func:`remove_leftovers`)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{path} is a file, not a log directory")
    if not os.path.isdir(path):
        if not create or read_only:
            raise MqlogError(f"log directory {path} does not exist")
        os.makedirs(path, exist_ok=True)
    _check_layout(path, read_only)
    if not read_only:
        os.makedirs(os.path.join(path, TOPICS_DIR), exist_ok=True)
        remove_leftovers(path)


def _check_layout(path: str, read_only: bool) -> None:
    layout_file = os.path.join(path, LAYOUT_FILE)
    try:
        with builtins.open(layout_file, "rb") as handle:
            version = json.loads(handle.read()).get("layout_version")
    except (ValueError, AttributeError) as error:
        raise CorruptMetadataError(f"{layout_file} is damaged ({type(error).__name__}: "
                                   f"{error})", file=layout_file) from None
    except FileNotFoundError:
        if read_only:
            raise MqlogError(f"{path} is not a log directory (it has no {LAYOUT_FILE}); a "
                             f"read-only open creates nothing") from None
        atomic_write(layout_file,
                     (json.dumps({"layout_version": LAYOUT_VERSION}) + "\n").encode())
        return
    if version != LAYOUT_VERSION:
        raise MqlogError(f"{path} has layout version {version}; this mqlog reads "
                         f"{LAYOUT_VERSION}")


def remove_leftovers(path: str) -> None:
    """Remove what dead processes left: the temporary files of ``atomic_write``
    everywhere but under ``topics/`` (topics and partitions do the same when
    opened), and the ``~creating-`` directories of a create_topic that died
    (removed under the metadata lock, which their creator held while alive)."""
    topics = os.path.join(path, TOPICS_DIR)
    for directory, subdirectories, names in os.walk(path):
        if directory == path and TOPICS_DIR in subdirectories:
            subdirectories.remove(TOPICS_DIR)
        remove_stale_temporaries(directory, names)
    if any(name.startswith(CREATING_PREFIX) for name in os.listdir(topics)):
        with metadata_lock(path):  # held by every live creator: these are dead
            for name in os.listdir(topics):
                if name.startswith(CREATING_PREFIX):
                    shutil.rmtree(os.path.join(topics, name), ignore_errors=True)


@contextmanager
def metadata_lock(path: str) -> Iterator[None]:
    """Hold ``.meta.lock`` exclusively: topic create, alter and delete run under it."""
    fd = os.open(os.path.join(path, META_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def hold_open_lock(path: str, read_only: bool) -> int:
    """Take ``.lock`` shared, as every open engine does; returns its descriptor.

    A read-only engine opens it for reading (a lock is no write), so that a
    closing writer does not take itself for the last one; -1 where it cannot be
    opened (never created, or not readable by this user): reading works
    without it."""
    lock_file = os.path.join(path, OPEN_LOCK_FILE)
    if read_only:
        try:
            fd = os.open(lock_file, os.O_RDONLY)
        except (FileNotFoundError, PermissionError):
            return -1
    else:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def is_last_open(fd: int) -> bool:
    """True when no other engine holds ``.lock`` (``fd`` is this one's, from
    :func:`hold_open_lock`): this one is the last open on the directory."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
