"""One topic directory: its metadata file and its partitions open in this process.

Layout: ``<log>/topics/<name>/topic.json`` holds the partition count and the
config; ``<log>/topics/<name>/<n>/`` is partition ``n``. Metadata is written
atomically (temporary file, fsync, rename) under the log's metadata lock.
Other processes' ``alter_topic`` calls are noticed by checking the file's
modification time at most once per second.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable

from mqlog.errors import UnknownPartitionError
from mqlog.logstore._files import fsync_file
from mqlog.logstore._partition import Clock, Partition
from mqlog.logstore.config import TopicConfig

METADATA_FILE = "topic.json"
#: How often an open topic looks for config changes made by other processes.
CONFIG_RECHECK_S = 1.0


def write_metadata(directory: str, partitions: int, config: TopicConfig) -> None:
    """Atomically replace ``topic.json`` in ``directory``."""
    document = {"partitions": partitions, "config": dataclasses.asdict(config)}
    path = os.path.join(directory, METADATA_FILE)
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        fsync_file(handle.fileno())
    os.replace(temporary, path)


def read_metadata(directory: str) -> tuple[int, TopicConfig]:
    with open(os.path.join(directory, METADATA_FILE)) as handle:
        document = json.load(handle)
    return int(document["partitions"]), TopicConfig.from_stored(document["config"])


class Topic:
    """A topic open in this process; partitions are opened (and recovered) on first use."""

    def __init__(self, directory: str, name: str, clock: Clock,
                 on_append: Callable[[], None]) -> None:
        self.directory = directory
        self.name = name
        self._clock = clock
        self._on_append = on_append
        self._lock = threading.Lock()
        self._partitions: dict[int, Partition] = {}
        self._metadata_path = os.path.join(directory, METADATA_FILE)
        self._mtime = os.stat(self._metadata_path).st_mtime_ns
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
            mtime = os.stat(self._metadata_path).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self._mtime = mtime
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
            partition = self._partitions.get(number)
            if partition is None:
                path = os.path.join(self.directory, str(number))
                os.makedirs(path, exist_ok=True)
                partition = Partition(path, self.name, number, self.config, self._clock,
                                      self._on_append)
                self._partitions[number] = partition
        return partition

    def open_partitions(self) -> list[Partition]:
        return list(self._partitions.values())

    def close(self) -> None:
        with self._lock:
            for partition in self._partitions.values():
                partition.close()
            self._partitions.clear()
