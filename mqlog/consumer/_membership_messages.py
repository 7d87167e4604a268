"""The messages of group membership: what a member is told, what it asks.

The listener a member implements, the results of join, heartbeat and sync,
and the checks of what a member sends (a join request, a leader's
assignment). Plain data: see ``_membership`` for the protocol.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from mqlog.consumer._assignors import ASSIGNORS
from mqlog.consumer._config import TopicPartition
from mqlog.consumer._group import Document, subscribed_topics
from mqlog.errors import ConfigError


class MembershipListener(Protocol):
    """What a membership tells its member; each call gets the partitions concerned.

    Calls come with the membership's lock held, from the thread that called
    ``join``/``sync``/``heartbeat``/``leave``, or from the watchdog thread for
    ``partitions_lost``.
    """

    def partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        """The member owns these now (their locks are held): it may fetch them."""

    def partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        """The member is about to lose these: it may still commit them now; their
        locks are released when this returns or raises."""

    def partitions_lost(self, partitions: set[TopicPartition]) -> None:
        """The member was removed from the group: these locks are released
        already; it must stop fetching them and cannot commit them."""


@dataclasses.dataclass(frozen=True)
class MemberSubscription:
    """A member as the group's leader sees it: who it is, which of the existing
    topics it subscribes to, and the assignors it supports (preferred first)."""

    client_id: str
    topics: frozenset[str]
    assignors: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class JoinResult:
    """The answer to a join: the member's id and the group's current generation.
    ``leader_id`` is the member with the lowest id in that generation's plan;
    ``members`` (every member's subscription) is given to the leader only, as
    Kafka's JoinGroup response does."""

    member_id: str
    generation: int
    leader_id: str
    members: dict[str, MemberSubscription]


@dataclasses.dataclass(frozen=True)
class HeartbeatResult:
    """``generation``: the newest generation the membership knows of;
    ``rebalance``: it differs from the one the heartbeat named, so the member
    must sync (Kafka's REBALANCE_IN_PROGRESS)."""

    generation: int
    rebalance: bool


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """The member's assignment in ``generation``: ``owned`` (locks held: fetch and
    commit these) and ``pending`` (assigned, but the previous owner has not let
    go yet; taken by a later heartbeat, announced by ``partitions_assigned``)."""

    generation: int
    owned: frozenset[TopicPartition]
    pending: frozenset[TopicPartition]


def check_join(client_id: str, topics: Sequence[str] | re.Pattern[str],
                assignors: Sequence[str], session_timeout_ms: int,
                rebalance_timeout_ms: int) -> str:
    """ConfigError for a bad join request; the assignor this member computes plans with."""
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"client_id must be a non-empty str, not {client_id!r}")
    if not isinstance(topics, re.Pattern) and (
            isinstance(topics, str) or not all(isinstance(t, str) for t in topics)):
        raise ConfigError("topics must be a sequence of topic names or a compiled pattern")
    for name, value in (("session_timeout_ms", session_timeout_ms),
                        ("rebalance_timeout_ms", rebalance_timeout_ms)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive int, not {value!r}")
    known = [name for name in assignors if name in ASSIGNORS]
    if not known:
        raise ConfigError(f"assignors {list(assignors)!r} name none of "
                          f"{', '.join(sorted(ASSIGNORS))}")
    return known[0]


def member_info(client_id: str, assignor: str, assignors: Sequence[str],
                topics: Sequence[str] | re.Pattern[str], remote_host: str | None,
                now_ms: int) -> Document:
    """What a member file holds: who the member is (a remote client's host and pid
    0, or this process's), how it assigns, what it subscribes to, since when."""
    return {
        "client_id": client_id,
        "host": socket.gethostname() if remote_host is None else remote_host,
        "pid": os.getpid() if remote_host is None else 0,
        "remote": remote_host is not None,
        "assignor": assignor,
        "assignors": list(assignors),
        "topics": list(topics) if not isinstance(topics, re.Pattern) else None,
        "pattern": topics.pattern if isinstance(topics, re.Pattern) else None,
        "joined_ms": now_ms,
    }


def unstamped(info: Document) -> Document:
    """A member file's content without its time: what a rejoin may leave unchanged."""
    return {key: value for key, value in info.items() if key != "joined_ms"}


def checked_assignment(plan: Document, assignment: Mapping[str, Iterable[TopicPartition]],
                        ) -> dict[str, list[TopicPartition]]:
    """A leader's assignment, checked against ``plan`` (see ``sync``): ConfigError
    unless each partition exists, goes to one member, and that member subscribes
    to its topic. Members it leaves out get nothing."""
    counts = plan.get("partitions", {})
    checked: dict[str, list[TopicPartition]] = {member: [] for member in plan["members"]}
    seen: set[TopicPartition] = set()
    for member_id, partitions in assignment.items():
        if member_id not in plan["members"]:
            raise ConfigError(f"the assignment names {member_id!r}, not a member of "
                              f"generation {plan['generation']}")
        topics = subscribed_topics(plan["members"][member_id], counts)
        for tp in partitions:
            tp = TopicPartition(*tp)
            if tp.topic not in topics or not 0 <= tp.partition < counts[tp.topic]:
                raise ConfigError(f"the assignment gives {member_id} {tp.topic}/{tp.partition}"
                                  f", not a partition of a topic it subscribes to")
            if tp in seen:
                raise ConfigError(f"the assignment gives {tp.topic}/{tp.partition} twice")
            seen.add(tp)
            checked[member_id].append(tp)
    return checked


def subscriptions(plan: Document) -> dict[str, MemberSubscription]:
    counts = plan.get("partitions", {})
    return {
        member_id: MemberSubscription(
            info["client_id"], frozenset(subscribed_topics(info, counts)),
            tuple(info.get("assignors") or (info["assignor"],)))
        for member_id, info in plan["members"].items()
    }


def named(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{topic}/{number}" for topic, number in partitions)
