"""The state the group coordinator keeps per Kafka group and member, and the
outcomes it hands to the handlers.

A Kafka group goes through Kafka's states::

    Empty -> PreparingRebalance -> CompletingRebalance -> Stable
               ^   (joins held)       (followers' syncs       |
               |                       held until the         |
               +---- a join, a leave, an expiry, a plan ------+
                     change (topic grew)

Invariants: a member has at most one held JoinGroup (``join_waiter``) and one
held SyncGroup (``sync_waiter``); a held request is answered exactly once
(its future gets a result, or was cancelled because its connection closed).
``generation`` is the generation of mqlog's plan that the last completed
join phase handed out.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode

from mqlog.consumer import GroupMembership, TopicPartition

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"


@dataclasses.dataclass(frozen=True)
class JoinOutcome:
    """What a JoinGroup is answered: the generation, the protocol chosen, the
    leader, the member's id; ``members`` (id, group instance id of a static
    member, metadata in the chosen protocol) for the leader only."""

    error: ErrorCode
    member_id: str = ""
    generation: int = -1
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str = ""
    members: tuple[tuple[str, str | None, bytes], ...] = ()
    #: KIP-814: the leader is told the members but must not assign (a static
    #: leader that joined again into a stable group).
    skip_assignment: bool = False


@dataclasses.dataclass(frozen=True)
class SyncOutcome:
    """What a SyncGroup is answered: the member's assignment bytes, as its leader
    sent them."""

    error: ErrorCode
    protocol_type: str | None = None
    protocol: str | None = None
    assignment: bytes = b""


@dataclasses.dataclass(frozen=True)
class MemberSnapshot:
    member_id: str
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes
    instance_id: str | None = None


@dataclasses.dataclass(frozen=True)
class GroupSnapshot:
    """A group as DescribeGroups and ListGroups show it."""

    group: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[MemberSnapshot, ...]


@dataclasses.dataclass(eq=False)
class Member:
    """One Kafka member: its mqlog membership and what Kafka's protocol needs.

    ``member_id`` is the id Kafka clients know; ``mqlog_id`` the membership's
    member id (its member file and owner locks). They are the same until a
    static member's instance joins again: the process gets a new ``member_id``
    (the old one is fenced) and keeps ``mqlog_id``, with its partitions."""

    member_id: str
    membership: GroupMembership
    client_id: str
    client_host: str
    protocols: tuple[tuple[str, bytes], ...]
    session_s: float
    rebalance_s: float
    last_seen: float
    join_waiter: asyncio.Future[JoinOutcome] | None = None
    sync_waiter: asyncio.Future[SyncOutcome] | None = None
    #: The generation this member last synced, its assignment bytes and the
    #: partitions they give it (some may wait for their previous owner).
    synced: int = -1
    assignment: bytes = b""
    wanted: frozenset[TopicPartition] = frozenset()
    #: A static member's ``group.instance.id`` (KIP-345); None for a dynamic one.
    instance_id: str | None = None
    mqlog_id: str = ""

    def __post_init__(self) -> None:
        self.mqlog_id = self.mqlog_id or self.member_id

    def joined(self, client_id: str, client_host: str, protocols: tuple[tuple[str, bytes], ...],
               session_ms: int, rebalance_ms: int, now: float) -> None:
        """Take what a JoinGroup of this member says (its latest)."""
        self.client_id, self.client_host, self.protocols = client_id, client_host, protocols
        self.session_s, self.rebalance_s = session_ms / 1000, rebalance_ms / 1000
        self.last_seen = now

    def answer_held(self, code: ErrorCode) -> None:
        """Answer this member's held JoinGroup and SyncGroup with ``code`` (it is
        removed, or its instance joined again) and forget them."""
        for waiter, outcome in ((self.join_waiter, JoinOutcome(code)),
                                (self.sync_waiter, SyncOutcome(code))):
            if waiter is not None and not waiter.done():
                waiter.set_result(outcome)  # type: ignore[arg-type]
        self.join_waiter = self.sync_waiter = None

    @property
    def protocol_names(self) -> list[str]:
        return [name for name, _metadata in self.protocols]

    def metadata(self, protocol: str | None) -> bytes:
        return next((data for name, data in self.protocols if name == protocol), b"")

    def joining(self) -> bool:
        """True while a JoinGroup of this member is held (and still wanted)."""
        return self.join_waiter is not None and not self.join_waiter.done()

    def waiting(self) -> bool:
        """True while a JoinGroup or SyncGroup of this member is held: its session
        does not run out meanwhile, as in Kafka."""
        return self.joining() or (self.sync_waiter is not None and not self.sync_waiter.done())


@dataclasses.dataclass(eq=False)
class Group:
    """One Kafka group; every change happens under ``lock``."""

    name: str
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    state: str = EMPTY
    members: dict[str, Member] = dataclasses.field(default_factory=dict)
    protocol_type: str = ""
    protocol: str = ""
    generation: int = 0
    leader: str = ""
    #: PreparingRebalance: when the join phase ends at the latest, and (for a
    #: group that was empty) until when it waits for members starting together.
    join_deadline: float = 0.0
    gather_until: float | None = None
    gather_limit: float = 0.0
    #: CompletingRebalance: when members that did not sync are removed.
    sync_deadline: float = 0.0
    #: Static members: group instance id -> the member id it holds now. A request
    #: naming the instance with another member id is fenced.
    instances: dict[str, str] = dataclasses.field(default_factory=dict)

    def fenced(self, member_id: str, instance_id: str | None) -> bool:
        """Whether a request naming static instance ``instance_id`` comes from a
        member id the instance no longer holds (another process joined as it)."""
        if instance_id is None:
            return False
        holder = self.instances.get(instance_id)
        return holder is not None and holder != member_id

    def due(self, now: float) -> bool:
        """Whether the coordinator's timer may have something to do for this group
        (read without its lock; the timer checks again under it)."""
        if self.state == PREPARING or (self.state == COMPLETING and now >= self.sync_deadline):
            return True
        return any(not m.waiting() and now - m.last_seen > m.session_s
                   for m in self.members.values())

    def snapshot(self) -> GroupSnapshot:
        return GroupSnapshot(self.name, self.state, self.protocol_type, self.protocol, tuple(
            MemberSnapshot(m.member_id, m.client_id, m.client_host, m.metadata(self.protocol),
                           m.assignment, m.instance_id)
            for m in sorted(self.members.values(), key=lambda m: m.member_id)))


Outcome = TypeVar("Outcome", JoinOutcome, SyncOutcome)


async def answer(change: Coroutine[Any, Any, asyncio.Future[Outcome] | Outcome]) -> Outcome:
    """Run ``change`` (a step of the coordinator) to its end even if the request
    is cancelled (its connection closed), then await the answer it may hold
    back. A request cancelled meanwhile cancels its held answer, so the group
    does not count on a member that will never read it."""
    running = asyncio.ensure_future(change)
    try:
        held = await asyncio.shield(running)
    except asyncio.CancelledError:
        running.add_done_callback(_cancel_held)
        raise
    if isinstance(held, asyncio.Future):
        return await held
    return held


def _cancel_held(running: asyncio.Future[Any]) -> None:
    if not running.cancelled() and running.exception() is None and isinstance(
            running.result(), asyncio.Future):
        running.result().cancel()
