"""Queue groups through the group administration (``mqlog.consumer.admin``):
``list_groups``, ``describe_group`` with the queue's depth, ``reset_offsets``
and ``delete_group``, and the one namespace consumer and queue groups share.

On the fake clock: delays and lock deadlines are exact.
"""

from __future__ import annotations

import os
import socket

import pytest

import mqlog
from mqlog.consumer._config import TopicPartition
from mqlog.errors import ConfigError, GroupNotEmptyError, UnknownGroupError
from tests.queue._children import fill

LOCK_S = 10


@pytest.fixture
def log(log_dir, clock):
    """A log on the fake clock with a two-partition topic ``t``."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t", partitions=2)
        yield opened


def depth(description) -> list[tuple]:
    """Per partition: (partition, position, end, lag, ready, in flight, delayed,
    expired, dead-lettered)."""
    return [(p.partition, p.committed_offset, p.end_offset, p.lag, p.ready, p.in_flight,
             p.delayed, p.expired, p.dead_lettered) for p in description.partitions]


def test_a_queue_group_is_listed_and_described_with_its_depth(log, clock):
    fill(log, "t", 0, 10)
    fill(log, "t", 1, 4)
    worker = log.queue("w", "t", ack_timeout_s=LOCK_S, max_deliveries=1)
    other = log.queue("w", "t", ack_timeout_s=LOCK_S, max_deliveries=1)
    taken = worker.receive(max_messages=5)  # partition 0: offsets 0-4
    assert [(m.partition, m.offset) for m in taken] == [(0, o) for o in range(5)]
    taken[0].ack()
    taken[1].ack()
    taken[2].nack(delay_s=30)
    clock.advance(1000)
    assert log.list_groups() == ["w"]

    description = log.describe_group("w")
    assert (description.group, description.kind, description.state, description.generation) \
        == ("w", "queue", "Stable", 0)
    # partition 0: 0-1 acked, 2 delayed, 3-4 in flight, 5-9 ready; partition 1 not served yet
    assert depth(description) == [(0, 2, 10, 8, 5, 2, 1, 0, 0)]
    [partition] = description.partitions
    assert partition.oldest_unconsumed_age_ms == 1000  # offset 2 was appended 1 s ago
    assert partition.member_id is None
    members = {m.member_id: m for m in description.members}
    assert set(members) == {str(worker.member_id), str(other.member_id)}
    for member in members.values():
        assert (member.client_id, member.host, member.pid) == ("", socket.gethostname(),
                                                               os.getpid())
        assert member.assignment == [TopicPartition("t", 0)]
    assert description.total_lag == 8

    clock.advance(LOCK_S * 1000)  # 3 and 4 run out of their one delivery
    assert len(other.receive(max_messages=100)) == 4 + 5  # partition 1, then 0: 5-9
    described = {p.partition: p for p in log.describe_group("w").partitions}
    assert (described[0].dead_lettered, described[0].ready, described[0].in_flight) \
        == (2, 0, 5)
    assert (described[1].ready, described[1].in_flight, described[1].lag) == (0, 4, 4)
    worker.close()
    other.close()
    assert log.describe_group("w").state == "Empty"
    assert log.describe_group("w").members == []


def test_records_not_yet_in_the_window_count_as_ready(log):
    worker = log.queue("w", "t")
    assert worker.receive() == []
    fill(log, "t", 1, 7)
    described = {p.partition: p for p in log.describe_group("w").partitions}
    assert (described[1].committed_offset, described[1].ready, described[1].lag) == (0, 7, 7)
    assert described[0].lag == 0 and described[0].oldest_unconsumed_age_ms is None


def test_consumer_groups_are_described_with_their_kind_and_no_depth(log):
    fill(log, "t", 0, 3)
    with log.consumer("c", "t", auto_offset_reset="earliest") as consumer:
        assert len(consumer.poll(timeout=1)) == 3
        consumer.commit()
    description = log.describe_group("c")
    assert description.kind == "consumer"
    assert {(p.ready, p.in_flight, p.delayed, p.expired, p.dead_lettered)
            for p in description.partitions} == {(None, None, None, None, None)}


def test_consumer_and_queue_groups_share_one_namespace(log):
    fill(log, "t", 0, 1)
    with log.consumer("c", "t") as consumer:
        consumer.poll(timeout=1)
        consumer.commit()
    with pytest.raises(ConfigError, match="'c' is a consumer group; a queue group needs"):
        log.queue("c", "t")
    log.queue("q", "t").close()
    with pytest.raises(ConfigError, match="'q' is a queue group; a consumer group needs"):
        log.consumer("q", "t")
    assert log.list_groups() == ["c", "q"]
    assert not os.path.exists(os.path.join(log.path, "groups", "q"))
    assert not os.path.exists(os.path.join(log.path, "queues", "c"))


def test_a_group_known_only_by_committed_offsets_is_a_consumer_group(log):
    log.reset_offsets("offsets-only", "t", to="latest")
    with pytest.raises(ConfigError, match="is a consumer group"):
        log.queue("offsets-only", "t")


def test_reset_moves_a_queue_groups_position_and_forgets_deliveries(log):
    fill(log, "t", 0, 5)
    worker = log.queue("w", "t", ack_timeout_s=LOCK_S)
    for message in worker.receive(max_messages=3):
        message.ack()
    held = worker.receive(max_messages=1)
    assert held[0].offset == 3
    held[0].nack(delay_s=0, reason="try later")
    with pytest.raises(GroupNotEmptyError, match="cannot reset offsets of group 'w' while it "
                                                 r"has live members: \d+ \(pid \d+ on "):
        log.reset_offsets("w", "t", to="earliest")
    worker.close()

    plan = log.reset_offsets("w", "t", to="earliest", dry_run=True)
    assert plan == {TopicPartition("t", 0): (3, 0), TopicPartition("t", 1): (0, 0)}
    assert log.describe_group("w").partitions[0].committed_offset == 3  # dry run: unchanged

    assert log.reset_offsets("w", "t", [0], to=1) == {TopicPartition("t", 0): (3, 1)}
    again = log.queue("w", "t", ack_timeout_s=LOCK_S)
    got = again.receive(max_messages=10)
    assert [(m.partition, m.offset, m.delivery_count) for m in got] == [
        (0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1)]  # new to the group again
    reasons = os.path.join(log.path, "queues", "w", "t", "0.reasons")
    assert not os.path.exists(reasons)  # the nack reason of offset 3 is forgotten
    again.close()


def test_delete_removes_a_queue_group_but_not_its_dead_letters(log):
    fill(log, "t", 0, 1)
    worker = log.queue("w", "t", ack_timeout_s=LOCK_S, max_deliveries=1)
    worker.receive()[0].nack(delay_s=0)
    assert worker.receive() == []  # over max_deliveries: dead-lettered
    with pytest.raises(GroupNotEmptyError, match="cannot delete group 'w'"):
        log.delete_group("w")
    worker.close()
    log.delete_group("w")
    assert log.list_groups() == []
    assert not os.path.exists(os.path.join(log.path, "queues", "w"))
    assert log.end_offset("t.dlq", 0) == 1
    with pytest.raises(UnknownGroupError, match="unknown group 'w'"):
        log.describe_group("w")
    fresh = log.queue("w", "t")  # the name is free again; the record is new to it
    assert [(m.offset, m.delivery_count) for m in fresh.receive()] == [(0, 1)]
    fresh.close()


def test_partitions_of_a_deleted_topic_are_left_out(log):
    log.create_topic("gone")
    fill(log, "gone", 0, 2)
    worker = log.queue("w", ["t", "gone"])
    assert len(worker.receive()) == 2
    worker.close()
    log.delete_topic("gone")
    assert [(p.topic, p.partition) for p in log.describe_group("w").partitions] == [
        ("t", 0), ("t", 1)]
    assert [(r.topic, r.partition) for r in log.describe_queue("w")] == [
        ("t", 0), ("t", 1)]


def test_a_queue_alone_does_not_create_the_offsets_topic(log):
    log.queue("w", "t").close()
    assert not os.path.exists(os.path.join(log.path, "topics", "__consumer_offsets"))
