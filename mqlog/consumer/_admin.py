"""Group administration: list, describe, reset offsets, delete (``Log`` methods).

These read the group's files and the committed offsets; they never join the
group. Changes (``reset_offsets``, ``delete_group``) are refused with
GroupNotEmptyError while the group has live members, as Kafka refuses them:
a running member would overwrite the change with its next commit.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._group import GROUPS_DIR, group_directory, live_members, read_plan
from mqlog.errors import GroupNotEmptyError, MqlogError, UnknownGroupError

if TYPE_CHECKING:
    from mqlog.logstore._log import Log


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
    committed_offset: int | None
    end_offset: int
    lag: int
    #: Age (ms) of the oldest record not yet committed; None when lag is 0.
    oldest_unconsumed_age_ms: int | None
    #: Member that owns the partition in the current plan, if any.
    member_id: str | None


@dataclasses.dataclass(frozen=True)
class GroupDescription:
    group: str
    #: "Empty" (no live member), "Stable" (the plan covers exactly the live
    #: members) or "Rebalancing" (a member joined or left and the plan lags).
    state: str
    generation: int
    members: list[MemberDescription]
    partitions: list[GroupPartitionDescription]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def list_groups(log: Log) -> list[str]:
    """Groups that have members' files or committed offsets."""
    names = set(log._offset_store().groups())
    root = os.path.join(log.path, GROUPS_DIR)
    if os.path.isdir(root):
        names.update(os.listdir(root))
    return sorted(names)


def _members(log: Log, group: str) -> dict[str, dict]:
    directory = group_directory(log, group)
    if not os.path.isdir(os.path.join(directory, "members")):
        return {}
    return live_members(directory)


def describe_group(log: Log, group: str) -> GroupDescription:
    """State, generation, live members and per-partition offsets and lag."""
    if group not in list_groups(log):
        raise UnknownGroupError(f"unknown group {group!r}")
    directory = group_directory(log, group)
    plan = read_plan(directory) if os.path.isdir(directory) else {
        "generation": 0, "assignment": {}, "members": {}}
    members = _members(log, group)
    owners = {TopicPartition(*tp): member for member, tps in plan["assignment"].items()
              for tp in tps if member in members}
    committed = log._offset_store().group_offsets(group)
    partitions = []
    now = log.now_ms()
    for tp in sorted(set(committed) | set(owners)):
        try:
            state = log._partition(tp.topic, tp.partition).state()
        except MqlogError:
            continue  # topic deleted since
        offset = committed[tp].offset if tp in committed else None
        position = state.log_start_offset if offset is None else max(offset,
                                                                      state.log_start_offset)
        lag = max(state.end_offset - position, 0)
        age = None
        if lag:
            oldest = log._partition(tp.topic, tp.partition).timestamp_at(position)
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


def reset_offsets(log: Log, group: str, topic: str, partitions: Iterable[int] | None = None, *,
                  to: str | int | datetime.datetime | None = None, shift_by: int | None = None,
                  by_duration: datetime.timedelta | None = None,
                  dry_run: bool = False) -> dict[TopicPartition, tuple[int | None, int]]:
    """Move a group's committed offsets, as ``kafka-consumer-groups --reset-offsets``.

    Exactly one of: ``to`` = ``"earliest"``, ``"latest"``, an offset, or a
    ``datetime`` (first record at or after it); ``shift_by`` = N (negative moves
    back; from the log start when nothing is committed); ``by_duration`` = a
    ``timedelta`` (first record at or after now minus it). Targets are clamped
    to each partition's valid range. Returns ``{TopicPartition: (current,
    new)}``; with ``dry_run`` nothing is written.
    """
    chosen = [name for name, value in (("to", to), ("shift_by", shift_by),
                                       ("by_duration", by_duration)) if value is not None]
    if len(chosen) != 1:
        raise ValueError("give exactly one of to=, shift_by=, by_duration=")
    handle = log._topic(topic)
    numbers = range(handle.partition_count) if partitions is None else list(partitions)
    store = log._offset_store()
    plan: dict[TopicPartition, tuple[int | None, int]] = {}
    for number in numbers:
        partition = handle.partition(number)
        state = partition.state()
        tp = TopicPartition(topic, number)
        current_value = store.committed(group, tp)
        current = None if current_value is None else current_value.offset
        if isinstance(to, str):
            if to not in ("earliest", "latest"):
                raise ValueError(f"to must be 'earliest', 'latest', an offset or a datetime, "
                                 f"not {to!r}")
            target = state.log_start_offset if to == "earliest" else state.end_offset
        elif isinstance(to, datetime.datetime):
            target = partition.offset_for_time(_epoch_ms(to))
        elif to is not None:
            if not isinstance(to, int) or isinstance(to, bool):
                raise TypeError(f"to must be a str, int or datetime, not {type(to).__name__}")
            target = to
        elif shift_by is not None:
            target = (state.log_start_offset if current is None else current) + shift_by
        else:
            if not isinstance(by_duration, datetime.timedelta):
                raise TypeError("by_duration must be a datetime.timedelta")
            target = partition.offset_for_time(
                log.now_ms() - int(by_duration.total_seconds() * 1000))
        plan[tp] = (current, min(max(target, state.log_start_offset), state.end_offset))
    if not dry_run:
        _refuse_if_active(log, group, "reset offsets of")
        store.commit(group, {tp: new for tp, (_current, new) in plan.items()}, "reset-offsets")
    return plan


def delete_group(log: Log, group: str) -> None:
    """Forget a group: its committed offsets and its files."""
    if group not in list_groups(log):
        raise UnknownGroupError(f"unknown group {group!r}")
    _refuse_if_active(log, group, "delete")
    store = log._offset_store()
    store.delete(group, store.group_offsets(group))
    shutil.rmtree(group_directory(log, group), ignore_errors=True)


def _refuse_if_active(log: Log, group: str, action: str) -> None:
    members = _members(log, group)
    if members:
        names = ", ".join(
            f"{m} (client {i.get('client_id')}, pid {i.get('pid')} on {i.get('host')})"
            for m, i in sorted(members.items())
        )
        raise GroupNotEmptyError(
            f"cannot {action} group {group!r} while it has live members: {names}"
        )


def _epoch_ms(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive: local time, as the Kafka tool reads it
    return int(moment.timestamp() * 1000)

