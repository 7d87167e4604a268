"""Group administration: list, describe, reset or delete offsets, delete (what
``Log``'s group methods call, each with the log's engine).

Both kinds of group are covered: consumer groups (``Log.consumer``: committed
offsets in ``__consumer_offsets``) and queue groups (``Log.queue``: a share
state per partition, whose ``start`` plays the committed offset's part). The
two kinds share one namespace of names.

These read the group's files, the committed offsets and the share states;
they never join the group. Changes (``reset_offsets``, ``alter_offsets``,
``delete_group``) are refused with GroupNotEmptyError while the group has live
members, as Kafka refuses them: a running member would overwrite the change
with its next commit; ``delete_offsets`` only while a live member owns a
partition of the topic. An offset these set is never beyond its partition's end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import shutil
from collections.abc import Iterable, Mapping

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._dead_letters import MARKS_GROUP
from mqlog.consumer._group import (
    GROUPS_DIR,
    QUEUES_DIR,
    Document,
    group_directory,
    is_queue_group,
    live_members,
    queue_directory,
    read_plan,
)
from mqlog.consumer._offsets import OFFSETS_TOPIC, offset_store
from mqlog.consumer._share_state import ShareState
from mqlog.errors import (
    ConfigError,
    GroupNotEmptyError,
    MqlogError,
    OffsetOutOfRangeError,
    UnknownGroupError,
)
from mqlog.logstore import Engine, PartitionState
from mqlog.names import validate_name


@dataclasses.dataclass(frozen=True)
class MemberDescription:
    member_id: str
    client_id: str
    host: str
    pid: int
    assignment: list[TopicPartition]


@dataclasses.dataclass(frozen=True)
class GroupPartitionDescription:
    topic: str
    partition: int
    #: Consumer group: the committed offset. Queue group: the first unfinished
    #: record (everything below it is acknowledged or dead-lettered).
    committed_offset: int | None
    end_offset: int
    #: Consumer group: records after the committed offset. Queue group: records
    #: not finished yet (ready + in flight + delayed).
    lag: int
    #: Age (ms) of the oldest record not yet committed (finished); None when lag is 0.
    oldest_unconsumed_age_ms: int | None
    #: Member that owns the partition in the current plan, if any (queue groups:
    #: None, every worker shares every partition).
    member_id: str | None
    #: Queue groups only (None for consumer groups): records that may be handed out
    #: now, held by a worker, waiting for their time (a delay or a nack's back-off),
    #: and the counts so far of records expired and dead-lettered.
    ready: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    expired: int | None = None
    dead_lettered: int | None = None


@dataclasses.dataclass(frozen=True)
class GroupDescription:
    group: str
    #: "Empty" (no live member), "Stable" (the plan covers exactly the live
    #: members) or "Rebalancing" (a member joined or left and the plan lags).
    state: str
    generation: int
    members: list[MemberDescription]
    partitions: list[GroupPartitionDescription]
    #: "consumer" (``Log.consumer``) or "queue" (``Log.queue``).
    kind: str = "consumer"

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def list_groups(log: Engine) -> list[str]:
    """Consumer groups that have members' files or committed offsets, and queue
    groups; not the dead letters' marks kept beside the queue groups."""
    names = set()
    if log.has_topic(OFFSETS_TOPIC):  # never create it here
        names.update(offset_store(log).groups())
    for kind_dir in (GROUPS_DIR, QUEUES_DIR):
        root = os.path.join(log.path, kind_dir)
        if os.path.isdir(root):
            names.update(os.listdir(root))
    names.discard(MARKS_GROUP)
    return sorted(names)


def _members(log: Engine, group: str) -> dict[str, Document]:
    """Live members of either kind of group, by member id."""
    directory = queue_directory(log, group) if is_queue_group(log, group) else (
        group_directory(log, group))
    if not os.path.isdir(os.path.join(directory, "members")):
        return {}
    return live_members(directory, prune=not log.read_only)


def describe_group(log: Engine, group: str) -> GroupDescription:
    """State, generation, live members and per-partition offsets and lag; for a
    queue group also its depth: ready, in flight, delayed, expired and
    dead-lettered records per partition."""
    validate_name("group", group)
    if is_queue_group(log, group):
        return _describe_queue_group(log, group)
    directory = group_directory(log, group)
    committed = offset_store(log).group_offsets(group) if log.has_topic(OFFSETS_TOPIC) else {}
    if not committed and not os.path.isdir(directory):  # what list_groups would not list
        raise UnknownGroupError(f"unknown group {group!r}")
    plan = read_plan(directory)  # generation 0, nothing assigned, when there is none
    members = _members(log, group)
    owners = {TopicPartition(*tp): member for member, tps in plan["assignment"].items()
              for tp in tps if member in members}
    partitions = []
    now = log.now_ms()
    for tp in sorted(set(committed) | set(owners)):
        try:
            state = log.partition(tp.topic, tp.partition).state()
        except MqlogError:
            continue  # topic deleted since
        offset = committed[tp].offset if tp in committed else None
        position = state.log_start_offset if offset is None else max(offset,
                                                                      state.log_start_offset)
        lag = max(state.end_offset - position, 0)
        age = None
        if lag:
            oldest = log.partition(tp.topic, tp.partition).timestamp_at(position)
            age = None if oldest is None else max(now - oldest, 0)
        partitions.append(GroupPartitionDescription(
            tp.topic, tp.partition, offset, state.end_offset, lag, age, owners.get(tp)))
    if not members:
        status = "Empty"
    elif set(plan["members"]) == set(members):
        status = "Stable"
    else:
        status = "Rebalancing"
    described = [
        MemberDescription(member_id, info.get("client_id", ""), info.get("host", ""),
                          int(info.get("pid", 0)),
                          [TopicPartition(*tp) for tp in plan["assignment"].get(member_id, ())])
        for member_id, info in sorted(members.items())
    ]
    return GroupDescription(group, status, int(plan["generation"]), described, partitions)


def _describe_queue_group(log: Engine, group: str) -> GroupDescription:
    """A queue group: "Empty" or "Stable" (workers come and go without a plan),
    generation 0, every worker sharing every partition."""
    from mqlog.consumer._queue_views import describe_queue

    now = log.now_ms()
    partitions = []
    for row in describe_queue(log, group):
        age = None
        if row.lag:
            oldest = log.partition(row.topic, row.partition).timestamp_at(row.position)
            age = None if oldest is None else max(now - oldest, 0)
        partitions.append(GroupPartitionDescription(
            row.topic, row.partition, row.position, row.end_offset, row.lag,
            age, None, ready=row.ready, in_flight=row.in_flight, delayed=row.delayed,
            expired=row.expired, dead_lettered=row.dead_lettered))
    shared = [TopicPartition(p.topic, p.partition) for p in partitions]
    members = [MemberDescription(member_id, "", info.get("host", ""), int(info.get("pid", 0)),
                                 shared)
               for member_id, info in sorted(_members(log, group).items())]
    return GroupDescription(group, "Stable" if members else "Empty", 0, members, partitions,
                            kind="queue")


def reset_offsets(log: Engine, group: str, topic: str, partitions: Iterable[int] | None = None, *,
                  to: str | int | datetime.datetime | None = None, shift_by: int | None = None,
                  by_duration: datetime.timedelta | None = None,
                  dry_run: bool = False) -> dict[TopicPartition, tuple[int | None, int]]:
    """Move a group's committed offsets, as ``kafka-consumer-groups --reset-offsets``.

    Exactly one of: ``to`` = ``"earliest"``, ``"latest"``, ``"current"`` (the
    committed offset, or the end where none is, as Kafka's ``--to-current``),
    an offset, or a ``datetime`` (first record at or after it); ``shift_by`` =
    N (negative moves back; from the log start when nothing is committed);
    ``by_duration`` = a ``timedelta`` (first record at or after now minus it).
    Returns ``{TopicPartition: (current, new)}``; with ``dry_run`` nothing is
    written.

    Range, as kafka-consumer-groups: a target below a partition's log start
    becomes the log start; a shift or a current offset past the end becomes the
    end. An explicit offset (``to=N``) beyond a partition's end raises
    OffsetOutOfRangeError, writing nothing: a group cannot have consumed records
    not written yet (name the partitions it is meant for).

    For a queue group the position (first unfinished record) moves, as
    ``kafka-share-groups --reset-offsets`` moves a share group's start offset:
    every record from the new position on is new to the group again, with no
    deliveries counted; records below it count as finished.
    """
    validate_name("group", group)
    chosen = [name for name, value in (("to", to), ("shift_by", shift_by),
                                       ("by_duration", by_duration)) if value is not None]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of to=, shift_by=, by_duration=")
    if shift_by is not None and (not isinstance(shift_by, int) or isinstance(shift_by, bool)):
        raise TypeError(f"shift_by must be an int, not {type(shift_by).__name__}")
    if isinstance(to, str) and to not in ("earliest", "latest", "current"):
        raise ConfigError(f"to must be 'earliest', 'latest', 'current', an offset or a "
                          f"datetime, not {to!r}")
    if to is not None and not isinstance(to, (str, int, datetime.datetime)) or isinstance(
            to, bool):
        raise TypeError(f"to must be a str, int or datetime, not {type(to).__name__}")
    if by_duration is not None and not isinstance(by_duration, datetime.timedelta):
        raise TypeError("by_duration must be a datetime.timedelta")
    count = log.partition_count(topic)
    numbers = range(count) if partitions is None else list(partitions)
    plan: dict[TopicPartition, tuple[int | None, int]] = {}
    for number in numbers:
        partition = log.partition(topic, number)
        state = partition.state()
        tp = TopicPartition(topic, number)
        current = _current(log, group, tp)
        if to == "earliest":
            target = state.log_start_offset
        elif to in ("latest", "current"):
            target = state.end_offset if to == "latest" or current is None else current
        elif isinstance(to, datetime.datetime):
            target = partition.offset_for_time(_epoch_ms(to))
        elif isinstance(to, int):  # the strings and None are the branches above
            _check_not_beyond_end(tp, to, state)
            target = to
        elif shift_by is not None:
            target = (state.log_start_offset if current is None else current) + shift_by
        else:
            assert by_duration is not None  # exactly one of the three (checked above)
            target = partition.offset_for_time(
                log.now_ms() - int(by_duration.total_seconds() * 1000))
        plan[tp] = (current, min(max(target, state.log_start_offset), state.end_offset))
    if not dry_run:
        _apply(log, group, {tp: new for tp, (_current, new) in plan.items()})
    return plan


def alter_offsets(log: Engine, group: str, offsets: Mapping[TopicPartition, int], *,
                  dry_run: bool = False) -> dict[TopicPartition, tuple[int | None, int]]:
    """Set a group's committed offsets (a queue group's positions) to ``offsets``, of
    any topics, in one commit: a reset plan as ``kafka-consumer-groups
    --reset-offsets --from-file`` applies it.

    Every offset is checked before anything is written: the topic and partition
    must exist, an offset beyond the partition's end raises
    OffsetOutOfRangeError, one below its log start becomes the log start (as
    kafka-consumer-groups does). Returns ``{TopicPartition: (current, new)}``;
    with ``dry_run`` nothing is written. Refused with GroupNotEmptyError while
    the group has live members.
    """
    validate_name("group", group)
    plan: dict[TopicPartition, tuple[int | None, int]] = {}
    for key, offset in offsets.items():
        tp = TopicPartition(*key)
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offsets must be ints, not {type(offset).__name__}")
        state = log.partition(tp.topic, tp.partition).state()
        _check_not_beyond_end(tp, offset, state)
        plan[tp] = (_current(log, group, tp), max(offset, state.log_start_offset))
    if not dry_run:
        _apply(log, group, {tp: new for tp, (_current, new) in plan.items()})
    return plan


def _check_not_beyond_end(tp: TopicPartition, offset: int, state: PartitionState) -> None:
    if offset > state.end_offset:
        raise OffsetOutOfRangeError(
            f"offset {offset} is beyond the end of {tp.topic}/{tp.partition} "
            f"({state.end_offset}): a group cannot have consumed records not written yet",
            offset=offset, start_offset=state.log_start_offset, end_offset=state.end_offset)


def _current(log: Engine, group: str, tp: TopicPartition) -> int | None:
    """The group's committed offset (a queue group's position) in ``tp``, or None."""
    if is_queue_group(log, group):
        return _queue_position(log, group, tp)
    value = offset_store(log).committed(group, tp)
    return None if value is None else value.offset


def _apply(log: Engine, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Write checked offsets: one commit, or a queue group's share states (refused
    while the group has live members)."""
    _refuse_if_active(log, group, "reset offsets of")
    if is_queue_group(log, group):
        for tp, new in offsets.items():
            _reset_queue_partition(log, group, tp, new)
    else:
        offset_store(log).commit(group, offsets, "reset-offsets")


def delete_offsets(log: Engine, group: str, topics: str | Iterable[str] | None = None,
                   partitions: Iterable[int] | None = None, *,
                   dry_run: bool = False) -> list[TopicPartition]:
    """Forget a group's committed offsets (a queue group's positions and delivery
    state) for ``topics`` (a name or several), or for every topic (None), as
    ``kafka-consumer-groups --delete-offsets``; ``partitions`` narrows it to
    those numbers of one named topic. The topics need not exist any more.
    Afterwards the group starts those partitions by its ``auto_offset_reset``.

    Returns the partitions forgotten, sorted (empty when the group had none of
    them); with ``dry_run`` nothing is written. Raises UnknownGroupError for an
    unknown group, and GroupNotEmptyError, writing nothing, while a live member
    owns a partition of one of the topics (any live worker, for a queue group:
    workers share every partition), as Kafka refuses while the group is
    subscribed to the topic: the member would commit the offsets again.
    """
    validate_name("group", group)
    named = None if topics is None else ({topics} if isinstance(topics, str) else set(topics))
    if partitions is not None:
        if named is None or len(named) != 1:
            raise ConfigError("partitions= needs exactly one topic")
        partitions = set(partitions)
    if group not in list_groups(log):
        raise UnknownGroupError(f"unknown group {group!r}")
    queue = is_queue_group(log, group)
    held = _queue_offsets(log, group) if queue else set(
        offset_store(log).group_offsets(group))
    doomed = sorted(tp for tp in held if (named is None or tp.topic in named)
                    and (partitions is None or tp.partition in partitions))
    if dry_run:
        return doomed
    _refuse_if_owned(log, group, {tp.topic for tp in held} if named is None else named, queue)
    if queue:
        from mqlog.consumer._queue_files import reasons_path, share_state_path

        directory = queue_directory(log, group)
        for tp in doomed:
            for path in (share_state_path(directory, tp), reasons_path(directory, tp)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
    else:
        offset_store(log).delete(group, doomed)
    return doomed


def _queue_offsets(log: Engine, group: str) -> set[TopicPartition]:
    """The partitions a queue group has a share state for."""
    directory = queue_directory(log, group)
    found: set[TopicPartition] = set()
    for topic in os.listdir(directory) if os.path.isdir(directory) else ():
        path = os.path.join(directory, topic)
        if topic != "members" and os.path.isdir(path):
            found.update(TopicPartition(topic, int(name)) for name in os.listdir(path)
                         if name.isdigit())
    return found


def _refuse_if_owned(log: Engine, group: str, topics: set[str], queue: bool) -> None:
    """GroupNotEmptyError if a live member owns a partition of ``topics`` (queue
    groups: if any worker lives)."""
    if not topics:
        return
    members = _members(log, group)
    if not queue:
        plan = read_plan(group_directory(log, group))
        members = {member: info for member, info in members.items()
                   if any(tp[0] in topics for tp in plan["assignment"].get(member, ()))}
    if members:
        names = ", ".join(f"{m} ({_who(info)})" for m, info in sorted(members.items()))
        raise GroupNotEmptyError(
            f"cannot delete the offsets of group {group!r} for {', '.join(sorted(topics))} "
            f"while live members own its partitions: {names}")


def _queue_position(log: Engine, group: str, tp: TopicPartition) -> int | None:
    """A queue group's first unfinished offset in ``tp``; None before any worker
    served the partition."""
    from mqlog.consumer._queue_files import WINDOW_RECORDS, share_state_path

    path = share_state_path(queue_directory(log, group), tp)
    if not os.path.exists(path):
        return None
    state = ShareState(path, WINDOW_RECORDS, 0, read_only=log.read_only)
    try:
        return state.position()
    finally:
        state.close()


def _reset_queue_partition(log: Engine, group: str, tp: TopicPartition, offset: int) -> None:
    """Move a queue group's position in ``tp`` to ``offset``: every record from there
    on is new to the group again (delivery counts and nack reasons are dropped)."""
    from mqlog.consumer._queue_files import (
        WINDOW_RECORDS,
        reasons_path,
        share_state_path,
        state_is_durable,
    )

    directory = queue_directory(log, group)
    state = ShareState(share_state_path(directory, tp), WINDOW_RECORDS, offset,
                       state_is_durable(log.partition(tp.topic, tp.partition)))
    try:
        state.reset(offset)
    finally:
        state.close()
    try:
        os.unlink(reasons_path(directory, tp))
    except FileNotFoundError:
        pass


def delete_group(log: Engine, group: str) -> None:
    """Forget a group: its committed offsets (or share states) and its files. A
    queue group's dead-letter topic is a topic of its own and stays."""
    validate_name("group", group)
    if group not in list_groups(log):
        raise UnknownGroupError(f"unknown group {group!r}")
    _refuse_if_active(log, group, "delete")
    if is_queue_group(log, group):
        shutil.rmtree(queue_directory(log, group), ignore_errors=True)
        return
    store = offset_store(log)
    store.delete(group, store.group_offsets(group))
    shutil.rmtree(group_directory(log, group), ignore_errors=True)


def _refuse_if_active(log: Engine, group: str, action: str) -> None:
    members = _members(log, group)
    if members:
        names = ", ".join(f"{m} ({_who(info)})" for m, info in sorted(members.items()))
        raise GroupNotEmptyError(
            f"cannot {action} group {group!r} while it has live members: {names}"
        )


def _who(info: Document) -> str:
    """``client C, pid P on H`` of a member's file (queue workers have no client id)."""
    where = f"pid {info.get('pid')} on {info.get('host')}"
    return f"client {info['client_id']}, {where}" if info.get("client_id") else where


def _epoch_ms(moment: datetime.datetime) -> int:
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive: local time, as the Kafka tool reads it
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError) as error:  # e.g. datetime.min in a zone east of UTC
        raise ConfigError(f"cannot read {moment!r} as a time: {error}") from None


