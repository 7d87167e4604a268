"""Mirror: the copy itself (see the package docstring for the design)."""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator

from mqlog.consumer import TopicPartition
from mqlog.errors import (
    GroupNotEmptyError,
    OffsetOutOfRangeError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsupportedError,
)
from mqlog.log import Log
from mqlog.logstore import Record
from mqlog.mirror._checksum import Checksum, checksum
from mqlog.mirror._offset_map import OffsetMap
from mqlog.mirror._progress import Partition, ProgressStore
from mqlog.mirror._topics import MirrorError, prepare_topic, selected_topics
from mqlog.producer import Delivery, Producer

#: Most records read from one source partition per round (a round reads every
#: partition, then waits for the destination to acknowledge what it sent).
BATCH_RECORDS = 5000
#: A checkpoint is written once this many records were copied since the last...
CHECKPOINT_RECORDS = 50_000
#: ... or this many seconds passed, or the copy caught up or stops.
CHECKPOINT_INTERVAL_S = 1.0
#: Longest a following mirror sleeps, when it has caught up, before it looks
#: for new records (and at a stop request) again.
IDLE_WAIT_S = 0.5
#: How often a following mirror with groups translates committed offsets.
GROUP_SYNC_INTERVAL_S = 2.0
#: How often a following mirror looks for new source topics and partitions.
DISCOVER_INTERVAL_S = 5.0


@dataclasses.dataclass(frozen=True)
class PartitionCheck:
    """The verification of one mirrored partition: the source's records from where
    the mirror started (or the source's start, if later) up to where it stands,
    and the destination's records they were copied to."""

    topic: str
    partition: int
    source: Checksum
    destination: Checksum
    #: Why the destination's records could not be read (retention deleted them...).
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.source == self.destination


@dataclasses.dataclass(frozen=True)
class GroupSync:
    """What a group offset translation did for one source group: the destination
    offsets committed (``TopicPartition -> offset``), or why none were."""

    group: str
    committed: dict[TopicPartition, int]
    skipped: str | None = None


class Mirror:
    """Copies topics from ``source`` to ``destination`` (two open logs: log
    directories or Kafka clusters), resumably (see the package docstring).

    ``topics``: a regular expression the topic names must match in full (None:
    every topic but internal ones). ``source_name`` is recorded in the
    checkpoints. ``on_copied(topic, records)`` is called as records are
    acknowledged by the destination. Call :meth:`start` first; then
    :meth:`copy`, :meth:`sync_groups` and :meth:`verify` in any order.
    """

    def __init__(self, source: Log, destination: Log, *, topics: str | None = None,
                 source_name: str = "",
                 on_copied: Callable[[str, int], None] | None = None) -> None:
        self.source = source
        self.destination = destination
        self._pattern = topics
        self._store = ProgressStore(destination, source_name)
        self._on_copied = on_copied
        #: The partitions mirrored and where each stands.
        self.maps: dict[Partition, OffsetMap] = {}
        #: Records found in the destination past the last checkpoint on start (a
        #: mirror killed between its copy and its checkpoint), per partition.
        self.found_again: dict[Partition, int] = {}
        #: Source offsets passed over because retention (or a deletion) removed their
        #: records before they were copied, per partition.
        self.skipped: dict[Partition, int] = {}
        self._flushes = True

    # -- start -------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Create the destination topics, load the progress and confirm the records
        written past each partition's last checkpoint; returns the topics mirrored.
        MirrorError if the source and the destination are the same log."""
        if os.path.realpath(self.source.path) == os.path.realpath(self.destination.path):
            raise MirrorError(f"the source and the destination are the same log "
                              f"({self.source.path}): a mirror needs two")
        recorded = self._store.load()
        self._add_topics(selected_topics(self.source, self._pattern), recorded)
        return self.topics

    @property
    def topics(self) -> list[str]:
        """The topics mirrored, sorted."""
        return sorted({topic for topic, _number in self.maps})

    def discover(self) -> list[str]:
        """Start mirroring what the source gained since :meth:`start`: topics
        created that the pattern selects, and partitions added to the topics
        mirrored (the destination topic grows to match). Returns the names of the
        topics taken up or grown."""
        mirrored = collections.Counter(topic for topic, _number in self.maps)
        changed = [name for name in selected_topics(self.source, self._pattern)
                   if name not in mirrored or self._source_has(name, mirrored[name])]
        if changed:  # mirrored before, maybe, by an earlier run: its progress counts
            self._add_topics(changed, self._store.load())
        return changed

    def _source_has(self, topic: str, partition: int) -> bool:
        """Whether the source topic has ``partition`` now: one offset lookup, not
        a description of the whole topic (which costs a request per partition on
        a cluster)."""
        try:
            self.source.end_offset(topic, partition)
        except (UnknownPartitionError, UnknownTopicError):
            return False
        return True

    def _add_topics(self, topics: list[str], recorded: dict[Partition, OffsetMap]) -> None:
        """Mirror the partitions of ``topics`` not mirrored yet. A destination topic
        this mirror wrote to before (in this run or, by its checkpoints, an
        earlier one) grows to the source's partition count; any other with fewer
        partitions is refused (MirrorError)."""
        existing = set(self.destination.topics())
        ours = {topic for topic, _number in (*self.maps, *recorded)}
        fresh: list[tuple[Partition, OffsetMap]] = []
        for topic in topics:
            for number in range(prepare_topic(self.source, self.destination, topic,
                                              existing, grow=topic in ours)):
                key = (topic, number)
                if key in self.maps:
                    continue
                offset_map = recorded.get(key)
                if offset_map is None:
                    offset_map = OffsetMap(self.source.start_offset(topic, number),
                                           self.destination.end_offset(topic, number))
                    fresh.append((key, offset_map))
                else:
                    found = self._confirm_uncheckpointed(key, offset_map)
                    if found:
                        self.found_again[key] = found
                        fresh.append((key, offset_map))
                self.maps[key] = offset_map
        self._store.checkpoint(fresh)

    def _confirm_uncheckpointed(self, key: Partition, offset_map: OffsetMap) -> int:
        """Map the destination's records after the partition's last checkpoint to the
        source records they must be copies of (the mirror was stopped between
        copying them and recording it); MirrorError if any is not such a copy.
        Returns how many were found."""
        topic, number = key
        self._skip(key, offset_map, self.source.start_offset(topic, number))
        try:
            written = self.destination.iter(topic, number, offset_map.destination_next)
            originals = self.source.iter(topic, number, offset_map.source_next)
            found = 0
            for copy in written:
                original = next(originals, None)
                if original is None or not same_record(original, copy):
                    raise MirrorError(
                        f"{topic}/{number}: destination offset {copy.offset} is not a copy of "
                        f"the next source record to mirror (source offset "
                        f"{offset_map.source_next}): another producer wrote to the "
                        f"destination topic while it was being mirrored")
                assert original.offset is not None and copy.offset is not None
                offset_map.add(original.offset, copy.offset)
                found += 1
        except OffsetOutOfRangeError as error:
            raise MirrorError(
                f"{topic}/{number}: the destination no longer has the records the mirror's "
                f"progress says it wrote (up to offset {offset_map.destination_next}): "
                f"{error}") from None
        return found

    def remaining(self) -> dict[str, int]:
        """Records each topic's source has past where its mirror stands (from the
        source's end offsets now)."""
        out: dict[str, int] = {}
        for (topic, number), offset_map in self.maps.items():
            end = self.source.end_offset(topic, number)
            out[topic] = out.get(topic, 0) + max(end - offset_map.source_next, 0)
        return out

    # -- copy --------------------------------------------------------------------------

    def copy(self, stop: threading.Event | None = None, *, follow: bool = False,
             groups: bool = False) -> int:
        """Copy records until the end offsets the source had when called (with
        ``follow``: until ``stop`` is set, copying new records as they come, and
        translating group offsets every GROUP_SYNC_INTERVAL_S with ``groups``).
        A following mirror also takes up topics created in the source meanwhile
        (every DISCOVER_INTERVAL_S). A set ``stop`` ends the copy after the round
        under way, with its progress recorded. Returns the records copied."""
        stop = stop or threading.Event()
        targets = None if follow else {
            key: self.source.end_offset(*key) for key in self.maps}
        producer = self.destination.producer(idempotent=True)
        copied = 0
        unrecorded = 0
        recorded_at = time.monotonic()
        synced_at = discovered_at = time.monotonic()
        try:
            while True:
                seen = self.source.append_counter()
                sent: list[tuple[Partition, OffsetMap, list[tuple[int, Delivery]]]] = []
                for key, offset_map in self.maps.items():
                    if stop.is_set():
                        break
                    end = None if targets is None else targets[key]
                    records = self._read(key, offset_map, end)
                    if records:
                        sent.append((key, offset_map, [
                            (record.offset, send(producer, key, record))
                            for record in records if record.offset is not None]))
                done = self._acknowledged(sent)
                copied += done
                unrecorded += done
                now = time.monotonic()
                if unrecorded and (not done or stop.is_set() or unrecorded >= CHECKPOINT_RECORDS
                                   or now - recorded_at >= CHECKPOINT_INTERVAL_S):
                    self.checkpoint()
                    unrecorded, recorded_at = 0, now
                if follow and groups and now - synced_at >= GROUP_SYNC_INTERVAL_S:
                    self.sync_groups()
                    synced_at = now
                if follow and now - discovered_at >= DISCOVER_INTERVAL_S:
                    self.discover()
                    discovered_at = now
                if stop.is_set() or (not follow and not done):
                    break
                if not done:
                    self.source.wait_for_append(seen, IDLE_WAIT_S)
        finally:
            producer.close()
        if unrecorded:
            self.checkpoint()
        return copied

    def _read(self, key: Partition, offset_map: OffsetMap, end: int | None) -> list[Record]:
        """The next records of a source partition (up to ``end``), moving past
        records retention deleted before they were copied."""
        topic, number = key
        for _attempt in range(2):
            wanted = BATCH_RECORDS if end is None else min(BATCH_RECORDS,
                                                           end - offset_map.source_next)
            if wanted <= 0:
                return []
            try:
                return self.source.read(topic, number, offset_map.source_next, wanted)
            except OffsetOutOfRangeError as error:
                if error.start_offset <= offset_map.source_next:
                    raise
                self._skip(key, offset_map, error.start_offset)
        return []  # retention moved the start again meanwhile: the next round goes on

    def _skip(self, key: Partition, offset_map: OffsetMap, start: int) -> None:
        """Go on from the source's log ``start``, counting the offsets passed over."""
        if start > offset_map.source_next:
            self.skipped[key] = self.skipped.get(key, 0) + start - offset_map.source_next
            offset_map.skip_to(start)

    def _acknowledged(self, sent: list[tuple[Partition, OffsetMap,
                                             list[tuple[int, Delivery]]]]) -> int:
        """Wait for the destination to acknowledge what a round sent, and map it."""
        done = 0
        for (topic, _number), offset_map, deliveries in sent:
            offset_map.add_all([(source_offset, delivery.result().offset)
                                for source_offset, delivery in deliveries])
            done += len(deliveries)
            if self._on_copied is not None:
                self._on_copied(topic, len(deliveries))
        return done

    def checkpoint(self) -> None:
        """Record every partition's progress that is not recorded yet, once the
        destination holds what it covers (flushed, on a log directory)."""
        due = [(key, offset_map) for key, offset_map in self.maps.items()
               if self._store.pending(key, offset_map) != 0]
        if not due:
            return
        if self._flushes:
            try:
                self.destination.flush()
            except UnsupportedError:  # a cluster: acknowledged records are its to keep
                self._flushes = False
        self._store.checkpoint(due)

    # -- groups --------------------------------------------------------------------------

    def sync_groups(self) -> list[GroupSync]:
        """Translate the source's consumer groups' committed offsets on the mirrored
        partitions to the destination's (see the package docstring) and commit
        them there, for groups with no live member in the destination. An offset
        the destination group has already passed is kept."""
        results = []
        for group in self.source.list_groups():
            try:
                described = self.source.describe_group(group)
            except UnknownGroupError:
                continue  # deleted meanwhile
            if described.kind != "consumer":
                results.append(GroupSync(group, {}, f"a {described.kind} group: its state "
                                                    f"is mqlog's own and is not mirrored"))
                continue
            wanted: dict[TopicPartition, int] = {}
            for entry in described.partitions:
                offset_map = self.maps.get((entry.topic, entry.partition))
                if offset_map is None or entry.committed_offset is None:
                    continue
                translated = offset_map.translate(entry.committed_offset)
                if translated is not None:
                    wanted[TopicPartition(entry.topic, entry.partition)] = translated
            if wanted:
                results.append(self._commit_translated(group, wanted))
        return results

    def _commit_translated(self, group: str, wanted: dict[TopicPartition, int]) -> GroupSync:
        try:
            current = self.destination.describe_group(group)
        except UnknownGroupError:
            have: dict[TopicPartition, int | None] = {}
        else:
            if current.members:
                return GroupSync(group, {}, "it has live members in the destination")
            have = {TopicPartition(p.topic, p.partition): p.committed_offset
                    for p in current.partitions}
        changes = {}
        for tp, offset in wanted.items():
            existing = have.get(tp)
            if existing is None or existing < offset:
                changes[tp] = offset
        if changes:
            try:
                self.destination.alter_offsets(group, changes)
            except GroupNotEmptyError:
                return GroupSync(group, {}, "it has live members in the destination")
        return GroupSync(group, changes)

    # -- verification ------------------------------------------------------------------

    def verify(self) -> list[PartitionCheck]:
        """Count and checksum each mirrored partition's records on both sides."""
        checks = []
        for (topic, number), offset_map in self.maps.items():
            low = max(self.source.start_offset(topic, number), offset_map.source_origin)
            high = offset_map.source_next
            source_sum = checksum(_between(self.source, topic, number, low, high))
            start = offset_map.translate(min(low, high))
            assert start is not None  # low <= source_next
            try:
                copy_sum = checksum(_between(self.destination, topic, number, start,
                                             offset_map.destination_next))
            except OffsetOutOfRangeError as error:
                checks.append(PartitionCheck(topic, number, source_sum, Checksum(0, ""),
                                             f"destination records missing: {error}"))
                continue
            checks.append(PartitionCheck(topic, number, source_sum, copy_sum))
        return checks


def _between(log: Log, topic: str, partition: int, start: int, end: int) -> Iterator[Record]:
    if start >= end:
        return iter(())
    return log.iter(topic, partition, start, end)


def send(producer: Producer, key: Partition, record: Record) -> Delivery:
    """Send ``record`` to the same topic and partition, keeping its key, headers
    and timestamp."""
    topic, number = key
    return producer.send(topic, record.value, key=record.key,
                         headers=record.headers or None, partition=number,
                         timestamp=record.timestamp)


def same_record(one: Record, other: Record) -> bool:
    """Same key, value, headers and timestamp (offsets aside)."""
    return (one.key == other.key and one.value == other.value
            and one.timestamp == other.timestamp
            and dict(one.headers or {}) == dict(other.headers or {}))
