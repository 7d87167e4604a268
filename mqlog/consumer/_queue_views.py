"""Read-only views of queue groups and dead letters: a queue group's depth per
partition (``describe_queue``), where a dead letter came from
(``dead_letter_origin``), whether a topic holds only dead letters
(``check_dead_letter_topic``) and when the next message of a queue becomes
ready without an append (``next_ready_ms``).

Owns no state. Every function here only reads: it takes no share-state lock,
writes no file (share states are opened read-only when the log is), so the
figures may be a moment old but reading them never disturbs the workers.
"""

from __future__ import annotations

import dataclasses
import os

from mqlog.consumer._group import queue_directory
from mqlog.consumer._queue_files import WINDOW_RECORDS
from mqlog.consumer._share_state import ShareState
from mqlog.errors import ConfigError, UnknownGroupError, UnknownPartitionError, UnknownTopicError
from mqlog.headers import DEAD_LETTER_PARTITION, DEAD_LETTER_TOPIC
from mqlog.lanes import PRIORITY_MAX, lane_topic
from mqlog.logstore import Engine, Record
from mqlog.names import validate_name


@dataclasses.dataclass(frozen=True)
class QueuePartitionDescription:
    """The depth of one partition of a queue group (``Log.describe_queue``).

    Offsets are of the partition; counts are numbers of records.
    """

    #: The topic (a lane topic ``<topic>.p<n>`` for a priority above 0).
    topic: str
    partition: int
    #: The group's position: its first unfinished offset (everything below is
    #: acked, dead-lettered, expired or archived; lock-free acks count at once).
    position: int
    #: The partition's end offset (the offset of the next record appended).
    end_offset: int
    #: Unfinished records from the position to the end: ready + in flight + delayed.
    lag: int
    #: Records a ``receive`` may take now, including records not yet read into
    #: the share window and records whose lock ran out.
    ready: int
    #: Records held by a worker whose lock has not run out.
    in_flight: int
    #: Records of the share window waiting for their time (a delivery delay or a
    #: nack's back-off).
    delayed: int
    #: Records dropped (or dead-lettered) because their time to live ran out,
    #: since the group began.
    expired: int
    #: Records moved to the dead-letter topic after ``max_deliveries``, since the
    #: group began.
    dead_lettered: int
    #: Records archived because their batch on disk is damaged, since the group
    #: began (never delivered, never dead-lettered).
    corrupt: int


def describe_queue(log: Engine, group: str) -> list[QueuePartitionDescription]:
    """Per partition of a queue group, in (topic, partition) order: its position
    (first unfinished offset), the log's end offset, and how many records are
    ready, in flight, delayed, expired, dead-lettered and archived as damaged
    (``corrupt``), read without taking any lock. Partitions of deleted topics
    are left out; UnknownGroupError for no such queue group."""
    root = queue_directory(log, group)
    if not os.path.isdir(root):
        raise UnknownGroupError(f"unknown queue group {group!r}")
    now = log.now_ms()
    rows = []
    for topic in sorted(os.listdir(root)):
        if topic == "members" or not os.path.isdir(os.path.join(root, topic)):
            continue
        for name in sorted(os.listdir(os.path.join(root, topic)), key=_numeric_first):
            if not name.isdigit():
                continue
            partition = int(name)
            try:
                end = log.end_offset(topic, partition)
            except (UnknownTopicError, UnknownPartitionError):
                continue  # deleted since
            state = ShareState(os.path.join(root, topic, name), WINDOW_RECORDS, 0,
                               read_only=log.read_only)
            try:
                counts = state.counts(now)
                counters = state.counters()
            finally:
                state.close()
            rows.append(QueuePartitionDescription(
                topic=topic, partition=partition, position=counts["position"],
                end_offset=end,
                lag=max(end - counts["position"], 0) - counts["finished"],
                ready=counts["ready"] + max(end - counts["window_end"], 0),
                in_flight=counts["in_flight"], delayed=counts["delayed"],
                expired=counters["expired"], dead_lettered=counters["dead_lettered"],
                corrupt=counters["corrupt"],
            ))
    return rows


def next_ready_ms(log: Engine, group: str, topic: str) -> int | None:
    """When the next message of queue group ``group`` on ``topic`` (and its
    priority lanes) becomes ready without an append: a delay or a nack's back-off
    ending, or a lock running out (ms since the epoch); None if none will, or the
    group has no state for them yet. For a waiting receive that must not poll."""
    root = queue_directory(log, group)
    now = log.now_ms()
    due: int | None = None
    for priority in range(PRIORITY_MAX + 1):
        directory = os.path.join(root, lane_topic(topic, priority))
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            if not name.isdigit():
                continue
            state = ShareState(os.path.join(directory, name), 0, 0, read_only=True)
            try:
                when = state.next_due(now)
            finally:
                state.close()
            if when is not None and (due is None or when < due):
                due = when
    return due


def dead_letter_origin(record: Record) -> tuple[str, int] | None:
    """(topic, partition) a dead letter came from, from its ``dlq.topic`` and
    ``dlq.partition`` headers; None for a record without them (not a dead letter)."""
    headers = record.headers or {}
    try:
        topic = validate_name("topic", bytes(headers[DEAD_LETTER_TOPIC]).decode(),
                              internal=True)
        partition = int(bytes(headers[DEAD_LETTER_PARTITION]))
    except (KeyError, ValueError, UnicodeDecodeError):  # InvalidTopicError is a ValueError
        return None
    return topic, partition


def check_dead_letter_topic(log: Engine, topic: str) -> bool:
    """Raise ConfigError if ``topic`` holds records that are not dead letters (the
    first record of each partition is looked at); UnknownTopicError if there is
    no such topic. Returns whether the topic holds any record. Reads only."""
    description = log.describe_topic(topic)
    found = False
    for partition in description.partitions:
        if partition.end_offset <= partition.start_offset:
            continue
        records = log.read(topic, partition.partition, partition.start_offset, max_records=1)
        if not records:
            continue
        first = records[0]
        if dead_letter_origin(first) is None:
            raise ConfigError(
                f"topic {topic!r} is not a dead-letter topic: its record {partition.partition}"
                f"@{first.offset} has no dlq.topic and dlq.partition headers")
        found = True
    return found


def _numeric_first(name: str) -> tuple[int, str]:
    """Sort key putting partition numbers in numeric order (2 before 10)."""
    return (int(name), "") if name.isdigit() else (-1, name)
