"""What ``mqlog tail`` reads: one topic or several (names, or regular expressions
written ``^...``), merged in timestamp order, within bounds (``--to-offset``,
``--until``), and, with ``-f``, followed as topics grow, go away and come back.

Following keeps a position per (topic, partition). About once per
WATCH_INTERVAL_S, and at once when a read finds its topic deleted, it looks
again at the topics: a partition added since is read from its start ("topic X:
now N partitions"); a named topic that was deleted is waited for and, once
created again, read from its start; a topic a regular expression matches is
picked up when created and dropped when deleted. Each such change is told on
stderr through a callback.
"""

from __future__ import annotations

import dataclasses
import heapq
import re
import time
from collections.abc import Callable, Iterator

import typer

import mqlog
from mqlog import Record
from mqlog.consumer import TopicPartition
from mqlog.errors import CorruptRecordError, OffsetOutOfRangeError, UnknownTopicError

#: A record printed by tail: (topic, partition, record).
Item = tuple[str, int, Record]
#: A topic argument starting with this is a regular expression (as kcat and
#: librdkafka read topic names).
REGEX_PREFIX = "^"
#: Records fetched per partition and per step when following.
FOLLOW_CHUNK = 500
#: Longest time between two looks for new partitions, topics and deletions.
WATCH_INTERVAL_S = 1.0


@dataclasses.dataclass(frozen=True)
class Selection:
    """The topics named on the command line, and the regular expressions."""

    names: tuple[str, ...]
    patterns: tuple[re.Pattern, ...]

    @classmethod
    def parse(cls, words: list[str]) -> Selection:
        """``^...`` words are regular expressions (a bad one is a usage error)."""
        names, patterns = [], []
        for word in words:
            if not word.startswith(REGEX_PREFIX):
                names.append(word)
                continue
            try:
                patterns.append(re.compile(word))
            except re.error as error:
                raise typer.BadParameter(f"bad regular expression {word!r}: {error}",
                                         param_hint="'TOPIC'") from None
        return cls(tuple(dict.fromkeys(names)), tuple(patterns))

    @property
    def several(self) -> bool:
        """More than one topic may be read (several words, or a regular expression)."""
        return len(self.names) + len(self.patterns) > 1 or bool(self.patterns)

    def matches(self, topic: str) -> bool:
        """Whether a regular expression matches ``topic`` from its start (internal
        ``__`` topics never match)."""
        return not topic.startswith("__") and any(p.match(topic) for p in self.patterns)

    def topics(self, log: mqlog.Log) -> list[str]:
        """The named topics (UnknownTopicError if one does not exist) and those the
        regular expressions match now."""
        for name in self.names:
            log.describe_topic(name)
        matched = [name for name in log.topics() if self.matches(name)] if self.patterns else []
        return list(dict.fromkeys([*self.names, *matched]))


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Where reading stops in each partition: before ``to_offset``, and before the
    first record stamped at or after ``until_ms`` (None: no bound)."""

    to_offset: int | None = None
    until_ms: int | None = None

    @property
    def bounded(self) -> bool:
        return self.to_offset is not None or self.until_ms is not None

    def end(self, log: mqlog.Log, tp: TopicPartition, end: int) -> int:
        """``end`` (a partition's end offset) cut to the bounds."""
        if self.until_ms is not None:
            end = min(end, log.offset_for_time(tp.topic, tp.partition, self.until_ms))
        if self.to_offset is not None:
            end = min(end, self.to_offset)
        return end

    def stops_at(self, record: Record) -> bool:
        """Whether ``record`` (read from the log) is past the bounds (it and all
        after it are not read)."""
        offset, timestamp = record.offset, record.timestamp
        assert offset is not None and timestamp is not None  # read from the log
        return (self.to_offset is not None and offset >= self.to_offset) or (
            self.until_ms is not None and timestamp >= self.until_ms)


#: What a reader does at damaged records: a callable told of each damaged range
#: before it is skipped.
OnCorrupt = Callable[[CorruptRecordError], None]


def merged(log: mqlog.Log, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int],
           on_corrupt: OnCorrupt) -> Iterator[Item]:
    """Every record of the partitions from their start up to their end (exclusive),
    merged in timestamp order (ties: topic, partition, offset)."""
    streams = [_keyed(log, tp, start, ends[tp], on_corrupt)
               for tp, start in starts.items() if start < ends[tp]]
    for _timestamp, topic, number, _offset, record in heapq.merge(*streams):
        yield topic, number, record


def _keyed(log: mqlog.Log, tp: TopicPartition, start: int, end: int,
           on_corrupt: OnCorrupt) -> Iterator[tuple[int, str, int, int, Record]]:
    for record in log.iter(tp.topic, tp.partition, start, end, on_corrupt=on_corrupt):
        timestamp, offset = record.timestamp, record.offset
        assert timestamp is not None and offset is not None  # read from the log
        yield timestamp, tp.topic, tp.partition, offset, record


def last_items(log: mqlog.Log, ends: dict[TopicPartition, int], count: int,
               on_corrupt: OnCorrupt) -> list[Item]:
    """The last ``count`` records of the partitions (up to ``ends``), in timestamp order."""
    if count <= 0:
        return []
    starts = {tp: max(end - count, log.start_offset(tp.topic, tp.partition))
              for tp, end in ends.items()}
    return list(merged(log, starts, ends, on_corrupt))[-count:]


class Follower:
    """Reads what is appended after given positions, waking on appends
    (``Log.wait_for_append``), and follows the topics as the module says."""

    def __init__(self, log: mqlog.Log, selection: Selection, partition: int | None,
                 positions: dict[TopicPartition, int], bounds: Bounds, on_corrupt: OnCorrupt,
                 tell: Callable[[str], None]) -> None:
        self.log = log
        self.selection = selection
        #: The one partition of each topic read (-p), or None: all of them.
        self.partition = partition
        self.positions = dict(positions)
        self.bounds = bounds
        self.on_corrupt = on_corrupt
        self.tell = tell
        #: Partitions whose bounds were reached: never read again.
        self.done: set[TopicPartition] = set()
        #: Named topics that were deleted, waited for.
        self.waiting: set[str] = set()
        #: The partition count of each topic read, as last seen: with every partition
        #: read, the count ``positions`` were taken at (a partition added since is
        #: news); with -p, the count now (only P is read).
        self._counts: dict[str, int] = {}
        for tp in positions:
            self._counts[tp.topic] = max(self._counts.get(tp.topic, 0), tp.partition + 1)
        if partition is not None:
            self._counts = {topic: len(log.describe_topic(topic).partitions)
                            for topic in self._counts}
        self._watched_at = time.monotonic()

    def finished(self, found_nothing: bool) -> bool:
        """Whether the bounds end the following: every partition reached them, or
        the clock passed ``--until`` and the last look found nothing new."""
        if not self.bounds.bounded:
            return False
        if self.positions and set(self.positions) <= self.done:
            return True
        return (found_nothing and self.bounds.until_ms is not None
                and self.log.now_ms() >= self.bounds.until_ms)

    def next_chunk(self, timeout_s: float) -> list[Item]:
        """What is there now past the positions (looking at the topics again when
        due), waiting up to ``timeout_s`` for an append if there is nothing yet; []
        if still nothing."""
        seen = self.log.append_counter()
        found = self.fetch()
        if not found:
            self.log.wait_for_append(seen, min(timeout_s, WATCH_INTERVAL_S))
            if time.monotonic() - self._watched_at >= WATCH_INTERVAL_S:
                self.watch()
            found = self.fetch()
        return found

    def fetch(self) -> list[Item]:
        """What is there now past the positions (at most FOLLOW_CHUNK per partition),
        in timestamp order; moves the positions past it."""
        found: list[Item] = []
        for tp, position in list(self.positions.items()):
            if tp in self.done or tp not in self.positions:
                continue
            try:
                records = self.log.read(tp.topic, tp.partition, position,
                                        max_records=FOLLOW_CHUNK)
            except OffsetOutOfRangeError as error:  # retention deleted what was next
                self.positions[tp] = error.start_offset
                continue
            except CorruptRecordError as error:
                if error.next_offset is None:
                    raise
                self.on_corrupt(error)
                self.positions[tp] = error.next_offset
                continue
            except UnknownTopicError:
                self._deleted(tp.topic)
                continue
            for index, record in enumerate(records):
                if self.bounds.stops_at(record):
                    self.done.add(tp)
                    records = records[:index]
                    break
            if records:
                last = records[-1].offset
                assert last is not None  # read from the log
                self.positions[tp] = last + 1
                found.extend((tp.topic, tp.partition, record) for record in records)
        found.sort(key=lambda item: (item[2].timestamp, item[0], item[1], item[2].offset))
        return found

    def watch(self) -> None:
        """Look again at the topics: new partitions, topics created or deleted."""
        self._watched_at = time.monotonic()
        for topic in list(self._counts):
            self._look_at(topic)
        for topic in sorted(self.waiting):
            self._look_at(topic)
        if self.selection.patterns:
            for topic in self.log.topics():
                if topic not in self._counts and self.selection.matches(topic):
                    self._look_at(topic)

    def _look_at(self, topic: str) -> None:
        """Read the partitions ``topic`` has now that are not read yet, from their start."""
        try:
            count = len(self.log.describe_topic(topic).partitions)
        except UnknownTopicError:
            if topic in self._counts:
                self._deleted(topic)
            return
        known = self._counts.get(topic)
        if topic in self.waiting:
            self.waiting.discard(topic)
            self.tell(f"topic {topic!r} was created again, with {_partitions(count)}: "
                      f"reading it from its start")
        elif known is None:
            self.tell(f"topic {topic!r} was created, with {_partitions(count)}: reading it "
                      f"from its start")
        elif count > known:
            self.tell(f"topic {topic!r}: now {count} partitions")
        self._counts[topic] = count
        numbers = range(count) if self.partition is None else (
            [self.partition] if self.partition < count else [])
        for number in numbers:
            tp = TopicPartition(topic, number)
            if tp not in self.positions:
                self.positions[tp] = self.log.start_offset(topic, number)

    def _deleted(self, topic: str) -> None:
        """Stop reading ``topic``; wait for it if it was named, then look at once
        whether it exists again already."""
        if topic not in self._counts:
            return
        del self._counts[topic]
        for tp in [tp for tp in self.positions if tp.topic == topic]:
            del self.positions[tp]
            self.done.discard(tp)
        if topic in self.selection.names:
            self.waiting.add(topic)
            self.tell(f"topic {topic!r} was deleted: waiting for it to be created again")
        else:
            self.tell(f"topic {topic!r} was deleted")
        self._look_at(topic)


def _partitions(count: int) -> str:
    return f"{count} partition" + ("" if count == 1 else "s")
