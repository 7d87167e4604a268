"""Dead letters: listing them, redriving them and purging them (``Log.dead_letters``,
``Log.redrive``, ``Log.purge_dead_letters``).

A dead-letter topic holds the records queue groups gave up on, each with
``dlq.*`` headers saying where it came from (see ``_queue``, rule 4; workers
move them there through ``_dead_lettering``). Each dead letter is in one state:

- ``pending``: not handled yet;
- ``redriven``: appended again to its original topic and partition (or to the
  topic a redrive named with ``to=``), without its ``dlq.*`` headers;
- ``purged``: given up for good, never to be redriven.

A letter is redriven or purged once. The states are kept beside the queue
groups, as the marks of ``mqlog-redrive``
(``<log>/queues/mqlog-redrive/<dead-letter topic>/<partition>.marks``: JSON,
ranges of offsets per state, replaced atomically and as durably as the
dead-letter topic's records); a redrive or purge holds the topic's lock file
there (an ``flock``) from reading the marks to writing them, so two at once
never handle one letter twice. Moving a letter is at-least-once: a process
killed between the append and writing the marks redrives that letter again
next time. Marks that reach past the end of a partition belong to a deleted
topic of the same name and are forgotten.

Every call checks first that the topic is a dead-letter topic (ConfigError
otherwise) and checks its arguments, so bad input writes nothing.
"""

from __future__ import annotations

import bisect
import dataclasses
import fcntl
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from mqlog.consumer._queue_views import check_dead_letter_topic, dead_letter_origin
from mqlog.errors import ConfigError, OffsetOutOfRangeError, UnknownPartitionError
from mqlog.headers import (
    DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_FIRST_DELIVERY_MS,
    DEAD_LETTER_LAST_DELIVERY_MS,
    DEAD_LETTER_OFFSET,
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_REASON,
)
from mqlog.logstore import Engine, Record, atomic_write

#: Where the marks of every dead-letter topic live (a queue group's directory).
MARKS_GROUP = "mqlog-redrive"
PENDING, REDRIVEN, PURGED = "pending", "redriven", "purged"
#: Letters appended to one target partition at once by a redrive.
REDRIVE_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, its origin and its state."""

    partition: int
    offset: int
    #: Where it came from (its ``dlq.topic``, ``dlq.partition``, ``dlq.offset``).
    origin_topic: str
    origin_partition: int
    origin_offset: int | None
    #: Deliveries before it was dead-lettered; None when the header is missing.
    delivery_count: int | None
    #: The last nack's reason ("expired" for an expired record; "" when none).
    reason: str
    first_delivery_ms: int | None
    last_delivery_ms: int | None
    #: "pending", "redriven" or "purged".
    state: str
    #: The record itself: key, value and headers (``dlq.*`` included).
    record: Record


class _Marks:
    """The states of one partition's letters: sorted, disjoint [first, last] ranges."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path) as handle:
                document = json.load(handle)
            self.ranges = {state: [tuple(r) for r in document.get(state, [])]
                           for state in (REDRIVEN, PURGED)}
        except (FileNotFoundError, ValueError):
            self.ranges = {REDRIVEN: [], PURGED: []}

    def forget_if_beyond(self, end_offset: int) -> None:
        """Drop every mark if one reaches past ``end_offset`` (the topic was re-created)."""
        if any(last >= end_offset for ranges in self.ranges.values() for _f, last in ranges):
            self.ranges = {REDRIVEN: [], PURGED: []}

    def state(self, offset: int) -> str:
        for state, ranges in self.ranges.items():
            index = bisect.bisect_right(ranges, (offset, math.inf)) - 1
            if index >= 0 and ranges[index][0] <= offset <= ranges[index][1]:
                return state
        return PENDING

    def mark(self, state: str, offsets: Iterable[int]) -> None:
        """Add ``offsets`` to the ranges of ``state``, merging neighbours."""
        merged: list[tuple[int, int]] = []
        for first, last in sorted(self.ranges[state] + [(o, o) for o in offsets]):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        self.ranges[state] = merged

    def save(self, durable: bool) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        atomic_write(self.path, json.dumps(self.ranges).encode(), durable=durable)


def _marks_directory(log: Engine, topic: str) -> str:
    from mqlog.consumer._group import queue_directory

    return os.path.join(queue_directory(log, MARKS_GROUP), topic)


def _marks_path(log: Engine, topic: str, partition: int) -> str:
    return os.path.join(_marks_directory(log, topic), f"{partition}.marks")


def _int_header(headers: Mapping[str, bytes], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(bytes(value)) if value is not None else None
    except ValueError:
        return None


def _letter(partition: int, record: Record, state: str) -> DeadLetter:
    headers, offset = record.headers, record.offset
    assert headers is not None and offset is not None  # read from the log: both set
    origin_topic, origin_partition = dead_letter_origin(record) or ("", -1)
    reason = bytes(headers.get(DEAD_LETTER_REASON) or b"").decode(errors="replace")
    return DeadLetter(partition, offset, origin_topic, origin_partition,
                      _int_header(headers, DEAD_LETTER_OFFSET),
                      _int_header(headers, DEAD_LETTER_DELIVERY_COUNT),
                      reason, _int_header(headers, DEAD_LETTER_FIRST_DELIVERY_MS),
                      _int_header(headers, DEAD_LETTER_LAST_DELIVERY_MS), state, record)


@dataclasses.dataclass(frozen=True)
class _Filter:
    """Which letters a call is about; checked before anything is read or written."""

    partition: int | None = None
    offsets: frozenset[int] | None = None
    reason: re.Pattern | None = None
    where: Callable[[Record], bool] | None = None

    @classmethod
    def of(cls, partition: object = None, offsets: Iterable[int] | None = None,
           reason: str | None = None, where: object = None) -> _Filter:
        if partition is not None and (not isinstance(partition, int)
                                      or isinstance(partition, bool) or partition < 0):
            raise ConfigError(f"partition must be an int >= 0, not {partition!r}")
        wanted = None if offsets is None else frozenset(offsets)
        if wanted is not None and not all(
            isinstance(o, int) and not isinstance(o, bool) for o in wanted
        ):
            raise TypeError("offsets must be ints")
        if where is not None and not callable(where):
            raise TypeError("where must be callable(message) -> bool")
        try:
            pattern = None if reason is None else re.compile(reason)
        except (re.error, TypeError) as error:
            raise ConfigError(f"reason {reason!r} is not a regular expression: {error}") from None
        return cls(partition, wanted, pattern, where)

    def matches(self, letter: DeadLetter) -> bool:
        return ((self.offsets is None or letter.offset in self.offsets)
                and (self.reason is None or self.reason.search(letter.reason) is not None)
                and (self.where is None or bool(self.where(letter.record))))


def _check_partition(log: Engine, topic: str, only: _Filter) -> None:
    """UnknownPartitionError if ``only`` names a partition ``topic`` does not have."""
    count = len(log.describe_topic(topic).partitions)
    if only.partition is not None and only.partition >= count:
        raise UnknownPartitionError(f"topic {topic!r} has no partition {only.partition}")


def _letters(log: Engine, topic: str, only: _Filter) -> Iterator[DeadLetter]:
    """The letters of ``topic`` that ``only`` selects, with their states."""
    _check_partition(log, topic, only)
    for p in log.describe_topic(topic).partitions:
        if only.partition is not None and p.partition != only.partition:
            continue
        marks = _Marks(_marks_path(log, topic, p.partition))
        marks.forget_if_beyond(p.end_offset)
        for record in log.iter(topic, p.partition, p.start_offset, p.end_offset):
            offset = record.offset
            assert offset is not None  # read from the log
            letter = _letter(p.partition, record, marks.state(offset))
            if only.matches(letter):
                yield letter


def dead_letters(log: Engine, topic: str, *, partition: int | None = None,
                 offsets: Iterable[int] | None = None, reason: str | None = None,
                 pending_only: bool = False) -> list[DeadLetter]:
    """The letters of dead-letter topic ``topic``, in (partition, offset) order: of
    ``partition``, at ``offsets`` (in every partition), whose reason matches the
    regular expression ``reason``, only the pending ones. Reads only."""
    only = _Filter.of(partition, offsets, reason)
    check_dead_letter_topic(log, topic)
    return [letter for letter in _letters(log, topic, only)
            if not pending_only or letter.state == PENDING]


def dead_letter_at(log: Engine, topic: str, partition: int, offset: int) -> DeadLetter:
    """The letter at ``offset`` of ``partition``; OffsetOutOfRangeError when there is
    none, ConfigError when the topic or the record is not a dead letter. Reads only."""
    check_dead_letter_topic(log, topic)
    found = log.read(topic, partition, offset, max_records=1)
    if not found or found[0].offset != offset:
        raise OffsetOutOfRangeError(f"no dead letter at {topic}/{partition}@{offset}",
                                    offset=offset, start_offset=offset, end_offset=offset)
    record = found[0]
    if dead_letter_origin(record) is None:
        raise ConfigError(f"{topic}/{partition}@{offset} is not a dead letter: it has no "
                          f"dlq.topic and dlq.partition headers")
    marks = _Marks(_marks_path(log, topic, partition))
    marks.forget_if_beyond(log.end_offset(topic, partition))
    return _letter(partition, record, marks.state(offset))


@contextmanager
def _locked(log: Engine, topic: str) -> Iterator[None]:
    directory = _marks_directory(log, topic)
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def redrive(log: Engine, topic: str, offsets: Iterable[int] | None = None,
            where: Callable[[Record], bool] | None = None, *, to: str | None = None,
            partition: int | None = None, reason: str | None = None,
            dry_run: bool = False) -> int:
    """Append the pending letters of ``topic`` (those the filters select, as in
    :func:`dead_letters`; ``where`` is a predicate on the record) to their
    original topic and partition, or to topic ``to`` (partition: the original
    one modulo its partition count), without their ``dlq.*`` headers, and mark
    them redriven. Returns how many; ``dry_run`` counts them and writes nothing.
    A topic the letters go to must exist (UnknownTopicError before any write)."""
    only = _Filter.of(partition, offsets, reason, where)
    if not check_dead_letter_topic(log, topic):
        return 0
    _check_partition(log, topic, only)
    if to is not None:
        log.describe_topic(to)  # UnknownTopicError now
    if dry_run:
        return len(_targets(log, _redrivable(log, topic, only), to))
    chosen = _redrivable(log, topic, only)
    targets = _targets(log, chosen, to)  # a missing destination fails before any write
    durable = log.describe_topic(topic).config.durability == "always"
    with _locked(log, topic):
        chosen, targets = _still_pending(log, topic, chosen, targets)
        moved = 0
        for start in range(0, len(chosen), REDRIVE_BATCH):
            batch = chosen[start:start + REDRIVE_BATCH]
            by_target: dict[tuple[str, int], list[Record]] = {}
            for letter, target in zip(batch, targets[start:start + REDRIVE_BATCH]):
                by_target.setdefault(target, []).append(_undead(letter.record))
            for (target_topic, target_partition), records in by_target.items():
                log.append(target_topic, target_partition, records)
            _mark(log, topic, REDRIVEN, batch, durable)
            moved += len(batch)
        return moved


def purge_dead_letters(log: Engine, topic: str, offsets: Iterable[int] | None = None, *,
          partition: int | None = None, reason: str | None = None,
          dry_run: bool = False) -> int:
    """Mark the pending letters of ``topic`` that the filters select (as in
    :func:`dead_letters`) purged: they are never redriven. Their records stay
    until retention (or a truncation of the topic) deletes them. Returns how
    many; ``dry_run`` counts them and writes nothing."""
    only = _Filter.of(partition, offsets, reason)
    if not check_dead_letter_topic(log, topic):
        return 0
    _check_partition(log, topic, only)
    if dry_run:
        return sum(1 for x in _letters(log, topic, only) if x.state == PENDING)
    chosen = [x for x in _letters(log, topic, only) if x.state == PENDING]
    durable = log.describe_topic(topic).config.durability == "always"
    with _locked(log, topic):
        chosen, _ = _still_pending(log, topic, chosen, chosen)
        _mark(log, topic, PURGED, chosen, durable)
        return len(chosen)


def _redrivable(log: Engine, topic: str, only: _Filter) -> list[DeadLetter]:
    """The pending letters ``only`` selects that say where they came from (a record
    without ``dlq.topic`` and ``dlq.partition`` headers is left where it is)."""
    return [x for x in _letters(log, topic, only) if x.state == PENDING and x.origin_topic]


def _still_pending(log: Engine, topic: str, letters: list[DeadLetter], paired: list
                   ) -> tuple[list[DeadLetter], list]:
    """The ``letters`` (and their ``paired`` items) still pending by the marks as
    they are now: read under the lock, after a redrive or purge by another
    process may have handled some."""
    marks: dict[int, _Marks] = {}
    kept, kept_paired = [], []
    for letter, item in zip(letters, paired):
        if letter.partition not in marks:
            marks[letter.partition] = _Marks(_marks_path(log, topic, letter.partition))
            marks[letter.partition].forget_if_beyond(log.end_offset(topic, letter.partition))
        if marks[letter.partition].state(letter.offset) == PENDING:
            kept.append(letter)
            kept_paired.append(item)
    return kept, kept_paired


def _targets(log: Engine, letters: list[DeadLetter], to: str | None) -> list[tuple[str, int]]:
    """Where each letter goes; UnknownTopicError or UnknownPartitionError for a
    destination that does not exist, before anything is written."""
    counts: dict[str, int] = {}
    out = []
    for letter in letters:
        name = to or letter.origin_topic
        if name not in counts:
            counts[name] = len(log.describe_topic(name).partitions)
        number = letter.origin_partition % counts[name] if to else letter.origin_partition
        if number >= counts[name]:
            raise UnknownPartitionError(
                f"dead letter {letter.partition}@{letter.offset} came from {name}/{number}, "
                f"which does not exist any more; redrive it with to=")
        out.append((name, number))
    return out


def _undead(record: Record) -> Record:
    assert record.headers is not None  # read from the log: a mapping, maybe empty
    headers = {k: v for k, v in record.headers.items() if not k.startswith(DEAD_LETTER_PREFIX)}
    return Record(record.value, record.key, headers, record.timestamp)


def _mark(log: Engine, topic: str, state: str, letters: list[DeadLetter], durable: bool) -> None:
    by_partition: dict[int, list[int]] = {}
    for letter in letters:
        by_partition.setdefault(letter.partition, []).append(letter.offset)
    for number, offsets in by_partition.items():
        marks = _Marks(_marks_path(log, topic, number))
        marks.forget_if_beyond(log.end_offset(topic, number))
        marks.mark(state, offsets)
        marks.save(durable)
