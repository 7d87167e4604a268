"""How a group divides partitions among its members: range, roundrobin, sticky.

Each assignor is a pure function: given each member's subscribed topics, each
topic's partition count and (for sticky) the previous assignment, it returns
``{member_id: sorted list of TopicPartition}``. A partition goes to exactly
one member subscribed to its topic; members are ordered by id so every member
computing an assignment gets the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mqlog.consumer._config import TopicPartition

Assignment = dict[str, list[TopicPartition]]
Assignor = Callable[
    [Mapping[str, set[str]], Mapping[str, int], Mapping[str, list[TopicPartition]]], Assignment
]


def _subscribers(subscriptions: Mapping[str, set[str]], topic: str) -> list[str]:
    return sorted(member for member, topics in subscriptions.items() if topic in topics)


def range_assign(subscriptions: Mapping[str, set[str]], partition_counts: Mapping[str, int],
                 previous: Mapping[str, list[TopicPartition]] | None = None) -> Assignment:
    """Per topic, contiguous ranges of partitions; the first members get one more
    when the count does not divide (Kafka's RangeAssignor)."""
    result: Assignment = {member: [] for member in subscriptions}
    for topic in sorted(partition_counts):
        members = _subscribers(subscriptions, topic)
        if not members:
            continue
        share, extra = divmod(partition_counts[topic], len(members))
        start = 0
        for index, member in enumerate(members):
            size = share + (1 if index < extra else 0)
            result[member].extend(TopicPartition(topic, p) for p in range(start, start + size))
            start += size
    return result


def roundrobin_assign(subscriptions: Mapping[str, set[str]], partition_counts: Mapping[str, int],
                      previous: Mapping[str, list[TopicPartition]] | None = None) -> Assignment:
    """All partitions in (topic, partition) order dealt to the subscribed members in turn."""
    result: Assignment = {member: [] for member in subscriptions}
    members = sorted(subscriptions)
    turn = 0
    for topic in sorted(partition_counts):
        for number in range(partition_counts[topic]):
            for step in range(len(members)):
                member = members[(turn + step) % len(members)]
                if topic in subscriptions[member]:
                    result[member].append(TopicPartition(topic, number))
                    turn = (turn + step + 1) % len(members)
                    break
    return result


def sticky_assign(subscriptions: Mapping[str, set[str]], partition_counts: Mapping[str, int],
                  previous: Mapping[str, list[TopicPartition]] | None = None) -> Assignment:
    """Balanced (member counts differ by at most one where subscriptions allow)
    while moving as few partitions as possible from their previous owners."""
    previous = previous or {}
    members = sorted(subscriptions)
    result: Assignment = {member: [] for member in members}
    if not members:
        return result
    every = [TopicPartition(topic, number) for topic in sorted(partition_counts)
             for number in range(partition_counts[topic])]
    eligible = {tp: [m for m in members if tp.topic in subscriptions[m]] for tp in every}
    assignable = [tp for tp in every if eligible[tp]]
    ceiling = -(-len(assignable) // len(members))
    owner: dict[TopicPartition, str] = {}
    for member in members:  # keep what each member had, up to the ceiling
        for tp in sorted(previous.get(member, ())):
            if tp in eligible and member in eligible[tp] and tp not in owner and (
                len(result[member]) < ceiling
            ):
                owner[tp] = member
                result[member].append(tp)
    for tp in assignable:  # give the rest to the least loaded eligible member
        if tp not in owner:
            member = min(eligible[tp], key=lambda m: (len(result[m]), m))
            owner[tp] = member
            result[member].append(tp)
    _balance(result, owner, eligible)
    return {member: sorted(tps) for member, tps in result.items()}


def _balance(result: Assignment, owner: dict[TopicPartition, str],
             eligible: Mapping[TopicPartition, list[str]]) -> None:
    """Move single partitions from the most to the least loaded eligible member
    while that narrows the gap (bounded: each move lowers the spread)."""
    for _ in range(len(owner) + 1):
        moved = False
        for donor in sorted(result, key=lambda m: (-len(result[m]), m)):
            for tp in sorted(result[donor], reverse=True):
                taker = min(eligible[tp], key=lambda m: (len(result[m]), m))
                if len(result[taker]) + 1 < len(result[donor]):
                    result[donor].remove(tp)
                    result[taker].append(tp)
                    owner[tp] = taker
                    moved = True
                    break
            if moved:
                break
        if not moved:
            return


ASSIGNORS: dict[str, Assignor] = {
    "range": range_assign,
    "roundrobin": roundrobin_assign,
    "sticky": sticky_assign,
}
