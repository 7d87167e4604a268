"""Committed offsets: records in the internal topic ``__consumer_offsets``.

Owner: one OffsetStore per open log (``offset_store(engine)``), shared by its
consumers, groups and admin calls. A commit appends one
record per partition to the offsets partition of its group (``xxh3_64(group)
% OFFSETS_PARTITIONS``), all in one batch, so a commit of several partitions
is atomic. The key is ``msgpack([group, topic, partition])``; the value is
``msgpack([offset, metadata, commit_time_ms, member_id])``, or empty for a
tombstone (the group's offset was deleted). The latest record per key wins.

Each process keeps the latest value per key in memory, reading the offsets
partition forward from where it last stopped; a lookup first catches up with
what other processes committed since.

A commit is flushed to disk before it returns unless every topic it commits
offsets of has ``durability="none"``: the records of such a topic do not
survive a power loss either, and an unflushed commit, like them, survives the
crash of any process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import msgpack
import xxhash

from mqlog.consumer._config import TopicPartition
from mqlog.errors import MqlogError, TopicExistsError, UnknownTopicError
from mqlog.logstore import Engine, Record

OFFSETS_TOPIC = "__consumer_offsets"
#: Partitions of the offsets topic: groups spread over them, so commits of
#: different groups rarely contend for one partition lock.
OFFSETS_PARTITIONS = 8
#: Small segments, so compaction (which only rewrites closed segments) keeps the
#: offsets topic near one record per (group, topic, partition).
OFFSETS_SEGMENT_BYTES = 4 * 1024 * 1024


class CommittedOffset(NamedTuple):
    offset: int
    metadata: str
    commit_time_ms: int
    member_id: str


def offsets_partition(group: str) -> int:
    return xxhash.xxh3_64_intdigest(group.encode()) % OFFSETS_PARTITIONS


def offset_store(engine: Engine) -> OffsetStore:
    """The committed-offsets store of ``engine``'s log: one per open engine,
    created on first use (creating the offsets topic unless read-only)."""
    return engine.attachment(OffsetStore, lambda: OffsetStore(engine))


def committed_end_floor(engine: Engine) -> Callable[[str, int], int | None]:
    """The end floor (``Engine.set_end_floor``) that committed offsets set: a
    partition must end at or beyond the highest offset any group committed for
    it. A log where no offset was ever committed costs one ``stat`` per opened
    partition, and never creates the offsets topic."""
    def floor(topic: str, partition: int) -> int | None:
        if not engine.has_topic(OFFSETS_TOPIC):
            return None
        return offset_store(engine).highest_committed(topic, partition)

    return floor


class OffsetStore:
    """Read and write committed offsets of every group in one log."""

    def __init__(self, log: Engine) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str, int], CommittedOffset] = {}
        self._read_upto = [0] * OFFSETS_PARTITIONS
        #: highest_committed's table, and the read positions it was built at.
        self._highest: dict[tuple[str, int], int] = {}
        self._highest_read_upto: list[int] | None = None
        if log.read_only:  # reads only: a missing topic holds no offsets
            return
        try:
            log.create_topic(OFFSETS_TOPIC, OFFSETS_PARTITIONS, internal=True,
                             durability="always", cleanup_policy="compact",
                             segment_bytes=OFFSETS_SEGMENT_BYTES, retention_ms=None,
                             retention_bytes=None)
        except TopicExistsError:
            pass

    def commit(self, group: str, offsets: Mapping[TopicPartition, int], member_id: str = "",
               metadata: str = "") -> None:
        """Record ``offsets`` for ``group`` (one atomic batch)."""
        now = self._log.now_ms()
        records = [
            Record(msgpack.packb([offset, metadata, now, member_id]),
                   key=msgpack.packb([group, tp.topic, tp.partition]))
            for tp, offset in offsets.items()
        ]
        if records:
            log = self._log
            log.append(OFFSETS_TOPIC, offsets_partition(group), records,
                       flush=self._needs_flush(offsets))

    def _needs_flush(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """False when every committed topic has durability "none" (see the module)."""
        for topic in {tp.topic for tp in offsets}:
            try:
                if self._log.topic_config(topic).durability != "none":
                    return True
            except MqlogError:  # deleted meanwhile: keep the safe default
                return True
        return False

    def delete(self, group: str, partitions: Iterable[TopicPartition]) -> None:
        """Write tombstones: the group has no committed offset for these any more."""
        records = [Record(b"", key=msgpack.packb([group, tp.topic, tp.partition]))
                   for tp in partitions]
        if records:
            self._log.append(OFFSETS_TOPIC, offsets_partition(group), records)

    def committed(self, group: str, tp: TopicPartition) -> CommittedOffset | None:
        """The latest committed offset of ``group`` for ``tp``, or None."""
        self._catch_up(offsets_partition(group))
        return self._latest.get((group, tp.topic, tp.partition))

    def group_offsets(self, group: str) -> dict[TopicPartition, CommittedOffset]:
        """Every committed offset of ``group``."""
        self._catch_up(offsets_partition(group))
        return {TopicPartition(topic, partition): value
                for (name, topic, partition), value in self._latest.items() if name == group}

    def highest_committed(self, topic: str, partition: int) -> int | None:
        """The highest offset any group committed for ``topic``/``partition``, or None
        (a table of all of them is rebuilt only when commits were read since)."""
        for number in range(OFFSETS_PARTITIONS):
            self._catch_up(number)
        with self._lock:
            if self._highest_read_upto != self._read_upto:
                highest: dict[tuple[str, int], int] = {}
                for (_group, name, number), value in self._latest.items():
                    highest[name, number] = max(highest.get((name, number), -1), value.offset)
                self._highest, self._highest_read_upto = highest, list(self._read_upto)
            return self._highest.get((topic, partition))

    def groups(self) -> set[str]:
        """Groups with at least one committed offset."""
        for partition in range(OFFSETS_PARTITIONS):
            self._catch_up(partition)
        return {name for name, _topic, _partition in self._latest}

    def _catch_up(self, partition: int) -> None:
        with self._lock:
            log = self._log
            try:
                start = max(self._read_upto[partition],
                            log.start_offset(OFFSETS_TOPIC, partition))
            except UnknownTopicError:
                if not log.read_only:
                    raise
                return  # read-only, and no offset was ever committed
            end = log.end_offset(OFFSETS_TOPIC, partition)
            # A damaged commit record is skipped (with a warning): its groups fall back
            # to an earlier commit of theirs, rather than every member failing for good.
            for record in log.iter(OFFSETS_TOPIC, partition, start, end, on_corrupt="skip"):
                group, topic, number = msgpack.unpackb(record.key)
                key = (group, topic, number)
                if record.value:
                    offset, metadata, when, member = msgpack.unpackb(record.value)
                    self._latest[key] = CommittedOffset(offset, metadata, when, member)
                else:
                    self._latest.pop(key, None)
            self._read_upto[partition] = end
