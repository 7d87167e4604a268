"""Tests of the reading side: consumers, groups, assignors, committed offsets, admin, compaction.

Helpers shared by these tests live here: filling partitions with recognisable
records and polling several group members in turn until the group settles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import mqlog
from mqlog.consumer import Consumer, TopicPartition
from mqlog.logstore._record import Message

#: How long an in-process group gets to settle after a join, leave or topic change.
SETTLE_TIMEOUT_S = 10.0
#: How long each member's poll waits while a group settles.
SETTLE_POLL_S = 0.02


def value_of(partition: int, offset: int) -> bytes:
    """The value :func:`fill` writes at ``offset`` of ``partition``."""
    return f"p{partition}-o{offset}".encode()


def fill(log: mqlog.Log, topic: str, partition: int, count: int) -> int:
    """Append ``count`` records of :func:`value_of` to ``partition``; return the end offset."""
    first = log.end_offset(topic, partition)
    log.append(topic, partition, [value_of(partition, first + i) for i in range(count)])
    return first + count


def tps(topic: str, *partitions: int) -> set[TopicPartition]:
    """The set of TopicPartitions of ``topic`` numbered ``partitions``."""
    return {TopicPartition(topic, number) for number in partitions}


def described(messages: Iterable[Message]) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of each message, for exact comparisons."""
    return [(m.partition, m.offset, bytes(m.value)) for m in messages]


def poll_until(consumers: Iterable[Consumer], done: Callable[[], bool],
               timeout_s: float = SETTLE_TIMEOUT_S) -> list[Message]:
    """Poll ``consumers`` in turn until ``done()``; return every message polled.

    Raises AssertionError with each consumer's assignment when ``done`` stays
    false for ``timeout_s`` (members only move partitions while they poll).
    """
    consumers = list(consumers)
    polled: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"group did not settle within {timeout_s} s; assignments: "
                f"{[sorted(c.assignment()) for c in consumers]}"
            )
        for consumer in consumers:
            polled.extend(consumer.poll(timeout=SETTLE_POLL_S))
    return polled


def owners_cover(consumers: Iterable[Consumer], expected: set[TopicPartition]) -> bool:
    """True when the consumers' assignments are disjoint and together are ``expected``."""
    assignments = [c.assignment() for c in consumers]
    union = set().union(*assignments)
    return union == expected and sum(len(a) for a in assignments) == len(expected)
