"""The Kafka group coordinator, driven through its handlers with kio requests
and a fake clock: no network, no sleeps that decide an outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

import mqlog
from mqlog.consumer import GroupMembership, TopicPartition, offset_store
from mqlog.errors import ConfigError, GroupNotEmptyError
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._group_coordinator import JOIN_GATHER_MAX_S, GroupCoordinator
from tests.server._group_requests import (
    COMMIT,
    DELETE,
    DESCRIBE,
    FETCH,
    FIND,
    HEARTBEAT,
    JOIN,
    LEAVE,
    LIST,
    SYNC,
    assignment,
    call,
    join_request,
    nested,
    settle,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def log(tmp_path: Path) -> Iterator[mqlog.Log]:
    with mqlog.open(tmp_path / "log") as opened:
        opened.create_topic("t", 4)
        opened.create_topic("u", 2)
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(log: mqlog.Log, clock: Clock) -> ServerState:
    state = ServerState(log.engine, "127.0.0.1", 9092, "cluster")
    state.extensions["groups"] = GroupCoordinator(log.engine, clock=clock, ticking=False)
    return state


def coordinator(server: ServerState) -> GroupCoordinator:
    return server.extensions["groups"]


async def join_all(server: ServerState, clock: Clock, requests: list[dict[str, Any]]
                   ) -> list[Any]:
    """Send JoinGroups together, end the gathering time, return the responses."""
    tasks = [asyncio.create_task(call(server, JOIN, 5, client_id=f"c{i}", **fields))
             for i, fields in enumerate(requests)]
    group = requests[0]["group_id"]
    await settle(lambda: (found := coordinator(server).find(group)) is not None and sum(
        m.joining() for m in found.members.values()) == len(requests) or any(
        t.done() for t in tasks), "every join held")
    clock.advance(JOIN_GATHER_MAX_S)
    await coordinator(server).tick()
    return [await task for task in tasks]


async def sync_all(server: ServerState, group: str, joined: list[Any],
                   plan: dict[str, list[tuple[str, int]]]) -> dict[str, Any]:
    """Followers sync first (held), then the leader with ``plan`` (member id ->
    partitions); every response by member id."""
    leader = joined[0].leader
    followers = [j for j in joined if j.member_id != leader]
    tasks = {j.member_id: asyncio.create_task(call(
        server, SYNC, 3, group_id=group, generation_id=j.generation_id,
        member_id=j.member_id, assignments=())) for j in followers}
    await settle(lambda: all(m.sync_waiter is not None for m in coordinator(
        server).find(group).members.values() if m.member_id != leader), "followers held")
    assert not any(task.done() for task in tasks.values())
    tasks[leader] = asyncio.create_task(call(
        server, SYNC, 3, group_id=group, generation_id=joined[0].generation_id,
        member_id=leader, assignments=tuple(
            nested(SYNC, 3, "SyncGroupRequestAssignment", member_id=member,
                   assignment=assignment(parts)) for member, parts in plan.items())))
    return {member: await task for member, task in tasks.items()}


async def stable_pair(server: ServerState, clock: Clock, group: str = "g") -> tuple[Any, Any]:
    """A group of two Kafka members, the leader taking t/0-1, the follower t/2-3."""
    joined = await join_all(server, clock, [join_request(group), join_request(group)])
    leader = next(j for j in joined if j.member_id == j.leader)
    follower = next(j for j in joined if j.member_id != j.leader)
    await sync_all(server, group, [leader, follower], {
        leader.member_id: [("t", 0), ("t", 1)], follower.member_id: [("t", 2), ("t", 3)]})
    return leader, follower


def test_members_joining_together_get_one_generation_and_the_leader_all_subscriptions(
        server: ServerState, clock: Clock) -> None:
    async def scenario() -> None:
        joined = await join_all(server, clock, [
            join_request("g", protocols=("cooperative-sticky", "range")),
            join_request("g", protocols=("range", "roundrobin"))])
        assert [j.error_code for j in joined] == [ErrorCode.none, ErrorCode.none]
        assert joined[0].generation_id == joined[1].generation_id
        assert {j.protocol_name for j in joined} == {"range"}  # the only common one
        leader = min(j.member_id for j in joined)
        assert {j.leader for j in joined} == {leader}
        by_id = {j.member_id: j for j in joined}
        assert {m.member_id for m in by_id[leader].members} == set(by_id)
        assert [m for j in joined if j.member_id != leader for m in j.members] == []

    asyncio.run(scenario())


def test_a_join_is_held_until_the_gathering_time_ends(server: ServerState,
                                                      clock: Clock) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(call(server, JOIN, 5, **join_request("g")))
        await settle(lambda: coordinator(server).find("g") is not None and bool(
            coordinator(server).find("g").members), "member registered")
        await coordinator(server).tick()
        assert not task.done()
        clock.advance(JOIN_GATHER_MAX_S)
        await coordinator(server).tick()
        assert (await task).error_code == ErrorCode.none

    asyncio.run(scenario())


def test_sync_relays_the_leaders_assignment_and_mqlog_sees_the_group(
        server: ServerState, clock: Clock, log: mqlog.Log) -> None:
    async def scenario() -> None:
        joined = await join_all(server, clock, [join_request("g"), join_request("g")])
        leader = joined[0].leader
        follower = next(j.member_id for j in joined if j.member_id != leader)
        plan = {leader: [("t", 0), ("t", 3)], follower: [("t", 1), ("t", 2)]}
        synced = await sync_all(server, "g", joined, plan)
        for member, parts in plan.items():
            assert synced[member].error_code == ErrorCode.none
            assert synced[member].assignment == assignment(parts)
        description = log.describe_group("g")
        assert description.state == "Stable"
        assert {m.member_id: sorted(m.assignment) for m in description.members} == {
            member: [TopicPartition(*tp) for tp in sorted(parts)]
            for member, parts in plan.items()}
        assert {m.pid for m in description.members} == {0}  # remote members
        members = coordinator(server).find("g").members
        assert members[leader].membership.owns(TopicPartition("t", 3))
        assert not members[follower].membership.owns(TopicPartition("t", 3))

    asyncio.run(scenario())


def test_heartbeats_tell_of_a_rebalance_when_a_member_joins(server: ServerState,
                                                            clock: Clock) -> None:
    async def scenario() -> None:
        leader, follower = await stable_pair(server, clock)
        beat = await call(server, HEARTBEAT, 3, group_id="g", generation_id=leader.generation_id,
                          member_id=leader.member_id)
        assert beat.error_code == ErrorCode.none
        newcomer = asyncio.create_task(call(server, JOIN, 5, **join_request("g")))
        await settle(lambda: len(coordinator(server).find("g").members) == 3, "third member")
        for old in (leader, follower):
            beat = await call(server, HEARTBEAT, 3, group_id="g",
                              generation_id=old.generation_id, member_id=old.member_id)
            assert beat.error_code == ErrorCode.rebalance_in_progress
        rejoins = [asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", member_id=old.member_id))) for old in (leader, follower)]
        answers = [await task for task in (newcomer, *rejoins)]
        assert {a.error_code for a in answers} == {ErrorCode.none}
        assert len({a.generation_id for a in answers}) == 1
        assert answers[0].generation_id > leader.generation_id
        stale = await call(server, HEARTBEAT, 3, group_id="g",
                           generation_id=leader.generation_id, member_id=leader.member_id)
        assert stale.error_code == ErrorCode.illegal_generation

    asyncio.run(scenario())


def test_a_member_whose_session_runs_out_is_removed_and_its_partitions_freed(
        server: ServerState, clock: Clock, log: mqlog.Log) -> None:
    async def scenario() -> None:
        leader, follower = await stable_pair(server, clock)
        clock.advance(6)
        await call(server, HEARTBEAT, 3, group_id="g", generation_id=leader.generation_id,
                   member_id=leader.member_id)
        await coordinator(server).tick()
        assert set(coordinator(server).find("g").members) == {leader.member_id, follower.member_id}
        clock.advance(6)  # the follower has been silent 12 s, over its 10 s session
        await coordinator(server).tick()
        assert set(coordinator(server).find("g").members) == {leader.member_id}
        assert [m.member_id for m in log.describe_group("g").members] == [leader.member_id]
        beat = await call(server, HEARTBEAT, 3, group_id="g", generation_id=leader.generation_id,
                          member_id=leader.member_id)
        assert beat.error_code == ErrorCode.rebalance_in_progress
        gone = await call(server, HEARTBEAT, 3, group_id="g",
                          generation_id=follower.generation_id, member_id=follower.member_id)
        assert gone.error_code == ErrorCode.unknown_member_id
        rejoined = await call(server, JOIN, 5, **join_request("g", member_id=leader.member_id))
        assert rejoined.error_code == ErrorCode.none
        synced = await call(server, SYNC, 3, group_id="g", generation_id=rejoined.generation_id,
                            member_id=leader.member_id, assignments=(nested(
                                SYNC, 3, "SyncGroupRequestAssignment", member_id=leader.member_id,
                                assignment=assignment([("t", n) for n in range(4)])),))
        assert synced.error_code == ErrorCode.none
        membership = coordinator(server).find("g").members[leader.member_id].membership
        assert membership.assignment() == {TopicPartition("t", n) for n in range(4)}

    asyncio.run(scenario())


def test_a_member_that_does_not_rejoin_in_time_is_removed(server: ServerState,
                                                          clock: Clock) -> None:
    async def scenario() -> None:
        leader, follower = await stable_pair(server, clock)
        rejoin = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", member_id=leader.member_id)))
        await settle(lambda: coordinator(server).find("g").members[
            leader.member_id].joining(), "rejoin held")
        clock.advance(5)
        await call(server, HEARTBEAT, 3, group_id="g", generation_id=follower.generation_id,
                   member_id=follower.member_id)  # alive, but does not rejoin
        await coordinator(server).tick()
        assert not rejoin.done()
        clock.advance(16)  # past the 20 s rebalance timeout
        await coordinator(server).tick()
        answer = await rejoin
        assert answer.error_code == ErrorCode.none
        assert [m.member_id for m in answer.members] == [leader.member_id]

    asyncio.run(scenario())


def test_leave_rebalances_the_rest(server: ServerState, clock: Clock, log: mqlog.Log) -> None:
    async def scenario() -> None:
        leader, follower = await stable_pair(server, clock)
        left = await call(server, LEAVE, 3, group_id="g", members=(nested(
            LEAVE, 3, "MemberIdentity", member_id=follower.member_id, group_instance_id=None),))
        assert [m.error_code for m in left.members] == [ErrorCode.none]
        assert [m.member_id for m in log.describe_group("g").members] == [leader.member_id]
        beat = await call(server, HEARTBEAT, 3, group_id="g", generation_id=leader.generation_id,
                          member_id=leader.member_id)
        assert beat.error_code == ErrorCode.rebalance_in_progress
        left = await call(server, LEAVE, 1, group_id="g", member_id=leader.member_id)
        assert left.error_code == ErrorCode.none
        assert log.describe_group("g").state == "Empty"

    asyncio.run(scenario())


def test_protocols_in_common_are_required(server: ServerState, clock: Clock) -> None:
    async def scenario() -> None:
        first = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", protocols=("roundrobin",))))
        await settle(lambda: coordinator(server).find("g") is not None and bool(
            coordinator(server).find("g").members), "first member")
        other = await call(server, JOIN, 5, **join_request("g", protocols=("range",)))
        assert other.error_code == ErrorCode.inconsistent_group_protocol
        connect = await call(server, JOIN, 5, **join_request("h", protocol_type="connect"))
        assert connect.error_code == ErrorCode.inconsistent_group_protocol
        clock.advance(JOIN_GATHER_MAX_S)
        await coordinator(server).tick()
        assert (await first).protocol_name == "roundrobin"

    asyncio.run(scenario())


def test_a_static_member_joining_again_fences_its_earlier_member_id(
        server: ServerState, clock: Clock) -> None:
    """KIP-345: the instance's new member id replaces the old one, whose every
    request is then answered FENCED_INSTANCE_ID; LeaveGroup by instance id."""
    async def scenario() -> None:
        (first,) = await join_all(server, clock, [join_request("g", instance_id="i-1")])
        assert first.error_code == ErrorCode.none
        assert [(m.member_id, m.group_instance_id) for m in first.members] == [
            (first.member_id, "i-1")]
        await sync_all(server, "g", [first], {first.member_id: [("t", 0), ("t", 1)]})
        (again,) = await join_all(server, clock, [join_request("g", instance_id="i-1")])
        assert again.error_code == ErrorCode.none and again.member_id != first.member_id
        # in its place, as Kafka does: the same generation, it leads, no rebalance
        assert (again.generation_id, again.leader) == (first.generation_id, again.member_id)
        old = dict(group_id="g", member_id=first.member_id, group_instance_id="i-1")
        beat = await call(server, HEARTBEAT, 3, generation_id=first.generation_id, **old)
        assert beat.error_code == ErrorCode.fenced_instance_id
        synced = await call(server, SYNC, 3, generation_id=first.generation_id,
                            assignments=(), **old)
        assert synced.error_code == ErrorCode.fenced_instance_id
        rejoined = await call(server, JOIN, 5, **join_request(
            "g", member_id=first.member_id, instance_id="i-1"))
        assert rejoined.error_code == ErrorCode.fenced_instance_id
        committed = await call(server, COMMIT, 8, **{**_commit(
            "g", first.member_id, first.generation_id, {("t", 0): 1}),
            "group_instance_id": "i-1"})
        assert {p.error_code for t in committed.topics for p in t.partitions} == {
            ErrorCode.fenced_instance_id}
        synced = await call(server, SYNC, 3, group_id="g", generation_id=again.generation_id,
                            member_id=again.member_id, assignments=())
        assert synced.assignment == assignment([("t", 0), ("t", 1)])  # what it had
        (described,) = (await call(server, DESCRIBE, 5, groups=("g",),
                                   include_authorized_operations=False)).groups
        assert [(m.member_id, m.group_instance_id) for m in described.members] == [
            (again.member_id, "i-1")]
        left = await call(server, LEAVE, 3, group_id="g", members=(nested(
            LEAVE, 3, "MemberIdentity", member_id="", group_instance_id="i-1"),))
        assert [m.error_code for m in left.members] == [ErrorCode.none]
        assert coordinator(server).find("g").members == {}
        assert coordinator(server).find("g").instances == {}

    asyncio.run(scenario())


async def static_and_dynamic(server: ServerState, clock: Clock
                             ) -> tuple[list[Any], str, str]:
    """A stable group "g" of a static member (instance "i-1", taking t/0-1) and a
    dynamic one (t/2-3): the join responses and the two member ids."""
    joined = await join_all(server, clock, [join_request("g", instance_id="i-1"),
                                            join_request("g")])
    static_id = coordinator(server).find("g").instances["i-1"]
    other_id = next(j.member_id for j in joined if j.member_id != static_id)
    await sync_all(server, "g", sorted(joined, key=lambda j: j.member_id != j.leader), {
        static_id: [("t", 0), ("t", 1)], other_id: [("t", 2), ("t", 3)]})
    return joined, static_id, other_id


def test_a_static_member_restarting_in_a_stable_group_keeps_its_place(
        server: ServerState, log: mqlog.Log, clock: Clock) -> None:
    """KIP-345 without a rebalance: the restarted instance gets a new member id,
    the assignment and owner locks of the old one (its mqlog membership stays),
    and the other member goes on undisturbed; the old member id is fenced."""
    async def scenario() -> None:
        joined, static_id, other_id = await static_and_dynamic(server, clock)
        group = coordinator(server).find("g")
        generation = joined[0].generation_id
        (again,) = await join_all(server, clock, [join_request("g", instance_id="i-1")])
        assert again.error_code == ErrorCode.none and again.generation_id == generation
        assert again.member_id not in (static_id, other_id)
        assert group.state == "Stable" and group.instances == {"i-1": again.member_id}
        beat = await call(server, HEARTBEAT, 3, group_id="g", member_id=other_id,
                          generation_id=generation, group_instance_id=None)
        assert beat.error_code == ErrorCode.none  # no rebalance for the other member
        synced = await call(server, SYNC, 3, group_id="g", generation_id=generation,
                            member_id=again.member_id, assignments=())
        assert synced.assignment == assignment([("t", 0), ("t", 1)])
        member = group.members[again.member_id]
        assert member.mqlog_id == static_id  # the same mqlog member, locks and all
        assert member.membership.owns(TopicPartition("t", 0))
        assert {m.member_id: sorted(m.assignment) for m in log.describe_group("g").members} == {
            static_id: [TopicPartition("t", 0), TopicPartition("t", 1)],
            other_id: [TopicPartition("t", 2), TopicPartition("t", 3)]}
        old = await call(server, HEARTBEAT, 3, group_id="g", member_id=static_id,
                         generation_id=generation, group_instance_id="i-1")
        assert old.error_code == ErrorCode.fenced_instance_id
        committed = await call(server, COMMIT, 8, **{**_commit(
            "g", again.member_id, generation, {("t", 0): 5}), "group_instance_id": "i-1"})
        assert {p.error_code for t in committed.topics for p in t.partitions} == {
            ErrorCode.none}

    asyncio.run(scenario())


def test_a_static_member_restarting_with_other_topics_rebalances(
        server: ServerState, clock: Clock) -> None:
    async def scenario() -> None:
        joined, static_id, other_id = await static_and_dynamic(server, clock)
        group = coordinator(server).find("g")
        rejoin = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", instance_id="i-1", topics=("t", "u"))))
        await settle(lambda: group.state == "PreparingRebalance", "a rebalance")
        beat = await call(server, HEARTBEAT, 3, group_id="g", member_id=other_id,
                          generation_id=joined[0].generation_id, group_instance_id=None)
        assert beat.error_code == ErrorCode.rebalance_in_progress
        assert static_id not in group.members  # the old member went
        rejoin.cancel()

    asyncio.run(scenario())


def test_a_held_join_of_a_fenced_static_member_is_answered_fenced(
        server: ServerState, clock: Clock) -> None:
    """The replaced member's JoinGroup held in a rebalance is answered
    FENCED_INSTANCE_ID (not UNKNOWN_MEMBER_ID, on which a client would join
    again without a member id and fence the newcomer in turn)."""
    async def scenario() -> None:
        joined = await join_all(server, clock, [join_request("g", instance_id="i-1"),
                                                join_request("g")])
        static = next(j for j in joined if j.member_id == coordinator(server).find(
            "g").instances["i-1"])
        held = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", member_id=static.member_id, instance_id="i-1")))
        await settle(lambda: coordinator(server).find("g").members[
            static.member_id].joining(), "the static member's rejoin is held")
        newcomer = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", instance_id="i-1")))
        assert (await held).error_code == ErrorCode.fenced_instance_id
        await settle(lambda: coordinator(server).find("g").instances.get("i-1") not in (
            None, static.member_id), "the newcomer holds the instance")
        newcomer.cancel()

    asyncio.run(scenario())


def test_a_refused_static_join_replaces_nothing(server: ServerState, clock: Clock) -> None:
    async def scenario() -> None:
        joined = await join_all(server, clock, [join_request("g", instance_id="i-1"),
                                                join_request("g")])
        holder = coordinator(server).find("g").instances["i-1"]
        refused = await call(server, JOIN, 5, **join_request(
            "g", instance_id="i-1", protocols=("roundrobin",)))  # the other member: range
        assert refused.error_code == ErrorCode.inconsistent_group_protocol
        group = coordinator(server).find("g")
        assert group.instances == {"i-1": holder}
        assert sorted(group.members) == sorted(j.member_id for j in joined)

    asyncio.run(scenario())


def test_an_empty_instance_id_is_refused(server: ServerState) -> None:
    answer = asyncio.run(call(server, JOIN, 5, **join_request("g", instance_id="")))
    assert answer.error_code == ErrorCode.invalid_request


def _commit(group: str, member_id: str, generation: int, offsets: dict[tuple[str, int], int]
            ) -> dict[str, Any]:
    topics: dict[str, list[Any]] = {}
    for (topic, number), offset in offsets.items():
        topics.setdefault(topic, []).append(nested(
            COMMIT, 8, "OffsetCommitRequestPartition", partition_index=number,
            committed_offset=offset, committed_leader_epoch=-1, committed_metadata="m"))
    return dict(group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
                group_instance_id=None, topics=tuple(
                    nested(COMMIT, 8, "OffsetCommitRequestTopic", name=name,
                           partitions=tuple(parts)) for name, parts in topics.items()))


def _codes(response: Any) -> dict[tuple[str, int], ErrorCode]:
    return {(t.name, p.partition_index): p.error_code
            for t in response.topics for p in t.partitions}


def test_commit_authority_is_mqlogs(server: ServerState, clock: Clock, log: mqlog.Log) -> None:
    async def scenario() -> None:
        leader, follower = await stable_pair(server, clock)
        ok = await call(server, COMMIT, 8, **_commit("g", leader.member_id,
                                                     leader.generation_id, {("t", 0): 5}))
        assert _codes(ok) == {("t", 0): ErrorCode.none}
        assert offset_store(log.engine).committed("g", TopicPartition("t", 0)).offset == 5
        not_owned = await call(server, COMMIT, 8, **_commit(
            "g", leader.member_id, leader.generation_id, {("t", 2): 1}))
        assert _codes(not_owned) == {("t", 2): ErrorCode.illegal_generation}
        stale = await call(server, COMMIT, 8, **_commit(
            "g", leader.member_id, leader.generation_id - 1, {("t", 0): 6}))
        assert _codes(stale) == {("t", 0): ErrorCode.illegal_generation}
        stranger = await call(server, COMMIT, 8, **_commit("g", "nobody", leader.generation_id,
                                                           {("t", 0): 6}))
        assert _codes(stranger) == {("t", 0): ErrorCode.unknown_member_id}
        simple = await call(server, COMMIT, 8, **_commit("g", "", -1, {("t", 0): 6}))
        assert _codes(simple) == {("t", 0): ErrorCode.unknown_member_id}
        unknown = await call(server, COMMIT, 8, **_commit(
            "g", leader.member_id, leader.generation_id, {("t", 9): 1, ("nope", 0): 1}))
        assert set(_codes(unknown).values()) == {ErrorCode.unknown_topic_or_partition}
        assert offset_store(log.engine).committed("g", TopicPartition("t", 0)).offset == 5
        for member in (leader, follower):
            await call(server, LEAVE, 1, group_id="g", member_id=member.member_id)
        simple = await call(server, COMMIT, 8, **_commit("g", "", -1, {("t", 0): 7}))
        assert _codes(simple) == {("t", 0): ErrorCode.none}
        assert offset_store(log.engine).committed("g", TopicPartition("t", 0)).offset == 7

    asyncio.run(scenario())


def test_offsets_are_mqlogs_both_ways(server: ServerState, clock: Clock,
                                      log: mqlog.Log) -> None:
    async def scenario() -> None:
        offset_store(log.engine).commit("g", {TopicPartition("t", 1): 3}, "", "embedded")
        fetched = await call(server, FETCH, 8, groups=(nested(
            FETCH, 8, "OffsetFetchRequestGroup", group_id="g", topics=(nested(
                FETCH, 8, "OffsetFetchRequestTopics", name="t", partition_indexes=(0, 1)),)),))
        (group,) = fetched.groups
        assert {(p.partition_index, p.committed_offset, p.metadata)
                for p in group.topics[0].partitions} == {(0, -1, ""), (1, 3, "embedded")}
        every = await call(server, FETCH, 5, group_id="g", topics=None)
        assert [(t.name, [p.committed_offset for p in t.partitions])
                for t in every.topics] == [("t", [3])]
        leader, _follower = await stable_pair(server, clock)
        with pytest.raises(GroupNotEmptyError):
            log.reset_offsets("g", "t", to="earliest")

    asyncio.run(scenario())


def test_an_embedded_consumer_cannot_join_a_group_of_kafka_clients(
        server: ServerState, clock: Clock, log: mqlog.Log) -> None:
    async def scenario() -> None:
        await stable_pair(server, clock)
        consumer = log.consumer(group="g")
        with pytest.raises(ConfigError, match="clients of mqlog serve"):
            consumer.subscribe("t")
        consumer.close()
        assert len(log.describe_group("g").members) == 2

    asyncio.run(scenario())


def test_a_kafka_client_cannot_join_a_group_of_embedded_consumers(
        server: ServerState, log: mqlog.Log) -> None:
    embedded = GroupMembership(log.engine, "e", watchdog=False)
    embedded.join(client_id="local", topics=["t"], assignors=["range"],
                  session_timeout_ms=10_000, rebalance_timeout_ms=10_000)
    try:
        answer = asyncio.run(call(server, JOIN, 5, **join_request("e")))
        assert answer.error_code == ErrorCode.inconsistent_group_protocol
        assert [m.member_id for m in log.describe_group("e").members] == [embedded.member_id]
    finally:
        embedded.close()


def test_admin_apis_show_list_and_delete_groups(server: ServerState, clock: Clock,
                                                log: mqlog.Log) -> None:
    async def scenario() -> None:
        offset_store(log.engine).commit("offsets-only", {TopicPartition("u", 0): 1})
        leader, follower = await stable_pair(server, clock)
        described = await call(server, DESCRIBE, 5, groups=("g", "offsets-only", "missing"),
                               include_authorized_operations=False)
        by_name = {g.group_id: g for g in described.groups}
        assert by_name["g"].group_state == "Stable"
        assert by_name["g"].protocol_data == "range"
        assert {m.member_id: m.member_assignment for m in by_name["g"].members} == {
            leader.member_id: assignment([("t", 0), ("t", 1)]),
            follower.member_id: assignment([("t", 2), ("t", 3)])}
        assert by_name["offsets-only"].group_state == "Empty"
        assert by_name["missing"].group_state == "Dead"
        listed = await call(server, LIST, 4, states_filter=())
        assert {(g.group_id, g.group_state) for g in listed.groups} == {
            ("g", "Stable"), ("offsets-only", "Empty")}
        deleted = await call(server, DELETE, 2, groups_names=("g", "offsets-only", "missing"))
        assert {r.group_id: r.error_code for r in deleted.results} == {
            "g": ErrorCode.non_empty_group, "offsets-only": ErrorCode.none,
            "missing": ErrorCode.group_id_not_found}
        for member in (leader, follower):
            await call(server, LEAVE, 1, group_id="g", member_id=member.member_id)
        deleted = await call(server, DELETE, 2, groups_names=("g",))
        assert deleted.results[0].error_code == ErrorCode.none
        assert "g" not in log.list_groups()

    asyncio.run(scenario())


def test_this_server_coordinates_every_group(server: ServerState) -> None:
    async def scenario() -> None:
        one = await call(server, FIND, 1, key="g", key_type=0)
        assert (one.error_code, one.host, one.port) == (ErrorCode.none, "127.0.0.1", 9092)
        batch = await call(server, FIND, 4, key_type=0, coordinator_keys=("a", "b"))
        assert [(c.key, c.port) for c in batch.coordinators] == [("a", 9092), ("b", 9092)]

    asyncio.run(scenario())


def test_client_ids_and_group_ids_are_checked_before_reaching_the_disk(
        server: ServerState, clock: Clock, log: mqlog.Log, tmp_path: Path) -> None:
    async def scenario() -> None:
        bad_group = await call(server, JOIN, 5, **join_request("../escape"))
        assert bad_group.error_code == ErrorCode.invalid_group_id
        task = asyncio.create_task(call(server, JOIN, 5, client_id="../../x y",
                                        **join_request("g")))
        await settle(lambda: coordinator(server).find("g") is not None and bool(
            coordinator(server).find("g").members), "member registered")
        clock.advance(JOIN_GATHER_MAX_S)
        await coordinator(server).tick()
        answer = await task
        assert answer.error_code == ErrorCode.none
        assert answer.member_id.startswith(".._.._x_y-")  # one file name, no path
        (member,) = log.describe_group("g").members
        assert member.member_id == answer.member_id
        simple = await call(server, COMMIT, 8, **_commit("../escape", "", -1, {("t", 0): 1}))
        assert _codes(simple) == {("t", 0): ErrorCode.invalid_group_id}
        assert not (tmp_path / "escape").exists()

    asyncio.run(scenario())


@pytest.mark.parametrize("when", ["while joining", "once held"])
def test_a_join_whose_connection_closed_does_not_hold_the_others(
        server: ServerState, clock: Clock, when: str) -> None:
    async def scenario() -> None:
        leader, follower = await stable_pair(server, clock)
        gone = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", member_id=follower.member_id)))
        member = coordinator(server).find("g").members[follower.member_id]
        if when == "once held":
            await settle(member.joining, "held")
        else:
            await asyncio.sleep(0)  # the join is under way: its file work in a thread
        gone.cancel()  # the connection closed
        await settle(lambda: member.join_waiter is not None and member.join_waiter.cancelled(),
                     "the held answer is cancelled")
        rejoin = asyncio.create_task(call(server, JOIN, 5, **join_request(
            "g", member_id=leader.member_id)))
        await settle(lambda: coordinator(server).find("g").members[
            leader.member_id].joining(), "leader held")
        clock.advance(21)  # the rebalance timeout: the closed join counts as absent
        await coordinator(server).tick()
        answer = await rejoin
        assert answer.error_code == ErrorCode.none
        assert [m.member_id for m in answer.members] == [leader.member_id]

    asyncio.run(scenario())


def test_only_the_classic_group_protocol_is_advertised() -> None:
    from mqlog.server.kafka._handlers import default_table

    table = default_table()
    for classic in (10, 11, 12, 13, 14, 8, 9, 15, 16, 42, 47):
        assert table.get(classic) is not None
    assert table.get(68) is None  # ConsumerGroupHeartbeat (KIP-848): not advertised
    assert table.get(69) is None  # ConsumerGroupDescribe
