"""Consumers and consumer groups on a Kafka cluster, against ``mqlog serve`` and
Tansu: poll, iteration, commits, seeks, positions, pause/resume, rebalance
callbacks, and the group administration (list, describe, reset, delete)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import mqlog
from mqlog.consumer import TopicPartition

from .conftest import GROUP_OPTIONS, Broker, skip_on_tansu, unique
from .test_log_api import TANSU_TIME

#: Longest a group may take to hand out its partitions (Tansu waits the rebalance timeout).
JOIN_TIMEOUT_S = 60.0
TANSU_MEMBERS = "DescribeGroups answers no members for a stable group"


@pytest.fixture
def log(broker: Broker) -> Iterator[mqlog.Log]:
    with mqlog.open(broker.url) as opened:
        yield opened


def filled(log: mqlog.Log, partitions: int, per_partition: int) -> str:
    """A new topic with ``per_partition`` records (values ``P-N``) in each partition,
    sent one at a time, at timestamps 1_700_000_000_000 + 10 * N."""
    name = unique("topic")
    log.create_topic(name, partitions)
    with log.producer() as producer:
        for number in range(partitions):
            for n in range(per_partition):
                producer.send(name, f"{number}-{n}", partition=number,
                              timestamp=1_700_000_000_000 + 10 * n).result(30)
    return name


def poll_until(consumer: mqlog.Consumer, count: int) -> list[mqlog.Message]:
    got: list[mqlog.Message] = []
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.poll(timeout=1.0)
    return got


def test_group_poll_commit_committed_and_callbacks(broker: Broker, log: mqlog.Log) -> None:
    name = filled(log, 2, 5)
    group = unique("group")
    assigned: list[set[TopicPartition]] = []
    revoked: list[set[TopicPartition]] = []
    with log.consumer(group, **GROUP_OPTIONS) as consumer:
        consumer.subscribe([name], on_assigned=assigned.append, on_revoked=revoked.append)
        messages = poll_until(consumer, 10)
        assert sorted((m.partition, m.offset) for m in messages) == [
            (p, n) for p in range(2) for n in range(5)]
        assert all(isinstance(m, mqlog.Message) and m.topic == name for m in messages)
        assert assigned and set().union(*assigned) == {TopicPartition(name, 0),
                                                        TopicPartition(name, 1)}
        assert consumer.commit() == {TopicPartition(name, 0): 5, TopicPartition(name, 1): 5}
        assert consumer.committed(TopicPartition(name, 0)) == 5
        consumer.commit({TopicPartition(name, 1): 3})
        assert consumer.committed(TopicPartition(name, 1)) == 3
        assert consumer.lag() == {TopicPartition(name, 0): 0, TopicPartition(name, 1): 0}
    assert revoked and set().union(*revoked) == set().union(*assigned)  # closing gives them up
    with pytest.raises(mqlog.LogClosedError):
        consumer.poll()
    # A new member of the group starts from the committed offsets.
    with log.consumer(group, name, **GROUP_OPTIONS) as again:
        assert sorted((m.partition, m.offset) for m in poll_until(again, 2)) == [(1, 3), (1, 4)]


@pytest.mark.parametrize("assignor", ["sticky", "range"])
def test_on_assigned_may_seek_the_partitions_it_is_given(broker: Broker, log: mqlog.Log,
                                                         assignor: str) -> None:
    name = filled(log, 1, 5)
    with log.consumer(unique("seeking"), assignor=assignor, **GROUP_OPTIONS) as consumer:
        consumer.subscribe(name, on_assigned=lambda tps: [consumer.seek(tp, 3) for tp in tps])
        assert [m.offset for m in poll_until(consumer, 2)] == [3, 4]


def test_iteration_stops_after_consumer_timeout(broker: Broker, log: mqlog.Log) -> None:
    name = filled(log, 1, 3)
    with log.consumer(unique("iterating"), name, consumer_timeout_ms=8000,
                      **GROUP_OPTIONS) as consumer:
        assert [m.value for m in consumer] == [b"0-0", b"0-1", b"0-2"]


def test_poll_returns_messages_with_every_field(broker: Broker, log: mqlog.Log) -> None:
    name = unique("fields")
    log.create_topic(name, 1)
    with log.producer() as producer:
        producer.send(name, b"v", key=b"k", headers={"h": b"x"},
                      timestamp=1_700_000_000_000).result(30)
        producer.send(name, "w", timestamp=1_700_000_000_010).result(30)
    with log.consumer(auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition(name, 0)])
        got = poll_until(consumer, 2)
    assert got == [mqlog.Message(b"v", b"k", {"h": b"x"}, 1_700_000_000_000, 0, name, 0),
                   mqlog.Message(b"w", None, {}, 1_700_000_000_010, 1, name, 0)]
    assert all(isinstance(m, mqlog.Message) for m in got)
    assert repr(got[0]) == (f"Message(topic={name!r}, partition=0, offset=0, "
                            f"timestamp=1700000000000, key=b'k', value=b'v', "
                            f"headers={{'h': b'x'}})")
    with pytest.raises(TypeError):
        got[1].headers["h"] = b"y"  # type: ignore[index]  # no headers: the shared read-only map


def test_assign_seek_position_pause_resume(broker: Broker, log: mqlog.Log) -> None:
    name = filled(log, 2, 6)
    tp0, tp1 = TopicPartition(name, 0), TopicPartition(name, 1)
    with log.consumer(auto_offset_reset="earliest") as consumer:
        consumer.assign([tp0, tp1])
        assert consumer.position(tp0) == 0
        consumer.seek(tp0, 4)
        assert consumer.position(tp0) == 4
        consumer.pause(tp1)
        assert consumer.paused() == {tp1}
        got = poll_until(consumer, 2)
        assert [(m.partition, m.offset) for m in got] == [(0, 4), (0, 5)]
        assert consumer.position(tp0) == 6
        consumer.seek(tp0, 2)  # fetched from: the position is the seek's until the next fetch
        assert consumer.position(tp0) == 2
        assert consumer.lag()[tp0] == 4
        consumer.seek(tp0, 6)
        consumer.resume(tp1)
        assert consumer.paused() == set()
        assert [(m.partition, m.offset) for m in poll_until(consumer, 6)] == [
            (1, n) for n in range(6)]
        consumer.seek_to_beginning(tp0)
        assert [m.offset for m in poll_until(consumer, 6)] == list(range(6))
        consumer.seek_to_end()
        assert consumer.poll(timeout=0.5) == []
        with pytest.raises(mqlog.IllegalStateError):
            consumer.commit()
        with pytest.raises(mqlog.IllegalStateError):
            consumer.seek(TopicPartition(name, 5), 0)
        with pytest.raises(mqlog.ConfigError):
            consumer.seek(tp0, -1)


def test_seek_to_time(broker: Broker, log: mqlog.Log) -> None:
    skip_on_tansu(broker, TANSU_TIME)
    name = filled(log, 1, 6)
    with log.consumer() as consumer:
        consumer.assign([TopicPartition(name, 0)])
        consumer.seek_to_time(1_700_000_000_025)
        assert [m.offset for m in poll_until(consumer, 3)] == [3, 4, 5]


def test_describe_list_reset_delete_groups(broker: Broker, log: mqlog.Log) -> None:
    name = filled(log, 2, 4)
    group = unique("admin")
    with log.consumer(group, name, **GROUP_OPTIONS) as consumer:
        poll_until(consumer, 8)
        consumer.commit({TopicPartition(name, 0): 4, TopicPartition(name, 1): 1})
        assert group in log.list_groups()
        if broker.kind == "serve":  # see TANSU_MEMBERS
            live = log.describe_group(group)
            assert live.state == "Stable"
            (member,) = live.members
            assert set(member.assignment) == {TopicPartition(name, 0), TopicPartition(name, 1)}
        with pytest.raises(mqlog.GroupNotEmptyError):
            log.reset_offsets(group, name, to="earliest")
        if broker.kind == "serve":  # Tansu 0.6.0 deletes a group that has live members
            with pytest.raises(mqlog.GroupNotEmptyError):
                log.delete_group(group)
    described = log.describe_group(group)
    assert isinstance(described, mqlog.GroupDescription)
    assert described.members == []
    assert [(p.partition, p.committed_offset, p.end_offset, p.lag) for p in
            described.partitions] == [(0, 4, 4, 0), (1, 1, 4, 3)]
    assert described.partitions[1].oldest_unconsumed_age_ms is not None
    assert described.total_lag == 3
    plan = log.reset_offsets(group, name, to="earliest", dry_run=True)
    assert plan == {TopicPartition(name, 0): (4, 0), TopicPartition(name, 1): (1, 0)}
    assert log.describe_group(group).total_lag == 3  # a dry run changes nothing
    assert log.reset_offsets(group, name, [1], shift_by=2) == {TopicPartition(name, 1): (1, 3)}
    with pytest.raises(mqlog.OffsetOutOfRangeError):
        log.reset_offsets(group, name, to=99)
    log.alter_offsets(group, {TopicPartition(name, 0): 2})
    assert [p.committed_offset for p in log.describe_group(group).partitions] == [2, 3]
    log.delete_group(group)
    assert group not in log.list_groups()
    with pytest.raises(mqlog.UnknownGroupError):
        log.describe_group(group)
    with pytest.raises(mqlog.UnknownGroupError):
        log.delete_group(group)


def test_describe_group_members_of_a_live_group(broker: Broker, log: mqlog.Log) -> None:
    skip_on_tansu(broker, TANSU_MEMBERS)
    name = filled(log, 1, 1)
    group = unique("members")
    with log.consumer(group, name, client_id="worker-1", **GROUP_OPTIONS) as consumer:
        poll_until(consumer, 1)
        (member,) = log.describe_group(group).members
        assert member.client_id == "worker-1"
        assert member.assignment == [TopicPartition(name, 0)]
