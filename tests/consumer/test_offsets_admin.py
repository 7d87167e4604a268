"""Group offsets as an operator moves them: an offset beyond the end is refused,
one below the start clamped; reset to the current offset; a reset plan of several
topics applied in one commit; a group's offsets of a topic forgotten."""

from __future__ import annotations

import pytest

import mqlog
from mqlog import Record
from mqlog.consumer import TopicPartition
from mqlog.errors import GroupNotEmptyError, OffsetOutOfRangeError, UnknownGroupError

from .test_admin import TP0, TP1, commit, committed, offsets_end

U0 = TopicPartition("u", 0)


@pytest.fixture
def log(log_dir, clock):
    """Topic t: 10 records in partition 0, 5 in partition 1; topic u: 3 records."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t", partitions=2)
        opened.create_topic("u")
        for topic, partition, count in (("t", 0, 10), ("t", 1, 5), ("u", 0, 3)):
            opened.append(topic, partition, [Record(b"r%d" % i) for i in range(count)])
        yield opened


def test_an_offset_beyond_the_end_is_refused_writing_nothing(log):
    commit(log, "g", {TP0: 4, TP1: 2})
    end = offsets_end(log, "g")
    with pytest.raises(OffsetOutOfRangeError, match=r"^offset 6 is beyond the end of t/1 \(5\)"):
        log.reset_offsets("g", "t", to=6)  # fits t/0, not t/1: nothing moves
    with pytest.raises(OffsetOutOfRangeError) as raised:
        log.alter_offsets("g", {TP0: 3, U0: 4})
    assert (raised.value.offset, raised.value.end_offset) == (4, 3)
    assert committed(log, "g") == {TP0: 4, TP1: 2}
    assert offsets_end(log, "g") == end
    assert log.reset_offsets("g", "t", [0], to=10) == {TP0: (4, 10)}  # the end itself: fine


def test_an_offset_below_the_log_start_becomes_the_log_start(log):
    log.create_topic("small", segment_bytes=4096, retention_bytes=1)
    for _ in range(40):
        log.append("small", 0, [b"x" * 1000])
    log.enforce_retention("small")
    start = log.start_offset("small", 0)
    assert start > 0
    small = TopicPartition("small", 0)
    assert log.alter_offsets("g", {small: 1}) == {small: (None, start)}
    assert log.reset_offsets("g", "small", to=0) == {small: (start, start)}


def test_to_current_keeps_committed_offsets_and_commits_the_end_elsewhere(log):
    commit(log, "g", {TP0: 4})
    assert log.reset_offsets("g", "t", to="current", dry_run=True) == {
        TP0: (4, 4), TP1: (None, 5)}
    assert committed(log, "g") == {TP0: 4}
    log.reset_offsets("g", "t", to="current")
    assert committed(log, "g") == {TP0: 4, TP1: 5}


def test_alter_offsets_applies_a_plan_of_several_topics_in_one_commit(log):
    end = offsets_end(log, "g")
    plan = log.alter_offsets("g", {TP0: 7, TP1: 0, U0: 3})
    assert plan == {TP0: (None, 7), TP1: (None, 0), U0: (None, 3)}
    assert committed(log, "g") == {TP0: 7, TP1: 0, U0: 3}
    assert offsets_end(log, "g") == end + 3  # one batch of three records
    assert log.alter_offsets("g", {U0: 1}, dry_run=True) == {U0: (3, 1)}
    with pytest.raises(mqlog.UnknownPartitionError):
        log.alter_offsets("g", {TopicPartition("t", 2): 0})
    with pytest.raises(TypeError):
        log.alter_offsets("g", {TP0: "1"})
    assert committed(log, "g") == {TP0: 7, TP1: 0, U0: 3}


def test_delete_offsets_forgets_one_topic_or_all(log):
    commit(log, "g", {TP0: 4, TP1: 2, U0: 1})
    assert log.delete_offsets("g", "t", [1], dry_run=True) == [TP1]
    assert committed(log, "g") == {TP0: 4, TP1: 2, U0: 1}
    assert log.delete_offsets("g", "t", [1]) == [TP1]
    assert committed(log, "g") == {TP0: 4, U0: 1}
    assert log.delete_offsets("g", "nope") == []
    log.delete_topic("u")  # offsets of a deleted topic can still be forgotten
    assert log.delete_offsets("g") == [TP0, U0]
    assert committed(log, "g") == {}
    with pytest.raises(UnknownGroupError):
        log.delete_offsets("other", "t")
    with pytest.raises(ValueError, match="partitions= needs exactly one topic"):
        log.delete_offsets("g", ["t", "u"], [0])


def test_delete_offsets_is_refused_while_a_member_owns_the_topic(log):
    commit(log, "g", {TP0: 4, U0: 1})
    member = log.consumer("g", topics=["t"], client_id="busy")
    member.poll(0)
    assert member.assignment() == {TP0, TP1}
    with pytest.raises(GroupNotEmptyError, match=r"^cannot delete the offsets of group 'g' "
                                                 r"for t while live members own its "
                                                 r"partitions: busy-"):
        log.delete_offsets("g", "t")
    assert log.delete_offsets("g", "t", dry_run=True) == [TP0]  # a dry run is not refused
    assert log.delete_offsets("g", "u") == [U0]  # nobody owns u
    member.close()
    assert log.delete_offsets("g", "t") == [TP0]
    assert committed(log, "g") == {}


def test_delete_offsets_of_a_queue_group(log):
    worker = log.queue("q", ["t", "u"])
    (message,) = worker.receive(max_messages=1, timeout=0)
    message.ack()
    with pytest.raises(GroupNotEmptyError):
        log.delete_offsets("q", "u")
    worker.close()
    forgotten = log.delete_offsets("q", message.topic)
    assert TopicPartition(message.topic, message.partition) in forgotten
    assert all(row.topic != message.topic for row in log.describe_queue("q"))
