"""Kafka's group coordinator over mqlog's group membership.

Every Kafka member of a group is one :class:`~mqlog.consumer.GroupMembership`
held by the server (``watchdog=False``: the coordinator keeps the deadlines),
so its member file, its owner locks, the group's plan, generations and commit
authority are mqlog's, and ``mqlog lag``, ``Log.describe_group`` and
``Log.reset_offsets`` see Kafka groups as any other. On top the coordinator
runs Kafka's state machine (see ``_group_state``):

- JoinGroup: the member joins (or rejoins) its membership, which publishes a
  placeholder plan with the next generation; the group prepares a rebalance
  and the response is held until every known member has rejoined or the
  longest rebalance timeout passed (absent members are removed). A group that
  was empty also waits :data:`JOIN_GATHER_S` for members that start together,
  at most :data:`JOIN_GATHER_MAX_S`, so the first records flow well within a
  second. Then the protocol all members support that most prefer is chosen,
  the leader is the member with the lowest id (mqlog's rule), and every held
  join is answered with the plan's generation.
- SyncGroup: followers are held until the leader's arrives; the leader's
  assignment (decoded from the consumer protocol) replaces the plan's, each
  member syncs its membership (giving up, then taking owner locks) and gets
  the leader's bytes unchanged.
- Heartbeat answers REBALANCE_IN_PROGRESS while a rebalance is on; in a stable
  group it heartbeats the membership, which notices a plan change (a topic
  grew) and starts a rebalance.
- LeaveGroup and session expiry (:meth:`GroupCoordinator.tick`) remove the
  member (its locks and file go) and rebalance the rest.
- Static members (KIP-345, ``group.instance.id``): the group maps each
  instance id to the member id that holds it. A JoinGroup of a known instance
  without a member id (the process restarted) gets a new member id, so the
  old one is fenced: any request naming the instance with it (JoinGroup,
  SyncGroup, Heartbeat, LeaveGroup, OffsetCommit) is answered
  FENCED_INSTANCE_ID, which clients treat as fatal. In a stable group, with
  the same topics and protocol, the newcomer takes the member's place as
  Kafka does: same assignment, same mqlog membership (``Member.mqlog_id``:
  its member file and owner locks), no rebalance. Otherwise the member is
  removed and the newcomer joins (one rebalance). A static member that
  closes sends no LeaveGroup: it is removed when its session times out, or
  when its instance joins again. LeaveGroup may name a member by instance id
  alone.
- OffsetCommit (``_offset_commit``) goes through the member's membership.

Group-file operations (file I/O, flocks taken without blocking, fsyncs) run in
``asyncio.to_thread`` under the group's asyncio lock, shielded so a closed
connection cannot leave a membership half changed. Invariant: every state
change of a group happens under its lock.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from mqlog.consumer import GroupMembership
from mqlog.errors import ConfigError, IllegalGenerationError, MqlogError
from mqlog.logstore import Engine
from mqlog.names import NAME_CHARACTERS, validate_name
from mqlog.server.kafka._group_protocol import (
    CONSUMER_PROTOCOL_TYPE,
    ConsumerProtocolError,
    assigned_partitions,
    choose_protocol,
    mqlog_assignors,
    subscribed_topics,
)
from mqlog.server.kafka._group_state import (
    COMPLETING,
    EMPTY,
    PREPARING,
    STABLE,
    Group,
    GroupSnapshot,
    JoinOutcome,
    Member,
    SyncOutcome,
    answer,
)

log = logging.getLogger("mqlog.server.kafka.groups")

#: A group that was empty waits this long after a join for more members, extended
#: by each new member, at most :data:`JOIN_GATHER_MAX_S` (Kafka: 3 s).
JOIN_GATHER_S = 0.1
JOIN_GATHER_MAX_S = 0.5
#: Session timeouts accepted (Kafka's broker defaults are 6 s to 30 min).
MIN_SESSION_TIMEOUT_MS = 1_000
MAX_SESSION_TIMEOUT_MS = 1_800_000
#: Longest client id in a member id (mqlog allows 229; Kafka ids are short).
CLIENT_ID_CHARS = 64
#: How often the server's timer looks for expired sessions and ended join phases.
TICK_S = 0.05


def file_safe(client_id: str) -> str:
    """A Kafka client id as mqlog's member ids use it (a file name): characters
    other than ``[a-zA-Z0-9._-]`` become ``_``, at most 64 of them, "kafka" when
    none is left. The member's client id as sent is kept for Kafka's APIs."""
    return re.sub(f"[^{NAME_CHARACTERS}]", "_", client_id)[:CLIENT_ID_CHARS] or "kafka"


class GroupCoordinator:
    """The Kafka groups of one server (``server.extensions["groups"]``).

    ``clock`` is injectable; with ``ticking`` False nothing runs on a timer and
    the owner calls :meth:`tick` (tests, with a fake clock).
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.monotonic,
                 ticking: bool = True) -> None:
        self._engine = engine
        self._clock = clock
        self._ticking = ticking
        self._ticker: asyncio.Task[None] | None = None
        self._groups: dict[str, Group] = {}

    # -- join, sync, heartbeat, leave ----------------------------------------------------

    async def join(self, group_id: str, member_id: str, *, client_id: str, client_host: str,
                   protocol_type: str, protocols: tuple[tuple[str, bytes], ...],
                   session_timeout_ms: int, rebalance_timeout_ms: int,
                   instance_id: str | None = None) -> JoinOutcome:
        """JoinGroup: answered when the join phase of the group ends."""
        refusal = self._check_join(group_id, protocol_type, protocols, session_timeout_ms,
                                   instance_id)
        if refusal is not None:
            return JoinOutcome(refusal, member_id)
        self._start_ticker()
        return await answer(self._join(
            self._group(group_id), member_id, client_id, client_host,
            protocols, session_timeout_ms, max(rebalance_timeout_ms, session_timeout_ms),
            instance_id))

    def _check_join(self, group_id: str, protocol_type: str,
                    protocols: tuple[tuple[str, bytes], ...], session_timeout_ms: int,
                    instance_id: str | None) -> ErrorCode | None:
        if instance_id is not None and not instance_id:
            return ErrorCode.invalid_request  # Kafka: an instance id is never empty
        try:
            validate_name("group", group_id)
        except ConfigError as error:
            log.warning("refused a join: %s", error)
            return ErrorCode.invalid_group_id
        if protocol_type != CONSUMER_PROTOCOL_TYPE or not protocols:
            log.warning("group %s: refused a join with protocol type %r: only Kafka "
                        "consumers (protocol type 'consumer') are supported", group_id,
                        protocol_type)
            return ErrorCode.inconsistent_group_protocol
        if not MIN_SESSION_TIMEOUT_MS <= session_timeout_ms <= MAX_SESSION_TIMEOUT_MS:
            return ErrorCode.invalid_session_timeout
        return None

    async def _join(self, group: Group, member_id: str, client_id: str, client_host: str,
                    protocols: tuple[tuple[str, bytes], ...], session_ms: int,
                    rebalance_ms: int, instance_id: str | None
                    ) -> asyncio.Future[JoinOutcome] | JoinOutcome:
        async with group.lock:
            if group.fenced(member_id, instance_id) and member_id:
                return JoinOutcome(ErrorCode.fenced_instance_id, member_id)
            holder_id = None if instance_id is None else group.instances.get(instance_id)
            replaced = group.members.get(holder_id) if not member_id and holder_id else None
            member = group.members.get(member_id) if member_id else None
            if member_id and member is None:
                return JoinOutcome(ErrorCode.unknown_member_id, member_id)
            names = [name for name, _data in protocols]
            others = [m.protocol_names for m in group.members.values()
                      if m is not member and m is not replaced]
            chosen = choose_protocol([*others, names])
            if chosen is None:
                log.warning("group %s: refused member %s (%s): none of its protocols %s is "
                            "supported by every member", group.name, member_id or "(new)",
                            client_id, names)
                return JoinOutcome(ErrorCode.inconsistent_group_protocol, member_id)
            try:
                topics = subscribed_topics(protocols[0][1])
            except ConsumerProtocolError as error:
                log.warning("group %s: refused a join of %s: %s", group.name, client_id, error)
                return JoinOutcome(ErrorCode.inconsistent_group_protocol, member_id)
            if replaced is not None and _same_place(group, replaced, chosen, topics):
                return self._replace_static(group, replaced, client_id, client_host, protocols,
                                            session_ms, rebalance_ms)
            if replaced is not None:  # checked first: a refused join replaces nothing
                await self._remove(group, replaced,
                                   f"its instance {instance_id!r} joined again (fenced)",
                                   ErrorCode.fenced_instance_id)
            fields: dict[str, Any] = dict(client_id=file_safe(client_id), topics=topics,
                                          assignors=mqlog_assignors(names),
                                          session_timeout_ms=session_ms,
                                          rebalance_timeout_ms=rebalance_ms,
                                          remote_host=client_host)
            try:
                if member is None:
                    member = await asyncio.to_thread(self._new_member, group.name, fields)
                else:
                    await asyncio.to_thread(member.membership.join,
                                            member_id=member.mqlog_id, **fields)
            except ConfigError as error:  # the group holds embedded consumers, or is a queue
                log.warning("group %s: refused a join of %s: %s", group.name, client_id, error)
                return JoinOutcome(ErrorCode.inconsistent_group_protocol, member_id)
            now = self._clock()
            new = member.member_id not in group.members
            group.members[member.member_id] = member
            if instance_id is not None:
                member.instance_id = instance_id
                group.instances[instance_id] = member.member_id
            member.joined(client_id, client_host, protocols, session_ms, rebalance_ms, now)
            if member.join_waiter is not None and not member.join_waiter.done():
                member.join_waiter.set_result(JoinOutcome(ErrorCode.rebalance_in_progress,
                                                          member.member_id))
            waiter: asyncio.Future[JoinOutcome] = asyncio.get_running_loop().create_future()
            member.join_waiter = waiter
            if group.state != PREPARING:
                self._prepare(group, f"member {member.member_id} ({client_id}) joined")
            elif new and group.gather_until is not None:
                group.gather_until = min(now + JOIN_GATHER_S, group.gather_limit)
            await self._complete_join_if_done(group)
            return waiter

    def _replace_static(self, group: Group, member: Member, client_id: str, client_host: str,
                        protocols: tuple[tuple[str, bytes], ...], session_ms: int,
                        rebalance_ms: int) -> JoinOutcome:
        """KIP-345, as Kafka does it: a static member's instance joined again (its
        process restarted) into a stable group. The newcomer takes the member's
        place under a new member id, with its assignment, partitions and owner
        locks (the mqlog membership stays), and no rebalance; the old member id
        is fenced. A leader is told the members, with ``skip_assignment``."""
        assert member.instance_id is not None
        old_id = member.member_id
        member.answer_held(ErrorCode.fenced_instance_id)
        del group.members[old_id]
        member.member_id = f"{member.mqlog_id}-{secrets.token_hex(4)}"
        group.members[member.member_id] = member
        group.instances[member.instance_id] = member.member_id
        if group.leader == old_id:
            group.leader = member.member_id
        member.joined(client_id, client_host, protocols, session_ms, rebalance_ms, self._clock())
        log.info("group %s: member %s took the place of %s (instance %r joined again; "
                 "fenced), generation %d, no rebalance", group.name, member.member_id, old_id,
                 member.instance_id, group.generation)
        leader = group.leader == member.member_id
        return JoinOutcome(ErrorCode.none, member.member_id, group.generation,
                           CONSUMER_PROTOCOL_TYPE, group.protocol, group.leader,
                           _everyone(group.members.values(), group.protocol) if leader else (),
                           skip_assignment=leader)

    def _new_member(self, group: str, fields: dict[str, Any]) -> Member:
        membership = GroupMembership(self._engine, group, watchdog=False, clock=self._clock,
                                     check_interval_ms=0)
        joined = membership.join(**fields)
        return Member(joined.member_id, membership, "", "", (), 0.0, 0.0, self._clock())

    def _prepare(self, group: Group, why: str) -> None:
        """Enter PreparingRebalance: held syncs are told, joins are held."""
        now = self._clock()
        log.info("group %s: rebalancing: %s", group.name, why)
        if group.state == EMPTY or not any(m.synced >= 0 for m in group.members.values()):
            group.gather_until, group.gather_limit = now + JOIN_GATHER_S, now + JOIN_GATHER_MAX_S
        else:
            group.gather_until = None
        group.state = PREPARING
        group.join_deadline = now + max((m.rebalance_s for m in group.members.values()),
                                        default=0.0)
        for member in group.members.values():
            if member.sync_waiter is not None and not member.sync_waiter.done():
                member.sync_waiter.set_result(SyncOutcome(ErrorCode.rebalance_in_progress))
            member.sync_waiter = None

    async def _complete_join_if_done(self, group: Group) -> None:
        """End the join phase if every member rejoined (and the gathering time is
        over), or the rebalance timeout passed: absent members are removed."""
        if group.state != PREPARING:
            return
        now = self._clock()
        everyone = all(m.joining() for m in group.members.values())
        gathered = group.gather_until is None or now >= group.gather_until
        if not (everyone and gathered) and now < group.join_deadline:
            return
        for member in [m for m in group.members.values() if not m.joining()]:
            await self._remove(group, member, "it did not rejoin within its rebalance timeout")
        if not group.members:
            group.state = EMPTY
            return
        members = sorted(group.members.values(), key=lambda m: m.mqlog_id)  # mqlog's order
        leader = members[0]
        beat = await asyncio.to_thread(leader.membership.heartbeat, leader.mqlog_id, -1)
        protocol = choose_protocol([m.protocol_names for m in members]) or ""
        group.state, group.generation, group.leader = COMPLETING, beat.generation, leader.member_id
        group.protocol_type, group.protocol = CONSUMER_PROTOCOL_TYPE, protocol
        group.sync_deadline = now + max(m.rebalance_s for m in members)
        everyone_metadata = _everyone(members, protocol)
        log.info("group %s: generation %d, protocol %s, leader %s, members %s", group.name,
                 beat.generation, protocol, leader.member_id, [m.member_id for m in members])
        for member in members:
            waiter, member.join_waiter, member.last_seen = member.join_waiter, None, now
            if waiter is None or waiter.done():  # its connection closed meanwhile
                continue
            waiter.set_result(JoinOutcome(
                ErrorCode.none, member.member_id, beat.generation, CONSUMER_PROTOCOL_TYPE,
                protocol, leader.member_id, everyone_metadata if member is leader else ()))

    async def sync(self, group_id: str, member_id: str, generation: int,
                   assignments: Mapping[str, bytes],
                   instance_id: str | None = None) -> SyncOutcome:
        """SyncGroup: the leader's ``assignments`` are installed; a follower's sync
        is answered once they are."""
        group = self._groups.get(group_id)
        if group is None:
            return SyncOutcome(ErrorCode.unknown_member_id)
        return await answer(self._sync(group, member_id, generation, assignments,
                                       instance_id))

    async def _sync(self, group: Group, member_id: str, generation: int,
                    assignments: Mapping[str, bytes], instance_id: str | None
                    ) -> asyncio.Future[SyncOutcome] | SyncOutcome:
        async with group.lock:
            if group.fenced(member_id, instance_id):
                return SyncOutcome(ErrorCode.fenced_instance_id)
            member = group.members.get(member_id)
            if member is None:
                return SyncOutcome(ErrorCode.unknown_member_id)
            member.last_seen = self._clock()
            if group.state == PREPARING:
                return SyncOutcome(ErrorCode.rebalance_in_progress)
            if generation != group.generation:
                return SyncOutcome(ErrorCode.illegal_generation)
            if group.state == COMPLETING and member_id != group.leader:
                waiter: asyncio.Future[SyncOutcome] = asyncio.get_running_loop().create_future()
                member.sync_waiter = waiter
                return waiter
            if group.state == COMPLETING:
                error = await self._install(group, member, assignments)
                if error is not None:
                    return SyncOutcome(error)
            return await self._sync_members(group, member)

    async def _install(self, group: Group, leader: Member,
                       assignments: Mapping[str, bytes]) -> ErrorCode | None:
        """The leader's assignment becomes the plan of the generation; the group is
        stable. On failure a new rebalance starts and the error is returned."""
        try:
            wanted = {member_id: assigned_partitions(data)
                      for member_id, data in assignments.items() if member_id in group.members}
            await asyncio.to_thread(leader.membership.sync, leader.mqlog_id, group.generation,
                                    {group.members[member_id].mqlog_id: partitions
                                     for member_id, partitions in wanted.items()})
        except IllegalGenerationError:  # the plan moved on (a topic grew) meanwhile
            self._prepare(group, "the plan changed during the sync")
            return ErrorCode.rebalance_in_progress
        except (ConsumerProtocolError, ConfigError) as error:
            log.warning("group %s: the assignment of leader %s is refused: %s", group.name,
                        leader.member_id, error)
            self._prepare(group, "the leader's assignment was refused")
            return ErrorCode.inconsistent_group_protocol
        for member_id, member in group.members.items():
            member.assignment = assignments.get(member_id, b"")
            member.wanted = frozenset(wanted.get(member_id, ()))
        leader.synced = group.generation
        group.state = STABLE
        for member in group.members.values():
            waiter, member.sync_waiter = member.sync_waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(await self._sync_members(group, member))
        return None

    async def _sync_members(self, group: Group, member: Member) -> SyncOutcome:
        """Sync ``member``'s membership to the stable generation, then let every
        member take the partitions whose previous owner let go meanwhile."""
        if member.synced != group.generation:
            await asyncio.to_thread(member.membership.sync, member.mqlog_id, group.generation)
            member.synced = group.generation
        for other in group.members.values():
            if other.synced == group.generation and other.wanted - other.membership.assignment():
                await asyncio.to_thread(other.membership.heartbeat, other.mqlog_id,
                                        group.generation)
        return SyncOutcome(ErrorCode.none, group.protocol_type, group.protocol,
                           member.assignment)

    async def heartbeat(self, group_id: str, member_id: str, generation: int,
                        instance_id: str | None = None) -> ErrorCode:
        """Heartbeat: keeps the session; tells of a rebalance."""
        group = self._groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        return await asyncio.shield(self._heartbeat(group, member_id, generation, instance_id))

    async def _heartbeat(self, group: Group, member_id: str, generation: int,
                         instance_id: str | None) -> ErrorCode:
        async with group.lock:
            if group.fenced(member_id, instance_id):
                return ErrorCode.fenced_instance_id
            member = group.members.get(member_id)
            if member is None:
                return ErrorCode.unknown_member_id
            member.last_seen = self._clock()
            if group.state == PREPARING:
                return ErrorCode.rebalance_in_progress
            if generation != group.generation:
                return ErrorCode.illegal_generation
            if group.state != STABLE or member.synced != group.generation:
                return ErrorCode.none
            beat = await asyncio.to_thread(member.membership.heartbeat, member.mqlog_id,
                                           generation)
            if beat.rebalance:
                self._prepare(group, f"the plan changed (generation {beat.generation})")
                return ErrorCode.rebalance_in_progress
            return ErrorCode.none

    async def leave(self, group_id: str, member_ids: list[str],
                    instance_ids: list[str | None] | None = None) -> list[ErrorCode]:
        """LeaveGroup: one error code per member id (``instance_ids``: each one's
        group instance id, or None; a member may be named by it alone)."""
        group = self._groups.get(group_id)
        if group is None:
            return [ErrorCode.unknown_member_id] * len(member_ids)
        return await asyncio.shield(self._leave(
            group, member_ids, instance_ids or [None] * len(member_ids)))

    async def _leave(self, group: Group, member_ids: list[str],
                     instance_ids: list[str | None]) -> list[ErrorCode]:
        async with group.lock:
            codes = []
            for member_id, instance_id in zip(member_ids, instance_ids, strict=True):
                if instance_id is not None and not member_id:  # by instance id alone
                    member_id = group.instances.get(instance_id, "")
                if group.fenced(member_id, instance_id):
                    codes.append(ErrorCode.fenced_instance_id)
                    continue
                member = group.members.get(member_id)
                if member is None:
                    codes.append(ErrorCode.unknown_member_id)
                    continue
                await self._remove(group, member, "it left the group")
                codes.append(ErrorCode.none)
            await self._after_removal(group, "members left")
            return codes

    async def _remove(self, group: Group, member: Member, why: str,
                      code: ErrorCode = ErrorCode.unknown_member_id) -> None:
        """Drop a member: its held requests are answered ``code``, its membership
        left (its locks and member file go, the plan is recomputed)."""
        log.info("group %s: member %s (%s on %s) removed: %s", group.name, member.member_id,
                 member.client_id, member.client_host, why)
        del group.members[member.member_id]
        if member.instance_id is not None and (
                group.instances.get(member.instance_id) == member.member_id):
            del group.instances[member.instance_id]
        member.answer_held(code)
        try:
            await asyncio.to_thread(member.membership.leave, member.mqlog_id)
        except MqlogError as error:
            log.warning("group %s: leaving member %s: %s", group.name, member.member_id, error)

    async def _after_removal(self, group: Group, why: str) -> None:
        if not group.members:
            group.state, group.generation, group.leader = EMPTY, 0, ""
        elif group.state != PREPARING:
            self._prepare(group, why)
        await self._complete_join_if_done(group)

    # -- deadlines ---------------------------------------------------------------------

    async def tick(self) -> None:
        """Expire members whose session ran out, end join phases whose time is up,
        remove members that did not sync within the rebalance timeout."""
        now = self._clock()
        for group in list(self._groups.values()):
            if group.due(now):
                await asyncio.shield(self._tick(group))

    async def _tick(self, group: Group) -> None:
        async with group.lock:
            now = self._clock()
            expired = [m for m in group.members.values()
                       if not m.waiting() and now - m.last_seen > m.session_s]
            for member in expired:
                await self._remove(group, member, f"no heartbeat within its session timeout "
                                                  f"({round(member.session_s * 1000)} ms)")
            late = []
            if group.state == COMPLETING and now >= group.sync_deadline:
                late = [m for m in group.members.values()
                        if m.sync_waiter is None or m.sync_waiter.done()]
                for member in late:
                    await self._remove(group, member, "it did not sync within its rebalance "
                                                      "timeout")
            if expired or late:
                await self._after_removal(group, "members expired")
            else:
                await self._complete_join_if_done(group)

    def _start_ticker(self) -> None:
        if self._ticking and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.tick()
            except Exception:  # a bug here must not stop every group's deadlines
                log.exception("group coordinator timer")

    async def close(self) -> None:
        """Remove every member (their files and locks go); stop the timer."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for group in list(self._groups.values()):
            async with group.lock:
                for member in list(group.members.values()):
                    await self._remove(group, member, "the server is shutting down")
                group.state = EMPTY

    # -- offsets and administration ----------------------------------------------------

    def snapshot(self, group_id: str) -> GroupSnapshot | None:
        """The group as Kafka's admin calls show it; None when this server holds no
        member of it and never did."""
        group = self._groups.get(group_id)
        return None if group is None else group.snapshot()

    def snapshots(self) -> list[GroupSnapshot]:
        return [group.snapshot() for group in self._groups.values()]

    def forget(self, group_id: str) -> bool:
        """Drop an empty group's state (DeleteGroups); False if it has members."""
        group = self._groups.get(group_id)
        if group is not None and group.members:
            return False
        self._groups.pop(group_id, None)
        return True

    def find(self, group_id: str) -> Group | None:
        """The group's state, if this server ever held a member of it."""
        return self._groups.get(group_id)

    def _group(self, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = Group(group_id)
        return group


def _same_place(group: Group, replaced: Member, chosen: str, topics: list[str]) -> bool:
    """Whether a static member's instance joining again (its protocols would make
    the group choose ``chosen``, it subscribes to ``topics``) can take the place
    of ``replaced`` as it is: the group is stable and neither the protocol nor
    the topics change (else the group rebalances, as in Kafka)."""
    if group.state != STABLE or chosen != group.protocol:
        return False
    try:
        return subscribed_topics(replaced.metadata(group.protocol)) == topics
    except ConsumerProtocolError:
        return False


def _everyone(members: Iterable[Member], protocol: str
              ) -> tuple[tuple[str, str | None, bytes], ...]:
    """What a JoinGroup tells the leader: each member's id, instance id and
    metadata in ``protocol``, in mqlog's member order."""
    return tuple((m.member_id, m.instance_id, m.metadata(protocol))
                 for m in sorted(members, key=lambda m: m.mqlog_id))
