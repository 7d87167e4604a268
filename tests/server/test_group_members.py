"""Consumer group members, each in a process of its own, against a real server
process: kcat, kafkajs and kafka-python share a topic's partitions with each
assignor they offer, and a member that leaves (SIGTERM: it closes its
consumer) or is killed (``kill -9``: it just vanishes; kcat, kafkajs,
aiokafka) hands its partitions over to the other member, which then reads
every record.

Each test follows the same steps: two members join; once the group is Stable
with both holding a share of the four partitions (DescribeGroups: what the
leader assigned, which must also be mqlog's plan), records are produced
(embedded) to every partition, and each member must read exactly the records
of its own share (so no partition was read by two members at once); then one
member goes, the other must own every partition and read every record
produced after that. Waits poll a condition, with generous limits for a loaded
machine; the members' session timeout is 3 s.
(Members in the test's own process: test_groups_python_clients.py,
test_kafka_groups.py.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

import mqlog
from tests.server import _python_member, kafkajs, kcat
from tests.server._members import MemberProcess
from tests.server._serve import RunningServer

TOPIC = "t"
GROUP = "members"
ALL = frozenset(range(4))
#: Longest any step waits (a loaded machine); never an assertion about speed.
WAIT_S = 90.0
#: Short session timeouts, so that a killed member is removed quickly; heartbeats
#: often enough that a loaded machine does not miss the session.
SESSION_TIMEOUT_MS = str(_python_member.SESSION_TIMEOUT_MS)
HEARTBEAT_INTERVAL_MS = str(_python_member.HEARTBEAT_INTERVAL_MS)
#: What a share looks like with two members, where the assignor decides it
#: (range: consecutive partitions; round-robin: alternate ones); the sticky
#: assignors only promise two partitions each.
SHAPES = {"range": {frozenset({0, 1}), frozenset({2, 3})},
          "roundrobin": {frozenset({0, 2}), frozenset({1, 3})}}


@dataclasses.dataclass(frozen=True)
class Read:
    """One record a member read."""

    partition: int
    offset: int
    value: str


@dataclasses.dataclass
class Member:
    """A member process and how to see its records as :class:`Read`."""

    name: str
    process: MemberProcess
    convert: Callable[[Any], Read]

    def reads(self) -> list[Read]:
        return [self.convert(line) for line in self.process.seen()]

    def values(self) -> set[str]:
        return {read.value for read in self.reads()}


def _kcat(address: str, name: str, assignor: str, instance_id: str | None = None) -> Member:
    config = {"partition.assignment.strategy": assignor,
              "session.timeout.ms": str(_python_member.session_timeout_ms(instance_id)),
              "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
              "auto.commit.interval.ms": "200"}
    if instance_id is not None:
        config["group.instance.id"] = instance_id
    return Member(name, kcat.group_member(address, GROUP, [TOPIC], name, config=config),
                  lambda r: Read(r.partition, r.offset, r.value))


def _kafkajs(address: str, name: str, assignor: str) -> Member:
    assert assignor == "roundrobin", "kafkajs 2.2.4 ships only its round-robin assigner"
    process = kafkajs.group_member(address, TOPIC, GROUP, name,
                                   "--session-timeout-ms", SESSION_TIMEOUT_MS,
                                   "--heartbeat-ms", HEARTBEAT_INTERVAL_MS,
                                   "--max-wait-ms", "500")
    return Member(name, process, _from_json)


def _python(client: str) -> Callable[..., Member]:
    def start(address: str, name: str, assignor: str, instance_id: str | None = None
              ) -> Member:
        command = [sys.executable, "-m", "tests.server._python_member", client, address,
                   GROUP, TOPIC, name, assignor, *([instance_id] if instance_id else [])]
        return Member(name, MemberProcess(command, _json_line), _from_json)
    return start


def _json_line(line: str) -> dict | None:
    return json.loads(line) if line.strip() else None


def _from_json(line: dict) -> Read:
    """A record line of kafkajs_client.js or _python_member.py."""
    return Read(line["partition"], line["offset"], line["value"])


STARTERS: dict[str, Callable[..., Member]] = {
    "kcat": _kcat, "kafkajs": _kafkajs,
    "kafka-python": _python("kafka-python"), "aiokafka": _python("aiokafka")}


@pytest.fixture
def log(kafka_server: RunningServer) -> Iterator[mqlog.Log]:
    with mqlog.open(kafka_server.directory) as opened:
        opened.create_topic(TOPIC, len(ALL))
        yield opened


def shares(log: mqlog.Log) -> dict[str, frozenset[int]]:
    """Client id -> the partitions mqlog's plan gives that member (live members).
    Before the leader's SyncGroup this is mqlog's placeholder plan: see
    :func:`stable_shares`."""
    if GROUP not in log.list_groups():
        return {}
    return {m.client_id: frozenset(tp.partition for tp in m.assignment)
            for m in log.describe_group(GROUP).members}


def stable_shares(admin: AdminClient) -> dict[str, frozenset[int]]:
    """Client id -> the partitions the group's leader assigned that member, as
    DescribeGroups shows them once the group is Stable (the leader synced);
    empty while it is not."""
    described = admin.describe_consumer_groups([GROUP])[GROUP].result(timeout=30)
    if described.state != ConsumerGroupState.STABLE:
        return {}
    return {m.client_id: frozenset(tp.partition for tp in m.assignment.topic_partitions)
            for m in described.members}


def wait_for(condition: Callable[[], bool], what: str, members: list[Member]) -> None:
    """Poll ``condition`` every 50 ms for up to :data:`WAIT_S`; fail at once,
    with its stderr, when one of ``members`` has exited."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        for member in members:
            if not member.process.running():
                raise AssertionError(f"{member.name} exited ({member.process.process.returncode})"
                                     f" while waiting for {what}: {member.process.stderr()}")
        if time.monotonic() > deadline:
            details = "\n".join(f"{m.name}: {m.process.stderr()}" for m in members)
            raise AssertionError(f"not within {WAIT_S} s: {what}\n{details}")
        time.sleep(0.05)


def produce(log: mqlog.Log, prefix: str) -> set[str]:
    """Two records to each partition, embedded; their values."""
    values = {f"{prefix}-{n}": n % len(ALL) for n in range(2 * len(ALL))}
    with log.producer() as producer:
        for value, partition in values.items():
            producer.send(TOPIC, value, partition=partition)
    return set(values)


def two_shares(address: str, members: list[Member]) -> dict[str, frozenset[int]]:
    """member-a's and member-b's shares once the group is stable with both."""
    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    owned: dict[str, frozenset[int]] = {}

    def both_own_a_share() -> bool:
        owned.clear()
        owned.update(stable_shares(admin))
        return set(owned) == {"member-a", "member-b"} and all(owned.values()) and \
            owned["member-a"] | owned["member-b"] == ALL
    wait_for(both_own_a_share, "both members own a share", members)
    assert not owned["member-a"] & owned["member-b"]
    return owned


def share_then_hand_over(log: mqlog.Log, start: Callable[[str, str, str], Member],
                         address: str, assignor: str, kill: bool) -> None:
    """The steps of every test here (see the module's docstring): member-a
    goes (killed, or stopped), member-b takes over."""
    with contextlib.ExitStack() as stack:
        members = []
        for name in ("member-a", "member-b"):
            member = start(address, name, assignor)
            stack.enter_context(member.process)
            members.append(member)
        going, staying = members
        owned = two_shares(address, members)
        assert shares(log) == owned  # mqlog's plan is the leader's assignment
        if assignor in SHAPES:
            assert set(owned.values()) == SHAPES[assignor], owned
        else:
            assert sorted(map(len, owned.values())) == [2, 2], owned

        first = produce(log, "first")
        wait_for(lambda: going.values() | staying.values() >= first, "every record read",
                 members)
        for member in members:  # each read its own share, and only that
            assert {read.partition for read in member.reads()} == owned[member.name], (
                member.name, member.reads(), owned)

        if kill:
            going.process.kill()
        else:
            assert going.process.stop() == 0, going.process.stderr()
        wait_for(lambda: shares(log) == {"member-b": ALL}, "member-b owns every partition",
                 [staying])
        second = produce(log, "second")
        wait_for(lambda: staying.values() >= second, "member-b reads every new record",
                 [staying])
        assert going.values() | staying.values() >= first | second


@pytest.mark.parametrize(("client", "assignor"), [
    ("kcat", "range"), ("kcat", "roundrobin"), ("kcat", "cooperative-sticky"),
    ("kafka-python", "range"), ("kafka-python", "roundrobin"), ("kafka-python", "sticky"),
    ("kafka-python", "cooperative-sticky"),
    ("kafkajs", "roundrobin"),
])
def test_members_share_by_assignor_and_one_leaves(kafka_server: RunningServer,
                                                  log: mqlog.Log, client: str,
                                                  assignor: str) -> None:
    share_then_hand_over(log, STARTERS[client], kafka_server.address, assignor, kill=False)


@pytest.mark.parametrize("client", ["kcat", "kafkajs", "aiokafka", "kafka-python"])
def test_a_killed_member_hands_its_partitions_over(kafka_server: RunningServer,
                                                   log: mqlog.Log, client: str) -> None:
    assignor = "roundrobin" if client == "kafkajs" else "range"
    share_then_hand_over(log, STARTERS[client], kafka_server.address, assignor, kill=True)


@pytest.mark.parametrize("client", ["kcat", "aiokafka", "kafka-python"])
def test_a_restarted_static_member_keeps_its_share_without_a_rebalance(
        kafka_server: RunningServer, log: mqlog.Log, client: str) -> None:
    """KIP-345: member-a is static (``group.instance.id``, a 60 s session); killed
    (kill -9) and started again, the new process reads member-a's share at
    once, in the same generation: member-b's share never moved."""
    start = STARTERS[client]
    with contextlib.ExitStack() as stack:
        static = start(kafka_server.address, "member-a", "range", "static-a")
        stack.enter_context(static.process)
        dynamic = start(kafka_server.address, "member-b", "range")
        stack.enter_context(dynamic.process)
        owned = two_shares(kafka_server.address, [static, dynamic])
        generation = log.describe_group(GROUP).generation
        static.process.kill()
        again = start(kafka_server.address, "member-a", "range", "static-a")
        stack.enter_context(again.process)
        records = produce(log, "after")
        wait_for(lambda: again.values() | dynamic.values() >= records,
                 "the restarted member and member-b read every new record", [again, dynamic])
        assert {read.partition for read in again.reads()} <= owned["member-a"]
        assert {read.partition for read in dynamic.reads()} <= owned["member-b"]
        assert log.describe_group(GROUP).generation == generation  # no rebalance
