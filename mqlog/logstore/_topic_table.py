"""The topics open in this process: one ``Topic`` handle per name, opened on first use.

Owner: the Engine. Each partition opened through the table has the end floor
applied (``Engine.set_end_floor``). The table maps topic names to their open handles under a
lock; a lookup of an open topic takes no lock. A topic another process
deleted is dropped (and its handle closed) as soon as a call notices, so that
the next lookup opens the topic anew: one created since under that name, or
UnknownTopicError.

Invariant: no lookup returns the handle of a topic deleted before the lookup
began. Every creation and deletion of a topic moves the log's topics counter
(``Notifier.count_topic_change``); a lookup that finds it moved since the
table last looked first drops the handles of deleted topics (one ``stat``
per topic with a partition open: deletions are rare), and
marks their names: the first read or append by name after that
(``take_deletion``) is told the topic was deleted, even if one was created
again under the name, as a read through the old handle would have been. A
handle with no partition open holds only its topic's metadata: it re-reads
it if it changed (one ``stat``), and is dropped if that fails.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from mqlog.errors import LogClosedError, MqlogError, UnknownTopicError
from mqlog.logstore._counters import EngineCounters
from mqlog.logstore._partition import Clock, Partition
from mqlog.logstore._topic import Topic
from mqlog.names import validate_name

#: The lowest end offset a partition must have when opened, if any (see
#: ``Engine.set_end_floor``).
EndFloor = Callable[[str, int], "int | None"]

_log = logging.getLogger("mqlog")


class TopicTable:
    """Open topics by name (see the module). ``check_open`` raises once the
    engine is closed; the other arguments are passed to each ``Topic``."""

    def __init__(self, topics_dir: str, clock: Clock, on_append: Callable[[], None],
                 on_roll: Callable[[Partition], None], check_open: Callable[[], None],
                 topic_changes: Callable[[], int], *,
                 read_only: bool, apply_retention: bool, counters: EngineCounters) -> None:
        """``topic_changes()``: the log's topics counter (see the module)."""
        self.topics_dir = topics_dir
        #: See ``Engine.set_end_floor``.
        self.end_floor: EndFloor | None = None
        self._clock = clock
        self._on_append = on_append
        self._on_roll = on_roll
        self._check_open = check_open
        self._read_only = read_only
        self._apply_retention = apply_retention
        self._counters = counters
        self._lock = threading.Lock()
        self._topics: dict[str, Topic] = {}
        self._topic_changes = topic_changes
        self._changes_seen = topic_changes()
        #: Names of topics whose handles were dropped as deleted, not told yet.
        self.deletions: set[str] = set()

    def topic(self, name: str) -> Topic:
        """The open handle of topic ``name``, opened now if need be;
        UnknownTopicError if there is no such topic."""
        if self._topic_changes() != self._changes_seen:
            self.drop_deleted()
        topic = self._topics.get(name)
        if topic is not None:
            return topic
        self._check_open()
        validate_name("topic", name, internal=True)
        with self._lock:
            topic = self._topics.get(name)
            if topic is None:
                try:
                    topic = Topic(os.path.join(self.topics_dir, name), name, self._clock,
                                  self._on_append, on_open=self._apply_end_floor,
                                  on_roll=self._on_roll, read_only=self._read_only,
                                  apply_retention=self._apply_retention,
                                  counters=self._counters)
                except FileNotFoundError:
                    raise UnknownTopicError(f"unknown topic {name!r}") from None
                self._topics[name] = topic
        return topic

    def _apply_end_floor(self, partition: Partition) -> None:
        """``on_open`` hook of every topic: lift a partition's end to its end floor."""
        end_floor = self.end_floor
        if end_floor is None or self._read_only or partition.topic.startswith("__"):
            return
        try:
            floor = end_floor(partition.topic, partition.number)
            end = partition.state().end_offset
            if floor is not None and floor > end:
                partition.ensure_end_at_least(
                    floor, f"the end floor (offset {floor}, which a group has consumed "
                    f"up to) is beyond the partition's end {end}")
        except (MqlogError, OSError):  # offsets unreadable, disk full: still open it
            _log.exception("could not lift %s/%d to its end floor", partition.topic,
                           partition.number)

    def partition(self, topic: str, number: int) -> Partition:
        """Partition ``number`` of ``topic``, opened on first use; a topic another
        process deleted is dropped (UnknownTopicError)."""
        while True:
            handle = self.topic(topic)
            try:
                return handle.partition(number)
            except UnknownTopicError:  # deleted by another process: forget our copy
                self._drop(topic, handle)
                raise
            except LogClosedError:  # dropped by another thread meanwhile (see
                self._check_open()  # drop_deleted), which took it out of the
                # table first: the next lookup finds what has the name now

    def forget(self, name: str, deleted: Partition) -> None:
        """Close and drop this process's handle of a topic that another process
        deleted (``deleted`` is one of its partitions); the caller tells of it."""
        self.deletions.discard(name)
        with self._lock:
            topic = self._topics.get(name)
            if topic is None or deleted not in topic.open_partitions():
                return  # already forgotten
            del self._topics[name]
        topic.close()

    def drop_deleted(self) -> None:
        """Drop (and close) the handles of topics deleted since they were opened,
        by any process (see the module)."""
        # Marked seen only once done: a lookup on another thread meanwhile sweeps
        # too rather than take a handle this sweep has not looked at yet.
        changes = self._topic_changes()
        for name, topic in list(self._topics.items()):
            partitions = topic.open_partitions()
            if partitions:
                first = partitions[0]
                # Closed: another thread's sweep dropped it meanwhile.
                if not first.closed and first.deleted():
                    self.deletions.add(name)
                    self._drop(name, topic)
                continue
            try:
                topic.reload_if_changed()  # created again: its metadata, not the old one's
            except (MqlogError, OSError):
                self._drop(name, topic)
        self._changes_seen = changes

    def take_deletion(self, name: str) -> bool:
        """True once after the handle of ``name`` was dropped as deleted (see
        the module); the caller raises UnknownTopicError."""
        try:
            self.deletions.remove(name)
        except KeyError:
            return False
        return True

    def _drop(self, name: str, handle: Topic) -> None:
        with self._lock:
            if self._topics.get(name) is handle:
                del self._topics[name]
        handle.close()

    def close_topic(self, name: str) -> None:
        """Close and drop the handle of ``name`` if open (this process deleted it)."""
        with self._lock:
            topic = self._topics.pop(name, None)
        if topic is not None:
            topic.close()

    def open_topics(self) -> list[Topic]:
        """The handles open now (a snapshot)."""
        return list(self._topics.values())

    def take_all(self) -> list[Topic]:
        """Remove every handle from the table and return them (the engine closes)."""
        with self._lock:
            topics, self._topics = list(self._topics.values()), {}
        return topics
