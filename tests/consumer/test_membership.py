"""GroupMembership on its own, driven as a server drives a remote member: join,
sync, heartbeat, leave, generations, fencing, deadlines and commit authority.

No Consumer and no watchdog thread: the clock is a fake one the tests move, and
deadlines are enforced by calling ``expire``, so nothing here depends on timing.
"""

from __future__ import annotations

import dataclasses
import os
import re

import pytest

import mqlog
from mqlog.consumer import GroupMembership, MemberSubscription, TopicPartition, offset_store
from mqlog.errors import (
    CommitFailedError,
    ConfigError,
    IllegalGenerationError,
    IllegalStateError,
    UnknownMemberError,
)

from . import tps

ALL4 = tps("t", 0, 1, 2, 3)
#: Longer than the memberships' check interval (100 ms): each heartbeat looks for changes.
STEP_S = 0.2
LONG_MS = 60_000


@pytest.fixture
def log(log_dir):
    with mqlog.open(log_dir, durability="none") as opened:
        opened.create_topic("t", partitions=4)
        yield opened


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


class Events:
    """A MembershipListener recording its calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TopicPartition]]] = []

    def partitions_assigned(self, partitions: set[TopicPartition]) -> None:
        self.calls.append(("assigned", set(partitions)))

    def partitions_revoked(self, partitions: set[TopicPartition]) -> None:
        self.calls.append(("revoked", set(partitions)))

    def partitions_lost(self, partitions: set[TopicPartition]) -> None:
        self.calls.append(("lost", set(partitions)))


@dataclasses.dataclass
class Remote:
    """What a remote client knows: its membership (held by the server), its member id
    and the generation it last synced."""

    membership: GroupMembership
    member_id: str
    generation: int
    events: Events


def join(log: mqlog.Log, clock: Clock, client_id: str, *, session_ms: int = LONG_MS,
         rebalance_ms: int = LONG_MS, topics=("t",)) -> Remote:
    """A member of group "g" (range assignor: client ids fix the order), joined and
    synced."""
    events = Events()
    membership = GroupMembership(log.engine, "g", listener=events, watchdog=False, clock=clock)
    joined = membership.join(client_id=client_id, topics=list(topics), assignors=("range",),
                             session_timeout_ms=session_ms, rebalance_timeout_ms=rebalance_ms)
    synced = membership.sync(joined.member_id, joined.generation)
    return Remote(membership, joined.member_id, synced.generation, events)


def settle(members: list[Remote], rounds: int = 5) -> None:
    """Heartbeat every member (syncing when told to) for a few rounds of the clock."""
    for _ in range(rounds):
        for member in members:
            member.membership._clock.advance(STEP_S)
            beat = member.membership.heartbeat(member.member_id, member.generation)
            if beat.rebalance:
                member.generation = member.membership.sync(member.member_id,
                                                           beat.generation).generation


def owned(member: Remote) -> set[TopicPartition]:
    return set(member.membership.assignment())


# -- join, sync, heartbeat, leave --------------------------------------------------------------


def test_the_first_member_joins_generation_one_and_owns_everything(log, clock):
    a = join(log, clock, "a")
    assert a.member_id.startswith("a-")
    assert a.generation == 1
    assert owned(a) == ALL4
    assert a.events.calls == [("assigned", ALL4)]
    beat = a.membership.heartbeat(a.member_id, a.generation)
    assert (beat.generation, beat.rebalance) == (1, False)


def test_a_join_increments_the_generation_and_moves_partitions_cooperatively(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    assert b.generation == 2
    assert owned(b) == set()  # a has not let go of them yet
    beat = a.membership.heartbeat(a.member_id, a.generation)
    assert (beat.generation, beat.rebalance) == (2, True)
    synced = a.membership.sync(a.member_id, beat.generation)
    assert (synced.generation, synced.owned, synced.pending) == (2, tps("t", 0, 1), set())
    assert a.events.calls == [("assigned", ALL4), ("revoked", tps("t", 2, 3))]
    b.membership.heartbeat(b.member_id, b.generation)  # takes what came free
    assert owned(b) == tps("t", 2, 3)
    assert b.events.calls == [("assigned", tps("t", 2, 3))]


def test_a_heartbeat_is_quick_only_when_it_would_only_note_the_time(log, clock):
    a = join(log, clock, "a")
    a.membership.heartbeat(a.member_id, a.generation)  # looked at the group just now
    assert a.membership.heartbeat_is_quick(a.member_id, a.generation)
    assert not a.membership.heartbeat_is_quick("another", a.generation)
    assert not a.membership.heartbeat_is_quick(a.member_id, a.generation - 1)
    clock.advance(STEP_S)  # a look at the group is due
    assert not a.membership.heartbeat_is_quick(a.member_id, a.generation)
    a.membership.heartbeat(a.member_id, a.generation)
    assert a.membership.heartbeat_is_quick(a.member_id, a.generation)

    b = join(log, clock, "b")
    clock.advance(STEP_S)
    beat = a.membership.heartbeat(a.member_id, a.generation)
    assert beat.rebalance  # a has a plan to sync
    assert not a.membership.heartbeat_is_quick(a.member_id, a.generation)
    a.generation = a.membership.sync(a.member_id, beat.generation).generation
    assert a.membership.heartbeat_is_quick(a.member_id, a.generation)
    assert not b.membership.heartbeat_is_quick(b.member_id, b.generation)  # 2, 3 to take
    b.membership.heartbeat(b.member_id, b.generation)
    assert owned(b) == tps("t", 2, 3)
    assert b.membership.heartbeat_is_quick(b.member_id, b.generation)
    b.membership.leave(b.member_id)
    assert not b.membership.heartbeat_is_quick(b.member_id, b.generation)


def test_a_heartbeat_that_does_not_look_leaves_what_is_due_to_the_next(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")  # a has partitions to give up, once it looks
    clock.advance(STEP_S)
    beat = a.membership.heartbeat(a.member_id, a.generation, look=False)
    assert not beat.rebalance
    assert not b.membership.heartbeat(b.member_id, b.generation, look=False).rebalance
    assert owned(a) == ALL4 and owned(b) == set()
    assert a.membership.heartbeat(a.member_id, a.generation).rebalance


def test_a_heartbeat_near_the_session_deadline_is_not_quick(log, clock):
    a = join(log, clock, "a", session_ms=100)
    a.membership.heartbeat(a.member_id, a.generation)
    assert a.membership.heartbeat_is_quick(a.member_id, a.generation)
    clock.advance(0.06)  # no look at the group due yet (100 ms), but half the session gone
    assert not a.membership.heartbeat_is_quick(a.member_id, a.generation)


def test_a_leaving_member_revokes_everything_and_the_others_take_it(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    settle([a, b])
    b.membership.leave(b.member_id)
    assert b.events.calls[-1] == ("revoked", tps("t", 2, 3))
    assert owned(b) == set()
    assert os.listdir(os.path.join(log.path, "groups", "g", "members")) == [
        f"{a.member_id}.json"]
    settle([a])
    assert owned(a) == ALL4
    assert a.generation == 3  # a joined 1, b joined 2, b left 3


def test_a_revoke_listener_that_fails_still_releases_the_partitions(log, clock):
    a = join(log, clock, "a")
    failing = Events()
    failing.partitions_revoked = lambda partitions: 1 / 0  # type: ignore[method-assign]
    a.membership._listener = failing
    b = join(log, clock, "b")
    with pytest.raises(ZeroDivisionError):
        settle([a])
    assert owned(a) == tps("t", 0, 1)
    settle([a, b])
    assert owned(b) == tps("t", 2, 3)


def test_the_leader_is_given_every_member_subscription(log, clock):
    log.create_topic("u", partitions=1)
    a = join(log, clock, "a")
    b = GroupMembership(log.engine, "g", watchdog=False, clock=clock)
    joined = b.join(client_id="b", topics=re.compile("[tu]"), assignors=("cooperative", "sticky"),
                    session_timeout_ms=LONG_MS, rebalance_timeout_ms=LONG_MS)
    assert joined.leader_id == a.member_id
    assert joined.members == {}  # not the leader
    again = a.membership.join(client_id="a", topics=["t"], assignors=("range",),
                              session_timeout_ms=LONG_MS, rebalance_timeout_ms=LONG_MS,
                              member_id=a.member_id)
    assert again.member_id == a.member_id
    assert again.members == {
        a.member_id: MemberSubscription("a", frozenset({"t"}), ("range",)),
        joined.member_id: MemberSubscription("b", frozenset({"t", "u"}),
                                             ("cooperative", "sticky")),
    }
    assert a.membership.members() == again.members


# -- fencing -------------------------------------------------------------------------------------


def test_a_stale_generation_is_fenced(log, clock):
    a = join(log, clock, "a")
    join(log, clock, "b")  # generation 2
    with pytest.raises(IllegalGenerationError, match="generation 1 of group 'g' is not the"):
        a.membership.sync(a.member_id, 1)
    beat = a.membership.heartbeat(a.member_id, 1)
    a.generation = a.membership.sync(a.member_id, beat.generation).generation
    with pytest.raises(IllegalGenerationError) as raised:
        a.membership.authorize_commit(a.member_id, 1, tps("t", 0))
    assert isinstance(raised.value, CommitFailedError)
    a.membership.authorize_commit(a.member_id, 2, tps("t", 0))


def test_an_unknown_member_is_fenced_everywhere(log, clock):
    a = join(log, clock, "a")
    with pytest.raises(UnknownMemberError, match="member nobody of group 'g' is not a member"):
        a.membership.heartbeat("nobody", a.generation)
    with pytest.raises(UnknownMemberError):
        a.membership.sync("nobody", a.generation)
    with pytest.raises(UnknownMemberError, match="does not own t/0"):
        a.membership.authorize_commit("nobody", a.generation, tps("t", 0))
    with pytest.raises(UnknownMemberError):
        a.membership.leave("nobody")
    with pytest.raises(UnknownMemberError):
        a.membership.join(client_id="a", topics=["t"], assignors=("range",),
                          session_timeout_ms=LONG_MS, rebalance_timeout_ms=LONG_MS,
                          member_id="nobody")
    assert owned(a) == ALL4  # none of it disturbed the member


def test_a_member_that_left_is_unknown_and_cannot_join_again(log, clock):
    a = join(log, clock, "a")
    a.membership.leave(a.member_id)
    with pytest.raises(UnknownMemberError):
        a.membership.heartbeat(a.member_id, a.generation)
    with pytest.raises(IllegalStateError):
        a.membership.join(client_id="a", topics=["t"], assignors=("range",),
                          session_timeout_ms=LONG_MS, rebalance_timeout_ms=LONG_MS)
    a.membership.close()  # idempotent after leave


def test_joining_twice_without_the_member_id_is_refused(log, clock):
    a = join(log, clock, "a")
    with pytest.raises(IllegalStateError, match="already a member"):
        a.membership.join(client_id="a", topics=["t"], assignors=("range",),
                          session_timeout_ms=LONG_MS, rebalance_timeout_ms=LONG_MS)


@pytest.mark.parametrize("bad", [
    {"client_id": ""},
    {"topics": "t"},
    {"assignors": ("cooperative-sticky",)},
    {"session_timeout_ms": 0},
    {"rebalance_timeout_ms": True},
])
def test_a_bad_join_changes_nothing_on_disk(log, clock, bad):
    membership = GroupMembership(log.engine, "g", watchdog=False, clock=clock)
    request = {"client_id": "a", "topics": ["t"], "assignors": ("range",),
               "session_timeout_ms": LONG_MS, "rebalance_timeout_ms": LONG_MS} | bad
    with pytest.raises(ConfigError):
        membership.join(**request)
    directory = os.path.join(log.path, "groups", "g")
    assert os.listdir(os.path.join(directory, "members")) == []
    assert not os.path.exists(os.path.join(directory, "assignment.json"))


# -- deadlines -----------------------------------------------------------------------------------


def test_a_member_past_its_session_timeout_is_removed(log, clock):
    a = join(log, clock, "a", session_ms=1000)
    b = join(log, clock, "b")
    settle([a, b])
    a.membership.heartbeat(a.member_id, a.generation)
    clock.advance(0.9)
    assert a.membership.expire() is False
    clock.advance(0.2)  # 1.1 s since a's last heartbeat
    assert b.membership.expire() is False
    assert a.membership.expire() is True
    assert a.events.calls[-1] == ("lost", tps("t", 0, 1))
    assert owned(a) == set() and a.membership.member_id == ""
    with pytest.raises(UnknownMemberError, match="removed after 1000 ms without a poll"):
        a.membership.heartbeat(a.member_id, a.generation)
    with pytest.raises(UnknownMemberError, match=r"does not own t/0 \(any more\): removed"):
        a.membership.authorize_commit(a.member_id, a.generation, tps("t", 0))
    settle([b])
    assert owned(b) == ALL4
    rejoined = join(log, clock, "a", session_ms=1000)  # a new member id, as Kafka gives
    assert rejoined.member_id != a.member_id


def test_a_member_that_does_not_sync_within_its_rebalance_timeout_is_removed(log, clock):
    a = join(log, clock, "a", rebalance_ms=1000)
    join(log, clock, "b")
    removed = []
    for _ in range(5):  # a heartbeats but never syncs generation 2, noticed at 0.3 s
        clock.advance(0.3)
        assert a.membership.heartbeat(a.member_id, a.generation).rebalance
        removed.append(a.membership.expire())
    assert removed == [False, False, False, False, True]
    assert a.events.calls[-1] == ("lost", ALL4)
    with pytest.raises(UnknownMemberError, match="not syncing generation 2"):
        a.membership.sync(a.member_id, 2)


def test_heartbeats_keep_a_member_alive(log, clock):
    a = join(log, clock, "a", session_ms=1000)
    for _ in range(10):
        clock.advance(0.5)
        a.membership.heartbeat(a.member_id, a.generation)
        assert a.membership.expire() is False
    assert owned(a) == ALL4


# -- commit authority ----------------------------------------------------------------------------


def test_only_the_owner_may_commit_a_partition(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    settle([a, b])
    a.membership.authorize_commit(a.member_id, a.generation, tps("t", 0, 1))
    with pytest.raises(CommitFailedError, match=r"member a-\w+ of group 'g' does not own t/2"
                       ) as raised:
        a.membership.authorize_commit(a.member_id, a.generation, tps("t", 1, 2))
    assert type(raised.value) is CommitFailedError
    b.membership.authorize_commit(b.member_id, b.generation, tps("t", 2, 3))


def test_commit_writes_only_what_the_check_allows(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    settle([a, b])
    a.membership.commit(a.member_id, a.generation, {TopicPartition("t", 0): 5}, "meta")
    with pytest.raises(CommitFailedError):
        a.membership.commit(a.member_id, a.generation,
                            {TopicPartition("t", 1): 6, TopicPartition("t", 2): 6})
    with pytest.raises(IllegalGenerationError):
        a.membership.commit(a.member_id, a.generation - 1, {TopicPartition("t", 1): 7})
    reader = log.consumer("g")
    assert [reader.committed(tp) for tp in sorted(ALL4)] == [5, None, None, None]
    stored = offset_store(log.engine).committed("g", TopicPartition("t", 0))
    assert (stored.metadata, stored.member_id) == ("meta", a.member_id)


def test_a_consumer_commit_after_removal_names_the_unknown_member(log):
    """The Consumer's commits go through the same check: once removed (here by its
    own leave), its member id is unknown."""
    consumer = log.consumer("g", topics="t")
    member_id = consumer._member.member_id
    consumer._member.leave(member_id)
    with pytest.raises(UnknownMemberError, match=f"member {member_id} of group 'g'"):
        consumer.commit({TopicPartition("t", 0): 0})
    consumer.close()


# -- client-side assignment ------------------------------------------------------------------------


def plan_file(log: mqlog.Log) -> bytes:
    with open(os.path.join(log.path, "groups", "g", "assignment.json"), "rb") as handle:
        return handle.read()


def test_the_leader_plan_replaces_the_assignment_of_its_generation(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    beat = a.membership.heartbeat(a.member_id, a.generation)
    synced = a.membership.sync(a.member_id, beat.generation, assignment={
        a.member_id: tps("t", 0), b.member_id: tps("t", 1, 2, 3)})
    assert (synced.generation, synced.owned) == (2, tps("t", 0))
    assert a.events.calls[-1] == ("revoked", tps("t", 1, 2, 3))
    beat = b.membership.heartbeat(b.member_id, b.generation)
    assert (beat.generation, beat.rebalance) == (2, True)  # same generation, a new plan
    b.generation = b.membership.sync(b.member_id, 2).generation
    assert (b.generation, owned(b)) == (2, tps("t", 1, 2, 3))
    settle([a, b])  # nothing moves back: the leader's plan stays
    assert (owned(a), owned(b), a.generation, b.generation) == (tps("t", 0), tps("t", 1, 2, 3),
                                                                 2, 2)
    rejoined = b.membership.join(client_id="b", topics=["t"], assignors=("range",),
                                 session_timeout_ms=LONG_MS, rebalance_timeout_ms=LONG_MS,
                                 member_id=b.member_id)
    assert rejoined.generation == 2  # an unchanged subscription does not rebalance


@pytest.mark.parametrize("bad", [
    {"nobody": tps("t", 0)},
    {"A": tps("t", 4)},
    {"A": {TopicPartition("u", 0)}},
    {"A": tps("t", 0, 1), "B": tps("t", 1)},
])
def test_a_bad_leader_plan_changes_nothing(log, clock, bad):
    log.create_topic("u", partitions=1)
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    a.generation = a.membership.sync(a.member_id, 2).generation
    ids = {"A": a.member_id, "B": b.member_id}
    before = plan_file(log)
    with pytest.raises(ConfigError):
        a.membership.sync(a.member_id, 2, assignment={ids.get(m, m): p for m, p in bad.items()})
    assert plan_file(log) == before
    assert owned(a) == tps("t", 0, 1)


def test_only_the_leader_of_the_current_generation_assigns(log, clock):
    a = join(log, clock, "a")
    b = join(log, clock, "b")
    with pytest.raises(IllegalStateError, match="not the leader"):
        b.membership.sync(b.member_id, 2, assignment={b.member_id: ALL4})
    with pytest.raises(IllegalGenerationError):
        a.membership.sync(a.member_id, 1, assignment={a.member_id: ALL4})
    assert b'"assigned_by"' not in plan_file(log)
