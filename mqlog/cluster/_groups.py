"""Consumer groups of a cluster: list, describe (lag, members), reset offsets, delete.

What ``Log``'s group methods do on a log directory, through Kafka's admin
requests (ListGroups, DescribeGroups, OffsetFetch, OffsetCommit for a group
with no members, DeleteGroups). The same rules hold: changes are refused
with GroupNotEmptyError while the group has live members (checked here
first, and by the cluster), an offset set is never beyond its partition's end,
a target below the log start becomes the log start. Lag follows
:func:`mqlog.monitor.partition_lag`. A cluster does not report a group's
generation: descriptions carry -1.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient

from mqlog.cluster._errors import as_mqlog_error, translated
from mqlog.cluster._reader import Reader
from mqlog.consumer import (
    GroupDescription,
    GroupPartitionDescription,
    MemberDescription,
    TopicPartition,
)
from mqlog.errors import (
    ConfigError,
    GroupNotEmptyError,
    OffsetOutOfRangeError,
    UnknownGroupError,
    UnknownMemberError,
)
from mqlog.monitor import partition_lag
from mqlog.names import validate_name

#: Longest an admin request waits for the cluster.
ADMIN_TIMEOUT_S = 30.0
#: Kafka's group states as mqlog names them (docs/consumers.md).
_STATES = {
    ConsumerGroupState.EMPTY: "Empty",
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.PREPARING_REBALANCING: "Rebalancing",
    ConsumerGroupState.COMPLETING_REBALANCING: "Rebalancing",
}
#: A cluster does not tell a group's generation.
UNKNOWN_GENERATION = -1

Plan = dict[TopicPartition, tuple[int | None, int]]


class ClusterGroups:
    """The group administration of one cluster log (see the module)."""

    def __init__(self, admin: AdminClient, reader: Reader,
                 partition_count: Callable[[str], int]) -> None:
        self._admin = admin
        self._reader = reader
        self._partition_count = partition_count

    def list_groups(self) -> list[str]:
        with translated("list groups"):
            listed = self._admin.list_consumer_groups(
                request_timeout=ADMIN_TIMEOUT_S).result(ADMIN_TIMEOUT_S)
        return sorted(group.group_id for group in listed.valid)

    def describe_group(self, group: str) -> GroupDescription:
        """State, members and each partition's committed offset, end, lag and the
        age of the oldest unconsumed record."""
        validate_name("group", group)
        with translated(f"describe group {group!r}"):
            found = self._admin.describe_consumer_groups(
                [group], request_timeout=ADMIN_TIMEOUT_S)[group].result(ADMIN_TIMEOUT_S)
        if found.state == ConsumerGroupState.DEAD or group not in self.list_groups():
            raise UnknownGroupError(f"unknown group {group!r}")
        committed = self.committed_offsets(group)
        members = [MemberDescription(m.member_id, m.client_id or "", m.host or "", 0,
                                     sorted(TopicPartition(p.topic, p.partition)
                                            for p in m.assignment.topic_partitions))
                   for m in sorted(found.members, key=lambda m: m.member_id)]
        owners = {tp: m.member_id for m in members for tp in m.assignment}
        now = int(time.time() * 1000)
        partitions = []
        for tp in sorted(set(committed) | set(owners)):
            start, end = self._reader.watermarks(tp.topic, tp.partition)
            offset = committed.get(tp)
            lag = partition_lag(offset, start, end)
            age = None
            if lag:
                position = max(offset if offset is not None else start, start)
                first = self._reader.read(tp.topic, tp.partition, position, 1, None)
                age = max(now - first[0].timestamp, 0) if first else None
            partitions.append(GroupPartitionDescription(tp.topic, tp.partition, offset, end,
                                                        lag, age, owners.get(tp)))
        return GroupDescription(group, _STATES.get(found.state, "Empty"), UNKNOWN_GENERATION,
                                members, partitions)

    def committed_offsets(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets (partitions with none left out)."""
        with translated(f"committed offsets of group {group!r}"):
            found = self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)],
                request_timeout=ADMIN_TIMEOUT_S)[group].result(ADMIN_TIMEOUT_S)
        out = {}
        for entry in found.topic_partitions or ():
            if entry.error is not None:
                raise as_mqlog_error(entry.error, f"committed offsets of group {group!r}")
            if entry.offset >= 0:
                out[TopicPartition(entry.topic, entry.partition)] = entry.offset
        return out

    def reset_offsets(self, group: str, topic: str, partitions: Iterable[int] | None, *,
                      to: str | int | datetime.datetime | None,
                      shift_by: int | None, by_duration: datetime.timedelta | None,
                      dry_run: bool) -> Plan:
        """As :func:`mqlog.consumer.admin.reset_offsets`, on the cluster."""
        validate_name("group", group)
        _check_target(to, shift_by, by_duration)
        count = self._partition_count(topic)
        numbers = list(range(count)) if partitions is None else list(partitions)
        committed = self.committed_offsets(group) if group in self.list_groups() else {}
        moment = None
        if isinstance(to, datetime.datetime):
            moment = _epoch_ms(to)
        elif by_duration is not None:
            moment = int(time.time() * 1000) - int(by_duration.total_seconds() * 1000)
        by_time = ({} if moment is None
                   else self._reader.offsets_for_time(topic, numbers, moment))
        plan: Plan = {}
        for number in numbers:
            tp = TopicPartition(topic, number)
            start, end = self._reader.watermarks(topic, number)
            current = committed.get(tp)
            if to == "earliest":
                target = start
            elif to in ("latest", "current"):
                target = end if to == "latest" or current is None else current
            elif moment is not None:
                target = by_time[number]
            elif isinstance(to, int):
                _check_not_beyond_end(tp, to, start, end)
                target = to
            else:
                assert shift_by is not None  # _check_target: exactly one
                target = (start if current is None else current) + shift_by
            plan[tp] = (current, min(max(target, start), end))
        if not dry_run:
            self._apply(group, {tp: new for tp, (_current, new) in plan.items()})
        return plan

    def alter_offsets(self, group: str, offsets: Mapping[TopicPartition, int], *,
                      dry_run: bool) -> Plan:
        """As :func:`mqlog.consumer.admin.alter_offsets`, on the cluster."""
        validate_name("group", group)
        committed = self.committed_offsets(group) if group in self.list_groups() else {}
        plan: Plan = {}
        for key, offset in offsets.items():
            tp = TopicPartition(*key)
            if not isinstance(offset, int) or isinstance(offset, bool):
                raise TypeError(f"offsets must be ints, not {type(offset).__name__}")
            start, end = self._reader.watermarks(tp.topic, tp.partition)
            _check_not_beyond_end(tp, offset, start, end)
            plan[tp] = (committed.get(tp), max(offset, start))
        if not dry_run:
            self._apply(group, {tp: new for tp, (_current, new) in plan.items()})
        return plan

    def _apply(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` for a group without live members."""
        self._refuse_if_active(group, "reset offsets of")
        if not offsets:
            return
        try:
            with translated(f"reset offsets of group {group!r}"):
                done = self._admin.alter_consumer_group_offsets(
                    [ConsumerGroupTopicPartitions(group, [
                        KafkaPartition(tp.topic, tp.partition, offset)
                        for tp, offset in sorted(offsets.items())])],
                    request_timeout=ADMIN_TIMEOUT_S)[group].result(ADMIN_TIMEOUT_S)
            for entry in done.topic_partitions or ():
                if entry.error is not None:
                    raise as_mqlog_error(entry.error, f"reset offsets of group {group!r}")
        except UnknownMemberError:  # Kafka's answer to an admin commit while members live
            raise GroupNotEmptyError(f"cannot reset offsets of group {group!r} while it has "
                                     f"live members") from None

    def delete_group(self, group: str) -> None:
        """Forget a group and its committed offsets (refused while it has members)."""
        validate_name("group", group)
        if group not in self.list_groups():
            raise UnknownGroupError(f"unknown group {group!r}")
        self._refuse_if_active(group, "delete")
        with translated(f"delete group {group!r}"):
            self._admin.delete_consumer_groups(
                [group], request_timeout=ADMIN_TIMEOUT_S)[group].result(ADMIN_TIMEOUT_S)

    def _refuse_if_active(self, group: str, action: str) -> None:
        with translated(f"describe group {group!r}"):
            found = self._admin.describe_consumer_groups(
                [group], request_timeout=ADMIN_TIMEOUT_S)[group].result(ADMIN_TIMEOUT_S)
        if found.members:
            names = ", ".join(f"{m.member_id} (client {m.client_id} on {m.host})"
                              for m in found.members)
            raise GroupNotEmptyError(
                f"cannot {action} group {group!r} while it has live members: {names}")


def _check_target(to: object, shift_by: object, by_duration: object) -> None:
    """Exactly one target, of the right type (as on a log directory)."""
    chosen = [value for value in (to, shift_by, by_duration) if value is not None]
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


def _check_not_beyond_end(tp: TopicPartition, offset: int, start: int, end: int) -> None:
    if offset > end:
        raise OffsetOutOfRangeError(
            f"offset {offset} is beyond the end of {tp.topic}/{tp.partition} ({end}): a group "
            f"cannot have consumed records not written yet",
            offset=offset, start_offset=start, end_offset=end)


def _epoch_ms(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive: local time, as the Kafka tool reads it
    return int(moment.timestamp() * 1000)
