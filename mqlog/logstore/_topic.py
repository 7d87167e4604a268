"""One topic directory: its metadata file and its partitions open in this process.

Layout: ``<log>/topics/<name>/topic.json`` holds the partition count and the
config; ``<log>/topics/<name>/<n>/`` is partition ``n``. Metadata is written
with ``_files.atomic_write`` under the log's metadata lock. Other processes'
``alter_topic`` calls are noticed by checking the file's modification time at
most once per second.

Opening the topic removes the temporary files dead writers of ``topic.json``
left; opening a partition does the same in its directory and settles what an
interrupted compaction left there (``_compaction.settle_leftovers``), before the
partition's segments are loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable

from mqlog.errors import (
    CorruptMetadataError,
    LogClosedError,
    UnknownPartitionError,
    UnknownTopicError,
)
from mqlog.logstore._compaction import settle_leftovers
from mqlog.logstore._counters import EngineCounters
from mqlog.logstore._files import atomic_write, remove_stale_temporaries
from mqlog.logstore._partition import Clock, Partition
from mqlog.logstore.config import TopicConfig
from mqlog.logstore.layout import TOPIC_METADATA_FILE

#: How often an open topic looks for config changes made by other processes.
CONFIG_RECHECK_S = 1.0


def write_metadata(directory: str, partitions: int, config: TopicConfig) -> None:
    """Atomically and durably replace ``topic.json`` in ``directory``."""
    document = {"partitions": partitions, "config": dataclasses.asdict(config)}
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    atomic_write(os.path.join(directory, TOPIC_METADATA_FILE), text.encode())


def read_metadata(directory: str) -> tuple[int, TopicConfig]:
    """(partition count, config) from a topic's metadata file; CorruptMetadataError
    when it is not what ``write_metadata`` writes."""
    path = os.path.join(directory, TOPIC_METADATA_FILE)
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        document = json.loads(data)
        return int(document["partitions"]), TopicConfig.from_stored(document["config"])
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptMetadataError(f"{path} is damaged ({type(error).__name__}: {error}); "
                                   f"the topic cannot be opened", file=path) from None


class Topic:
    """A topic open in this process; partitions are opened (and recovered) on first use."""

    def __init__(self, directory: str, name: str, clock: Clock,
                 on_append: Callable[[], None],
                 on_open: Callable[[Partition], None] = lambda partition: None,
                 on_roll: Callable[[Partition], None] = lambda partition: None, *,
                 read_only: bool = False, apply_retention: bool = True,
                 counters: EngineCounters | None = None) -> None:
        """``on_append`` runs after every append to one of its partitions,
        ``on_open(partition)`` once a partition is opened (and recovered) in this
        process, ``on_roll(partition)`` after an append that rolled a segment of a
        ``compact`` topic (the log's background compactor takes it from there);
        ``read_only`` / ``apply_retention`` / ``counters``: how partitions are
        opened (see :class:`Partition`)."""
        self.directory = directory
        self.name = name
        self.read_only = read_only
        self.apply_retention = apply_retention
        self._clock = clock
        self._on_append = on_append
        #: Called with each partition once opened (and recovered) in this process.
        self._on_open = on_open
        self._on_roll = on_roll
        self._counters = counters
        #: Reentrant: opening a partition runs the table's open hook, whose lookups
        #: may drop (close) this very handle on the same thread.
        self._lock = threading.RLock()
        self._closed = False
        self._partitions: dict[int, Partition] = {}
        self._metadata_path = os.path.join(directory, TOPIC_METADATA_FILE)
        if not read_only:
            remove_stale_temporaries(directory)
        self._version = _file_version(self._metadata_path)
        self.partition_count, self._config = read_metadata(directory)
        self._checked_at = time.monotonic()

    def config(self) -> TopicConfig:
        """The current config, re-read if another process changed it."""
        now = time.monotonic()
        if now - self._checked_at >= CONFIG_RECHECK_S:
            self._checked_at = now
            self.reload_if_changed()
        return self._config

    def reload_if_changed(self) -> None:
        try:
            version = _file_version(self._metadata_path)
        except FileNotFoundError:
            return
        if version != self._version:
            self._version = version
            self.partition_count, self._config = read_metadata(self.directory)

    def partition(self, number: int) -> Partition:
        partition = self._partitions.get(number)
        if partition is not None and type(number) is int:  # True == 1: check the type
            return partition
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"partition must be an int, not {type(number).__name__}")
        if partition is not None:
            return partition
        if not 0 <= number < self.partition_count:
            self.reload_if_changed()
            if not 0 <= number < self.partition_count:
                raise UnknownPartitionError(
                    f"topic {self.name!r} has no partition {number}: "
                    f"it has partitions 0..{self.partition_count - 1}"
                )
        with self._lock:
            if self._closed:  # dropped by the table meanwhile: nothing opens here now
                raise LogClosedError(f"this handle of topic {self.name!r} is closed")
            partition = self._partitions.get(number)
            if partition is None:
                partition = self._open_partition(number)
                if self._closed:  # dropped while opening (the open hook looks topics up)
                    partition.close()
                    raise LogClosedError(f"this handle of topic {self.name!r} is closed")
                self._partitions[number] = partition
        return partition

    def _open_partition(self, number: int) -> Partition:
        """Open partition ``number``; UnknownTopicError if another process deleted
        the topic (its directory is never created again from here)."""
        path = os.path.join(self.directory, str(number))
        try:
            if not self.read_only:
                try:
                    os.mkdir(path)  # not makedirs: a deleted topic must stay deleted
                except FileExistsError:
                    pass
                names = os.listdir(path)
                remove_stale_temporaries(path, names)
                settle_leftovers(path, names)
            partition = Partition(path, self.name, number, self.config, self._clock,
                                  self._on_append, read_only=self.read_only,
                                  apply_retention=self.apply_retention,
                                  counters=self._counters)
        except FileNotFoundError:
            raise UnknownTopicError(f"topic {self.name!r} was deleted") from None
        partition.on_roll = self._on_roll
        self._on_open(partition)
        return partition

    def open_partitions(self) -> list[Partition]:
        return list(self._partitions.values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for partition in self._partitions.values():
                partition.close()
            self._partitions.clear()


def _file_version(path: str) -> tuple[int, int]:
    """(inode, mtime) of ``path``: metadata is replaced by a rename (a new inode),
    and two writes within one tick of the file system's clock share an mtime."""
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns
