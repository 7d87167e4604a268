"""The Consumer: positions, fetching, waiting, committing.

Owner: a Consumer owns its assignment and one position per assigned partition
(the offset of the next record it will return). It is meant for one thread
(like Kafka's consumer); ``close`` may be called from another.

Without a group it reads what it is told (``assign``) and cannot commit. With
a group, ``subscribe`` makes it a member through a ``GroupMembership`` (see
``_membership``), used as a remote member would use it: join, then on each
poll a heartbeat, and a sync when the heartbeat reports a new generation;
commits name the member id and generation. The membership tells the consumer
which partitions it gained, must give up, or lost, through ``_GroupListener``;
the consumer only fetches a partition while the membership owns it, and
commits only those.
"""

from __future__ import annotations

import collections
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mqlog.consumer._config import ConsumerConfig, TopicPartition, check_timeout
from mqlog.consumer._offsets import offset_store
from mqlog.errors import (
    ConfigError,
    CorruptRecordError,
    IllegalGenerationError,
    IllegalStateError,
    LogClosedError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    UnknownMemberError,
    UnknownPartitionError,
    UnknownTopicError,
)
from mqlog.logstore import Engine, Message, Partition, RecordColumns, checked_timestamp
from mqlog.names import validate_name

if TYPE_CHECKING:
    from mqlog.consumer._membership import GroupMembership
    from mqlog.consumer._membership_messages import JoinResult

Listener = Callable[[set[TopicPartition]], None]
#: What one partition's read gives a poll: a list of messages, or columns.
_Piece = TypeVar("_Piece", list[Message], RecordColumns)
#: Reads one partition for a poll: (partition, position, most records, byte budget,
#: at least one) -> (piece, how many records, their size, the offset after them).
_Read = Callable[[Partition, int, int, int, bool], tuple[_Piece, int, int, int]]
#: Damaged ranges ``Consumer.skipped_ranges`` remembers (the most recent ones).
SKIPPED_RANGES_KEPT = 100
_log = logging.getLogger("mqlog.consumer")


class _Assigned:
    """A partition this consumer reads: where it is, whether it is paused, and
    whether its topic is missing (deleted, not created again yet)."""

    __slots__ = ("tp", "partition", "position", "paused", "missing")

    def __init__(self, tp: TopicPartition, partition: Partition) -> None:
        self.tp = tp
        self.partition = partition
        self.position: int | None = None  # unknown until committed offset / reset
        self.paused = False
        self.missing = False


class Consumer:
    """Reads records from a Log; see ``Log.consumer``."""

    def __init__(self, log: Engine, group: str | None = None,
                 topics: Iterable[str] | str = (), **config: Any) -> None:
        self.config = ConsumerConfig(**config)
        if group is not None:
            validate_name("group", group)
        self._log = log
        self.group = group
        self._assigned: dict[TopicPartition, _Assigned] = {}
        self._order: list[_Assigned] = []
        self._next = 0
        self._manual = False
        self._member: GroupMembership | None = None
        #: As a remote member would: the member id and generation of the last join / sync.
        self._member_id = ""
        self._generation = -1
        self._topics: list[str] | re.Pattern[str] = []
        self._on_assigned: Listener | None = None
        self._on_revoked: Listener | None = None
        self._closed = False
        self._last_auto_commit = time.monotonic()
        self._topic_changes_seen = log.topic_changes()
        #: Records skipped because they were damaged on disk (``on_corrupt="skip"``).
        self.skipped_corrupt = 0
        #: The most recent damaged ranges skipped: (partition, first, last offset).
        self.skipped_ranges: collections.deque[tuple[TopicPartition, int, int]] = (
            collections.deque(maxlen=SKIPPED_RANGES_KEPT))
        if group is not None:
            self._offsets = offset_store(log)
        if topics:
            self.subscribe(topics)

    # -- what to read -----------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | str | re.Pattern[str],
                  on_assigned: Listener | None = None,
                  on_revoked: Listener | None = None) -> None:
        """Join the group and consume ``topics`` (names, or a compiled regex whose
        matches are picked up as topics appear). ``on_revoked`` runs before
        partitions are given up, ``on_assigned`` after new ones are taken."""
        self._check_open()
        if self.group is None:
            raise IllegalStateError("subscribe needs a group: Log.consumer(group=...)")
        if self._manual:
            raise IllegalStateError("this consumer uses assign(); it cannot also subscribe")
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, re.Pattern):
            topics = sorted(set(topics))
            for name in topics:
                self._log.partition_count(name)  # UnknownTopicError now, not at poll
        from mqlog.consumer._membership import GroupMembership

        if self._member is None:
            self._member = GroupMembership(
                self._log, self.group, listener=_GroupListener(self, self.group),
                check_interval_ms=self.config.group_check_interval_ms)
        self._topics, self._on_assigned, self._on_revoked = topics, on_assigned, on_revoked
        self._join(self._member)

    def _join(self, member: GroupMembership) -> None:
        """Join (or change the subscription), then sync the generation joined."""
        try:
            joined = self._join_as(member, member.member_id)
        except UnknownMemberError:  # removed meanwhile (the watchdog): join anew
            joined = self._join_as(member, "")
        self._member_id = joined.member_id
        self._sync(member, joined.generation)

    def _join_as(self, member: GroupMembership, member_id: str) -> JoinResult:
        return member.join(client_id=self.config.client_id, topics=self._topics,
                           assignors=(self.config.assignor,),
                           session_timeout_ms=self.config.max_poll_interval_ms,
                           rebalance_timeout_ms=self.config.max_poll_interval_ms,
                           member_id=member_id)

    def _sync(self, member: GroupMembership, generation: int) -> None:
        try:
            self._generation = member.sync(self._member_id, generation).generation
        except (IllegalGenerationError, UnknownMemberError):
            pass  # a newer plan, or a removal (the watchdog), came meanwhile: the next poll
            # syncs that plan, or joins again

    def _heartbeat(self, member: GroupMembership, quick: bool) -> None:
        """Called by every poll: rejoin if removed, heartbeat, sync a new generation.
        ``quick``: only the heartbeat that notes the time, nothing else (the
        next round does what is due)."""
        if not member.member_id:  # removed after a long pause: join again
            if not quick:
                self._join(member)
            return
        try:
            beat = member.heartbeat(self._member_id, self._generation, look=not quick)
        except UnknownMemberError:
            return  # removed just now (watchdog): the next poll joins again
        if beat.rebalance and not quick:
            self._sync(member, beat.generation)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership)."""
        self._check_open()
        if self._member is not None:
            raise IllegalStateError("this consumer subscribed; it cannot also assign()")
        self._manual = True
        self._set_assignment({TopicPartition(*tp) for tp in partitions})

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def _set_assignment(self, partitions: set[TopicPartition]) -> None:
        """Replace the assignment, keeping positions of partitions that stay."""
        kept = {tp: a for tp, a in self._assigned.items() if tp in partitions}
        for tp in sorted(partitions - set(kept)):
            kept[tp] = _Assigned(tp, self._log.partition(tp.topic, tp.partition))
        self._assigned = kept
        self._order = [kept[tp] for tp in sorted(kept)]
        self._next = 0

    # -- positions ------------------------------------------------------------------------

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return from ``tp``."""
        return self._ensure_position(self._get(tp))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned from ``tp`` (checked on fetch:
        out of range applies ``auto_offset_reset``)."""
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ConfigError(f"offset must be an int >= 0, not {offset!r}")
        self._get(tp).position = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for assigned in self._targets(partitions):
            assigned.position = self._handle(assigned).state().log_start_offset

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        for assigned in self._targets(partitions):
            assigned.position = self._handle(assigned).state().end_offset

    def seek_to_time(self, ts_ms: int, *partitions: TopicPartition) -> None:
        """Next records: the first with a timestamp >= ``ts_ms`` (all partitions
        when none are named)."""
        for assigned in self._targets(partitions):
            assigned.position = self._handle(assigned).offset_for_time(
                checked_timestamp(ts_ms))

    def pause(self, *partitions: TopicPartition) -> None:
        for assigned in self._targets(partitions):
            assigned.paused = True

    def resume(self, *partitions: TopicPartition) -> None:
        for assigned in self._targets(partitions):
            assigned.paused = False

    def paused(self) -> set[TopicPartition]:
        return {tp for tp, assigned in self._assigned.items() if assigned.paused}

    def lag(self) -> dict[TopicPartition, int]:
        """Records between each partition's position and its end offset (a
        partition whose topic is missing -- deleted, not created again -- is left
        out)."""
        out = {}
        self._follow_topic_changes()
        for tp, assigned in self._assigned.items():
            if assigned.missing:
                continue
            position = self._ensure_position(assigned)
            out[tp] = self._handle(assigned).state().end_offset - position
        return out

    def _targets(self, partitions: tuple[TopicPartition, ...]) -> list[_Assigned]:
        if not partitions:
            return list(self._order)
        return [self._get(tp) for tp in partitions]

    def _get(self, tp: TopicPartition) -> _Assigned:
        assigned = self._assigned.get(TopicPartition(*tp))
        if assigned is None:
            raise IllegalStateError(f"{tp} is not assigned to this consumer")
        return assigned

    def _handle(self, assigned: _Assigned) -> Partition:
        """The partition's handle, opened anew if its topic was deleted since;
        UnknownTopicError while the topic is missing."""
        self._follow_topic_changes()
        if assigned.missing:
            raise UnknownTopicError(f"topic {assigned.tp.topic!r} was deleted")
        return assigned.partition

    def _follow_topic_changes(self) -> None:
        """Once any process created or deleted a topic (the log's topics counter
        moved): open anew each partition whose topic was deleted since its
        handle was opened. A topic created again under the name is read from
        the same position (out of its range, ``auto_offset_reset`` applies);
        while there is none, the partition is ``missing``: polls skip it."""
        changes = self._log.topic_changes()
        if changes == self._topic_changes_seen:
            return
        self._topic_changes_seen = changes  # before looking: a later change is seen
        for assigned in self._order:
            handle = assigned.partition
            if not (assigned.missing or handle.closed or handle.deleted()):
                continue
            try:
                assigned.partition = self._log.partition(assigned.tp.topic,
                                                         assigned.tp.partition)
            except (UnknownTopicError, UnknownPartitionError):
                if not assigned.missing:
                    _log.warning("%s/%d: its topic was deleted; polls skip it until a "
                                 "topic of that name has it again", *assigned.tp)
                assigned.missing = True
            else:
                assigned.missing = False

    def _ensure_position(self, assigned: _Assigned) -> int:
        """Give a partition without a position its committed offset, else reset;
        returns the position."""
        if assigned.position is not None:
            return assigned.position
        committed = self.committed(assigned.tp) if self.group is not None else None
        if committed is not None:
            assigned.position = committed
            return committed
        return self._reset(assigned, NoOffsetForPartitionError(
            f"no committed offset for {assigned.tp} in group {self.group!r} "
            f"and auto_offset_reset='error'"
        ))

    def _reset(self, assigned: _Assigned, error: Exception) -> int:
        """Apply ``auto_offset_reset``; returns the new position."""
        policy = self.config.auto_offset_reset
        if policy == "error":
            raise error
        state = self._handle(assigned).state()
        position = state.log_start_offset if policy == "earliest" else state.end_offset
        assigned.position = position
        return position

    # -- fetching -------------------------------------------------------------------------

    def poll(self, timeout: float | None = 0.0, max_records: int | None = None) -> list[Message]:
        """Records from the assigned partitions: at once if any are there, else
        after waiting up to ``timeout`` seconds (None: until some arrive).

        Partitions are served in turn, so one busy partition does not starve the
        others. Positions move past what is returned.
        """
        return _flat(self._poll(timeout, max_records, self._read_messages))

    def poll_columns(self, timeout: float | None = 0.0,
                     max_records: int | None = None) -> list[RecordColumns]:
        """As :meth:`poll`, but each partition's records come as one
        :class:`~mqlog.RecordColumns` (numpy columns over one payload buffer, no
        object per record; see ``Log.read_columns``): the fast form for bulk
        consumers. Positions, commits and limits work as with ``poll``."""
        return self._poll(timeout, max_records, self._read_columns)

    def poll_quick(self, max_records: int | None = None, *, columns: bool = False
                   ) -> list[Message] | list[RecordColumns] | None:
        """``poll(0)`` (``poll_columns(0)`` with ``columns``) if its round is
        quick (:meth:`round_is_quick`), else None with nothing done. The round
        does no group work even if some falls due meanwhile (its heartbeat only
        notes the time, no auto-commit): the next round does it. Never waits for
        a file or lock of the group, never syncs to disk."""
        if not self.round_is_quick():
            return None
        if columns:
            return self._poll(0.0, max_records, self._read_columns, quick=True)
        return _flat(self._poll(0.0, max_records, self._read_messages, quick=True))

    def _poll(self, timeout: float | None, max_records: int | None,
              read: _Read[_Piece], quick: bool = False) -> list[_Piece]:
        """One piece per partition read (see :meth:`_fetch`); [] if none came in
        time. ``quick`` (timeout 0 only): a round without group work."""
        self._check_open()
        limit = self.config.max_poll_records if max_records is None else max_records
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError(f"max_records must be an int, not {type(limit).__name__}")
        if limit < 1:
            raise ConfigError(f"max_records must be >= 1, not {limit}")
        check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._member is not None:
                self._heartbeat(self._member, quick)
            seen = self._log.append_counter()
            self._follow_topic_changes()
            pieces = self._fetch(limit, read)
            if self.config.enable_auto_commit and not quick:
                self._maybe_auto_commit()
            if pieces:
                return pieces
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            wait = self.config.group_check_interval_ms / 1000 if self._member else 1.0
            self._log.wait_for_append(seen, wait if remaining is None else min(remaining, wait))
            self._check_open()

    def round_is_quick(self) -> bool:
        """True if a ``poll(0)`` now only reads the log (microseconds): no join,
        no heartbeat that looks at the group or syncs a plan or takes partitions
        (see ``GroupMembership.heartbeat_is_quick``), no committed offset to
        read for a partition without a position, no auto-commit due. False: it
        may wait for the group's files and locks or sync to disk. ``mqlog.aio``
        runs the quick rounds of a group member on the event loop's thread
        (:meth:`poll_quick`)."""
        member = self._member
        if member is not None and not member.heartbeat_is_quick(self._member_id,
                                                                self._generation):
            return False
        if self.group is not None and self.config.enable_auto_commit and (
                time.monotonic() - self._last_auto_commit
                >= self.config.auto_commit_interval_ms / 1000):
            return False
        return all(assigned.position is not None for assigned in self._order)

    def _fetch(self, limit: int, read: _Read[_Piece]) -> list[_Piece]:
        """One piece (a list of messages, or columns) per partition that had records,
        ``limit`` records and ``fetch_max_bytes`` in all."""
        out: list[_Piece] = []
        taken = 0
        order = self._order
        count = len(order)
        budget = self.config.fetch_max_bytes
        for step in range(count):
            assigned = order[(self._next + step) % count]
            if assigned.paused or assigned.missing or (
                    self._member is not None and not self._member.owns(assigned.tp)):
                continue
            got = self._read_at(assigned, self._ensure_position(assigned), read,
                                limit - taken, budget, not taken)
            if got is None:
                continue
            piece, size, used, next_offset = got
            if size:
                out.append(piece)
                taken += size
                assigned.position = next_offset
                budget -= used
                if taken >= limit or budget <= 0:
                    self._next = (self._next + step + 1) % count
                    break
        return out

    def _read_at(self, assigned: _Assigned, position: int, read: _Read[_Piece], count: int,
                 budget: int, at_least_one: bool) -> tuple[_Piece, int, int, int] | None:
        """``read`` at the partition's position (``position``): an offset out of range
        applies ``auto_offset_reset`` (once), damage applies ``on_corrupt``. None:
        the topic was found deleted, and is missing."""
        reset = False
        while True:
            try:
                return read(assigned.partition, position, count, budget, at_least_one)
            except LogClosedError:
                # The log closed, or another thread closed the handle of a
                # topic it found deleted (see TopicTable.drop_deleted).
                self._log.check_open()
                self._topic_changes_seen = -1
                self._follow_topic_changes()
                if assigned.missing:
                    return None
                if not assigned.partition.closed:
                    continue
                raise
            except OffsetOutOfRangeError as error:
                if reset:
                    raise
                reset = True
                position = self._reset(assigned, error)  # then read from where it put us
            except CorruptRecordError as error:
                if self.config.on_corrupt == "raise" or error.next_offset is None or (
                        error.next_offset <= position):
                    raise
                position = self._skip_damage(assigned, position, error.next_offset, error)

    def _skip_damage(self, assigned: _Assigned, first: int, after: int,
                     error: CorruptRecordError) -> int:
        """Move past a damaged range, ``first`` up to ``after`` (``on_corrupt="skip"``):
        logged and counted; returns the new position, ``after``."""
        _log.warning("skipping offsets %d..%d of %s/%d: damaged on disk (%s)", first,
                     after - 1, assigned.tp.topic, assigned.tp.partition, error)
        self.skipped_corrupt += after - first
        self.skipped_ranges.append((assigned.tp, first, after - 1))
        assigned.position = after
        return after

    def _read_messages(self, partition: Partition, position: int, count: int, budget: int,
                       at_least_one: bool) -> tuple[list[Message], int, int, int]:
        """(messages, how many, their size, the offset after them)."""
        messages, used = partition.read_sized(
            position, count, budget, messages=True, zero_copy=self.config.zero_copy,
            at_least_one=at_least_one)
        return messages, len(messages), used, messages[-1].offset + 1 if messages else 0

    def _read_columns(self, partition: Partition, position: int, count: int, budget: int,
                      at_least_one: bool) -> tuple[RecordColumns, int, int, int]:
        """(columns, how many records, their size, the offset after them)."""
        columns, used = partition.read_columns_sized(position, count, budget, at_least_one)
        return columns, len(columns), used, columns.next_offset or 0

    def __iter__(self) -> Iterator[Message]:
        """Yield records forever (or until ``consumer_timeout_ms`` passes without one)."""
        quiet_s = (None if self.config.consumer_timeout_ms is None
                   else self.config.consumer_timeout_ms / 1000)
        while not self._closed:
            try:
                records = self.poll(timeout=quiet_s)
            except LogClosedError:
                return  # closed from another thread: the iteration ends
            if not records and quiet_s is not None:
                return
            yield from records

    # -- commits ----------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None,
               metadata: str = "") -> dict[TopicPartition, int]:
        """Commit ``offsets`` (the next offset to read, per partition), or by default
        the positions of everything returned so far. Raises CommitFailedError,
        committing nothing, if a partition is not owned by this member
        (UnknownMemberError once it was removed from the group for not polling)."""
        self._check_open()
        if self.group is None:
            raise IllegalStateError("commit needs a group: Log.consumer(group=...)")
        if offsets is None:
            offsets = {tp: a.position for tp, a in self._assigned.items()
                       if a.position is not None}
        else:
            offsets = {TopicPartition(*tp): offset for tp, offset in offsets.items()}
            for tp, offset in offsets.items():
                if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                    raise ConfigError(f"offsets must be ints >= 0, not {offset!r}")
                self._log.partition(tp.topic, tp.partition)  # Unknown...Error if none
        if self._member is not None:
            self._member.commit(self._member_id, self._generation, offsets, metadata)
        else:
            self._offsets.commit(self.group, offsets, "", metadata)
        return dict(offsets)

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or None."""
        if self.group is None:
            return None
        value = self._offsets.committed(self.group, TopicPartition(*tp))
        return None if value is None else value.offset

    def _maybe_auto_commit(self, force: bool = False) -> None:
        """Commit the positions of owned partitions once the interval passed (or
        when ``force``); without a group there is nothing to commit to."""
        if self.group is None:
            return
        now = time.monotonic()
        if force or now - self._last_auto_commit >= self.config.auto_commit_interval_ms / 1000:
            self._last_auto_commit = now
            owned = {tp: a.position for tp, a in self._assigned.items()
                     if a.position is not None
                     and (self._member is None or self._member.owns(tp))}
            if owned:
                self._offsets.commit(self.group, owned, self._member_id)

    # -- lifecycle ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("consumer is closed")

    def close(self) -> None:
        """Commit (with auto-commit), leave the group at once; idempotent."""
        if self._closed:
            return
        try:
            if self.group is not None and self.config.enable_auto_commit:
                self._maybe_auto_commit(force=True)
        finally:
            self._closed = True
            if self._member is not None:
                self._member.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _GroupListener:
    """How the group membership tells its Consumer what changed (see
    ``MembershipListener``): the assignment follows, the user's callbacks run."""

    def __init__(self, consumer: Consumer, group: str) -> None:
        self._consumer = consumer
        self._group = group

    def partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        consumer = self._consumer
        consumer._set_assignment(set(consumer._assigned) | partitions)
        if consumer._on_assigned is not None:
            consumer._on_assigned(partitions)

    def partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        """With auto-commit, commit their positions first; then the user's callback;
        the partitions leave the assignment even if either failed."""
        consumer = self._consumer
        try:
            if consumer.config.enable_auto_commit:
                positions = {tp: a.position for tp, a in consumer._assigned.items()
                             if tp in partitions and a.position is not None}
                if positions:
                    consumer._offsets.commit(self._group, positions, consumer._member_id)
            if consumer._on_revoked is not None:
                consumer._on_revoked(partitions)
        finally:
            consumer._set_assignment(set(consumer._assigned) - partitions)

    def partitions_lost(self, partitions: set[TopicPartition]) -> None:
        consumer = self._consumer
        consumer._set_assignment(set(consumer._assigned) - partitions)


def _flat(pieces: list[list[Message]]) -> list[Message]:
    """The messages of ``_poll``'s pieces (one list per partition) as one list."""
    return pieces[0] if len(pieces) == 1 else list(itertools.chain.from_iterable(pieces))
