"""Building and removing a topic's directory: all or nothing, under the metadata lock.

Owner: the Engine, which holds the metadata lock (``_directory.metadata_lock``)
around :func:`build_topic` and :func:`doom_topic`. A topic appears complete or
not at all: it is built in a ``~creating-`` directory and renamed into place; a
deleted topic is first renamed to a ``~deleting-`` directory, so that no
process opens it again, and removed afterwards.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import traceback
import uuid

from mqlog.logstore._files import fsync_directory
from mqlog.logstore._partition import Clock, Partition, retire_partition
from mqlog.logstore._topic import write_metadata
from mqlog.logstore._views import PartitionDescription
from mqlog.logstore.config import TopicConfig
from mqlog.logstore.layout import CREATING_PREFIX, DELETING_PREFIX


@dataclasses.dataclass(frozen=True)
class TopicDescription:
    """A topic's name, config and per-partition offsets, sizes and segment counts
    (from ``describe_topic``; a snapshot, not kept up to date)."""

    name: str
    config: TopicConfig
    partitions: list[PartitionDescription]

    @property
    def record_count(self) -> int:
        """Records in all partitions (see ``PartitionDescription.record_count``)."""
        return sum(p.record_count for p in self.partitions)

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of all partitions."""
        return sum(p.size_bytes for p in self.partitions)


def build_topic(topics_dir: str, name: str, partitions: int, config: TopicConfig,
                clock: Clock) -> TopicDescription:
    """Create topic ``name`` under ``topics_dir`` (metadata lock held, the name
    free): built in a ``~creating-`` directory -- metadata, then each partition
    opened, initialized and closed in turn, so that a wide topic never holds
    more than one partition's files open -- and renamed into place; durable
    once this returns. A failure removes what was built."""
    final = os.path.join(topics_dir, name)
    staging = os.path.join(topics_dir, f"{CREATING_PREFIX}{uuid.uuid4().hex}")
    renamed = False
    try:
        os.makedirs(staging)
        write_metadata(staging, partitions, config)
        described = [initialize_partition(staging, name, number, config, clock)
                     for number in range(partitions)]
        fsync_directory(staging)
        os.rename(staging, final)
        renamed = True
        fsync_directory(topics_dir)
    except BaseException as error:
        if renamed:
            os.rename(final, staging)
        # Files a half-opened partition holds stay open while its frame is
        # referenced by the traceback: release them (out of descriptors, rmtree
        # needs some). What rmtree cannot remove, the next open does.
        traceback.clear_frames(error.__traceback__)
        gc.collect()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TopicDescription(name, config, described)


def initialize_partition(directory: str, topic: str, number: int, config: TopicConfig,
                         clock: Clock) -> PartitionDescription:
    """Create partition ``number`` of a topic being built in ``directory``, with its
    state and first segment (trimmed: it is preallocated when opened)."""
    path = os.path.join(directory, str(number))
    os.makedirs(path)
    partition = Partition(path, topic, number, lambda: config, clock)
    try:
        partition.trim_active()
        return partition.describe()
    finally:
        partition.close()


def doom_topic(topics_dir: str, name: str) -> str:
    """Rename topic ``name``'s directory (which exists; metadata lock held) to a
    ``~deleting-`` one, durably: from then on no process finds the topic.
    Returns the new path, for :func:`remove_doomed`."""
    doomed = os.path.join(topics_dir, f"{DELETING_PREFIX}{uuid.uuid4().hex}")
    os.rename(os.path.join(topics_dir, name), doomed)
    fsync_directory(topics_dir)
    return doomed


def remove_doomed(doomed: str) -> None:
    """Mark every partition of a doomed topic retired (processes that still hold
    it open notice), then remove its files."""
    for entry in os.listdir(doomed):
        if entry.isdigit():
            retire_partition(os.path.join(doomed, entry))
    shutil.rmtree(doomed, ignore_errors=True)
