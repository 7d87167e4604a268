"""Group administration: list, describe, reset offsets, delete; refused while members live."""

from __future__ import annotations

import datetime
import os
import re
import signal
import socket

import pytest

import mqlog
from mqlog import Record
from mqlog.consumer import TopicPartition, offset_store
from mqlog.consumer._offsets import OFFSETS_TOPIC, offsets_partition
from mqlog.consumer.admin import GroupPartitionDescription, MemberDescription
from mqlog.errors import GroupNotEmptyError, MqlogError

from . import _children, owners_cover, poll_until, tps

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
#: Records of t/0 are stamped BASE_MS, BASE_MS + 1 s, ... (10 records); t/1 has 5.
STEP_MS = 1000


@pytest.fixture
def log(log_dir, clock):
    """Topic t: 10 records in partition 0 and 5 in partition 1, one per second of
    the fake clock, which then stands 10 s after the first record."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t", partitions=2)
        opened.base_ms = clock()
        for partition, count in ((0, 10), (1, 5)):
            opened.append("t", partition, [
                Record(b"r%d" % i, timestamp=opened.base_ms + i * STEP_MS) for i in range(count)])
        clock.advance(10 * STEP_MS)
        yield opened


def commit(log: mqlog.Log, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit as a group-less tool would: a manually assigned consumer of ``group``."""
    consumer = log.consumer(group)
    consumer.commit(offsets)
    consumer.close()


def committed(log: mqlog.Log, group: str) -> dict[TopicPartition, int]:
    return {tp: value.offset
            for tp, value in offset_store(log.engine).group_offsets(group).items()}


def offsets_end(log: mqlog.Log, group: str) -> int:
    offset_store(log.engine)  # the offsets topic exists from the first use on
    return log.end_offset(OFFSETS_TOPIC, offsets_partition(group))


def at(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


# -- list and describe --------------------------------------------------------------------------


def test_list_groups_names_groups_with_members_or_offsets(log):
    assert log.list_groups() == []
    member = log.consumer("live", topics=["t"])
    commit(log, "committed-only", {TP0: 1})
    assert log.list_groups() == ["committed-only", "live"]
    member.close()
    assert log.list_groups() == ["committed-only", "live"]


def test_describe_a_stable_group(log, clock):
    a = log.consumer("g", topics=["t"], client_id="svc-a", auto_offset_reset="earliest")
    assert len(a.poll(max_records=3)) == 3
    a.commit()
    clock.advance(500)
    info = log.describe_group("g")
    member_id = a._member.member_id
    assert (info.group, info.state, info.generation) == ("g", "Stable", 1)
    assert info.members == [MemberDescription(member_id, "svc-a", socket.gethostname(),
                                              os.getpid(), [TP0, TP1])]
    assert info.partitions == [
        GroupPartitionDescription("t", 0, 3, 10, 7, 10_500 - 3 * STEP_MS, member_id),
        GroupPartitionDescription("t", 1, None, 5, 5, 10_500, member_id),
    ]
    assert info.total_lag == 12


def test_describe_follows_joins_and_leaves(log):
    a = log.consumer("g", topics=["t"], client_id="a")
    b = log.consumer("g", topics=["t"], client_id="b")
    poll_until([a, b], lambda: owners_cover([a, b], tps("t", 0, 1)) and bool(b.assignment()))
    info = log.describe_group("g")
    assert (info.state, info.generation) == ("Stable", 2)
    assert [(m.client_id, m.assignment) for m in info.members] == [("a", [TP0]), ("b", [TP1])]
    b.close()
    info = log.describe_group("g")
    assert (info.state, info.generation) == ("Stable", 3)
    assert [(m.client_id, m.assignment) for m in info.members] == [("a", [TP0, TP1])]
    a.close()
    info = log.describe_group("g")
    assert (info.state, info.generation, info.members) == ("Empty", 4, [])
    assert info.partitions == []  # nothing committed, nobody owns anything


def test_describe_an_empty_group_with_offsets(log):
    commit(log, "g", {TP0: 10, TP1: 2})
    info = log.describe_group("g")
    assert (info.state, info.generation, info.members) == ("Empty", 0, [])
    assert info.partitions == [
        GroupPartitionDescription("t", 0, 10, 10, 0, None, None),
        GroupPartitionDescription("t", 1, 2, 5, 3, 10 * STEP_MS - 2 * STEP_MS, None),
    ]


def test_describe_an_unknown_group_raises(log):
    with pytest.raises(MqlogError, match="^unknown group 'nope'$"):
        log.describe_group("nope")


def test_describe_shows_a_member_process_and_its_death(log, log_dir, tmp_path):
    """A member in another process is listed with its pid; once it is killed and
    before anyone rebalances, the group is Rebalancing; a poll makes it Stable."""
    a = log.consumer("g", topics=["t"], client_id="a")
    child = _children.start("member", log=str(log_dir), group="g", topic="t",
                            ledger=str(tmp_path / "ledger"), stop=str(tmp_path / "stop"),
                            work_ms=0, client_id="child")
    try:
        assert child.stdout.readline() == "ready\n", child.stderr.read()
        poll_until([a], lambda: a.assignment() == {TP0})
        assert child.stdout.readline().split()[::2] == ["owns", "1"]  # t/1, once a let go
        info = log.describe_group("g")
        assert info.state == "Stable"
        assert [(m.client_id, m.pid, m.host) for m in info.members] == [
            ("a", os.getpid(), socket.gethostname()), ("child", child.pid, socket.gethostname())]
        with pytest.raises(GroupNotEmptyError, match=re.escape(f"(client child, pid {child.pid}")):
            log.reset_offsets("g", "t", to="earliest")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
    info = log.describe_group("g")
    assert (info.state, [m.client_id for m in info.members]) == ("Rebalancing", ["a"])
    generation = info.generation
    poll_until([a], lambda: a.assignment() == tps("t", 0, 1))
    info = log.describe_group("g")
    assert (info.state, info.generation) == ("Stable", generation + 1)


# -- reset_offsets ---------------------------------------------------------------------------------


def test_reset_to_earliest_latest_and_an_offset(log):
    commit(log, "g", {TP0: 4, TP1: 2})
    assert log.reset_offsets("g", "t", to="earliest") == {TP0: (4, 0), TP1: (2, 0)}
    assert committed(log, "g") == {TP0: 0, TP1: 0}
    assert log.reset_offsets("g", "t", to="latest") == {TP0: (0, 10), TP1: (0, 5)}
    assert log.reset_offsets("g", "t", [0], to=3) == {TP0: (10, 3)}
    assert committed(log, "g") == {TP0: 3, TP1: 5}
    assert log.reset_offsets("g", "t", [1], to=-4) == {TP1: (5, 0)}  # clamped, as Kafka


def test_reset_to_a_datetime(log):
    base = log.base_ms
    plan = log.reset_offsets("g", "t", to=at(base + 2500))
    assert plan == {TP0: (None, 3), TP1: (None, 3)}
    assert log.reset_offsets("g", "t", to=at(base + 4500)) == {TP0: (3, 5), TP1: (3, 5)}
    assert log.reset_offsets("g", "t", to=at(base - 10**6)) == {TP0: (5, 0), TP1: (5, 0)}
    assert committed(log, "g") == {TP0: 0, TP1: 0}


def test_shift_by_moves_from_the_committed_offset_and_is_clamped(log):
    commit(log, "g", {TP0: 6})
    assert log.reset_offsets("g", "t", shift_by=-2) == {TP0: (6, 4), TP1: (None, -2 + 2)}
    assert log.reset_offsets("g", "t", shift_by=3) == {TP0: (4, 7), TP1: (0, 3)}
    assert log.reset_offsets("g", "t", shift_by=-100) == {TP0: (7, 0), TP1: (3, 0)}
    assert log.reset_offsets("g", "t", shift_by=100) == {TP0: (0, 10), TP1: (0, 5)}
    assert committed(log, "g") == {TP0: 10, TP1: 5}


def test_by_duration_goes_back_from_now(log):
    plan = log.reset_offsets("g", "t", by_duration=datetime.timedelta(seconds=3))
    assert plan == {TP0: (None, 7), TP1: (None, 5)}  # t/1's last record is 6 s old
    plan = log.reset_offsets("g", "t", by_duration=datetime.timedelta(seconds=7.5))
    assert plan == {TP0: (7, 3), TP1: (5, 3)}


def test_dry_run_writes_nothing(log):
    commit(log, "g", {TP0: 4})
    end = offsets_end(log, "g")
    assert log.reset_offsets("g", "t", to="earliest", dry_run=True) == {
        TP0: (4, 0), TP1: (None, 0)}
    assert log.reset_offsets("g", "t", shift_by=1, dry_run=True) == {TP0: (4, 5), TP1: (None, 1)}
    assert committed(log, "g") == {TP0: 4}
    assert offsets_end(log, "g") == end


def test_reset_is_refused_while_a_member_lives(log):
    commit(log, "g", {TP0: 4})
    member = log.consumer("g", topics=["t"], client_id="busy")
    end = offsets_end(log, "g")
    host = re.escape(socket.gethostname())
    pattern = (r"^cannot reset offsets of group 'g' while it has live members: "
               rf"busy-\w+ \(client busy, pid {os.getpid()} on {host}\)$")
    with pytest.raises(GroupNotEmptyError, match=pattern):
        log.reset_offsets("g", "t", to="earliest")
    assert committed(log, "g") == {TP0: 4}
    assert offsets_end(log, "g") == end
    member.close()
    assert log.reset_offsets("g", "t", to="earliest") == {TP0: (4, 0), TP1: (None, 0)}


@pytest.mark.parametrize(("options", "error", "message"), [
    ({}, ValueError, "give exactly one of to=, shift_by=, by_duration="),
    ({"to": 1, "shift_by": 1}, ValueError, "give exactly one of to=, shift_by=, by_duration="),
    ({"to": "middle"}, ValueError,
     "to must be 'earliest', 'latest', 'current', an offset or a datetime, not 'middle'"),
    ({"to": 1.5}, TypeError, "to must be a str, int or datetime, not float"),
    ({"by_duration": 5}, TypeError, "by_duration must be a datetime.timedelta"),
])
def test_reset_rejects_bad_arguments_writing_nothing(log, options, error, message):
    end = offsets_end(log, "g")
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        log.reset_offsets("g", "t", **options)
    assert offsets_end(log, "g") == end
    with pytest.raises(mqlog.UnknownTopicError):
        log.reset_offsets("g", "nope", to="earliest")


# -- delete_group ----------------------------------------------------------------------------------


def test_delete_group_forgets_offsets_and_files(log, log_dir):
    member = log.consumer("g", topics=["t"], client_id="busy")
    member.commit({TP0: 3})
    with pytest.raises(GroupNotEmptyError, match="^cannot delete group 'g' while it has live"):
        log.delete_group("g")
    assert committed(log, "g") == {TP0: 3}
    member.close()
    commit(log, "other", {TP0: 1})
    log.delete_group("g")
    assert log.list_groups() == ["other"]
    assert not (log_dir / "groups" / "g").exists()
    assert log.consumer("g").committed(TP0) is None
    with pytest.raises(MqlogError, match="^unknown group 'g'$"):
        log.describe_group("g")
    with pytest.raises(MqlogError, match="^unknown group 'g'$"):
        log.delete_group("g")
    with mqlog.open(log_dir) as reopened:
        assert reopened.list_groups() == ["other"]
        assert committed(reopened, "other") == {TP0: 1}


def test_lag_of_a_topic_another_process_deleted_and_created_again(log_dir) -> None:
    """A long-running process (``mqlog lag --watch``) describes a group whose topic
    another process deleted and created again: the lag is the new topic's."""
    with mqlog.open(log_dir) as watcher, mqlog.open(log_dir) as other:
        watcher.create_topic("t")
        watcher.append("t", 0, [b"a", b"b", b"c"])
        offset_store(watcher.engine).commit("g", {TopicPartition("t", 0): 1})
        (row,) = watcher.describe_group("g").partitions
        assert (row.end_offset, row.lag) == (3, 2)
        other.delete_topic("t")
        other.create_topic("t")
        other.append("t", 0, [b"x"])
        end = other.end_offset("t", 0)  # the new topic's (lifted to the commit's floor)
        (row,) = watcher.describe_group("g").partitions
        assert (row.end_offset, row.lag) == (end, end - 1)
