"""The committed-offsets store: latest wins, tombstones delete, shared by every Log."""

from __future__ import annotations

import msgpack
import pytest

import mqlog
from mqlog.consumer import TopicPartition, offset_store
from mqlog.consumer._offsets import (
    OFFSETS_PARTITIONS,
    OFFSETS_TOPIC,
    CommittedOffset,
    offsets_partition,
)

A0 = TopicPartition("a", 0)
A1 = TopicPartition("a", 1)
B0 = TopicPartition("b", 0)


@pytest.fixture
def log(log_dir, clock):
    with mqlog.open(log_dir, clock=clock) as opened:
        yield opened


def same_partition_groups() -> tuple[str, str]:
    """Two group names whose offsets share one partition of the offsets topic."""
    seen: dict[int, str] = {}
    for number in range(100):
        name = f"group-{number}"
        partition = offsets_partition(name)
        if partition in seen:
            return seen[partition], name
        seen[partition] = name
    raise AssertionError("no two of 100 group names share an offsets partition")


def test_the_offsets_topic_is_internal_compacted_and_durable(log):
    offset_store(log.engine)
    description = log.describe_topic(OFFSETS_TOPIC)
    assert len(description.partitions) == OFFSETS_PARTITIONS == 8
    config = description.config
    assert (config.cleanup_policy, config.durability, config.retention_ms,
            config.retention_bytes) == ("compact", "always", None, None)
    with pytest.raises(mqlog.InvalidTopicError, match="reserved for internal topics"):
        log.create_topic("__other")


def test_latest_commit_wins_and_carries_metadata_time_and_member(log, clock):
    store = offset_store(log.engine)
    start = clock()
    store.commit("g", {A0: 3, A1: 4}, "member-1", "first")
    clock.advance(250)
    store.commit("g", {A0: 7}, "member-2", "second")
    assert store.committed("g", A0) == CommittedOffset(7, "second", start + 250, "member-2")
    assert store.committed("g", A1) == CommittedOffset(4, "first", start, "member-1")
    assert store.committed("g", B0) is None
    assert store.committed("other", A0) is None


def test_one_commit_is_one_record_per_partition_keyed_by_group_topic_partition(log):
    store = offset_store(log.engine)
    partition = offsets_partition("g")
    store.commit("g", {A0: 1, A1: 2, B0: 3}, "m")
    records = log.read(OFFSETS_TOPIC, partition, 0)
    assert [msgpack.unpackb(r.key) for r in records] == [["g", "a", 0], ["g", "a", 1],
                                                         ["g", "b", 0]]
    assert [msgpack.unpackb(r.value)[0] for r in records] == [1, 2, 3]
    assert [r.offset for r in records] == [0, 1, 2]
    store.commit("g", {})
    assert log.end_offset(OFFSETS_TOPIC, partition) == 3  # nothing to write: no record


def test_tombstones_delete_offsets(log):
    store = offset_store(log.engine)
    store.commit("g", {A0: 5, A1: 6})
    store.delete("g", [A0])
    assert store.committed("g", A0) is None
    assert store.group_offsets("g") == {A1: store.committed("g", A1)}
    store.commit("g", {A0: 9})
    assert store.committed("g", A0).offset == 9  # a commit after a delete counts again


def test_groups_lists_groups_with_at_least_one_offset(log):
    store = offset_store(log.engine)
    first, second = same_partition_groups()
    assert store.groups() == set()
    store.commit(first, {A0: 1})
    store.commit(second, {A0: 2, B0: 3})
    store.commit("x", {B0: 4})
    assert store.groups() == {first, second, "x"}
    assert {tp: v.offset for tp, v in store.group_offsets(second).items()} == {A0: 2, B0: 3}
    assert {tp: v.offset for tp, v in store.group_offsets(first).items()} == {A0: 1}
    store.delete(second, [A0, B0])
    assert store.groups() == {first, "x"}
    assert store.group_offsets(second) == {}


def test_offsets_survive_reopening_the_log(log_dir, clock):
    with mqlog.open(log_dir, clock=clock) as log:
        store = offset_store(log.engine)
        store.commit("g", {A0: 1, A1: 2}, "m", "meta")
        store.commit("g", {A0: 10}, "m")
        store.delete("g", [A1])
        store.commit("h", {B0: 3})
    with mqlog.open(log_dir, clock=clock) as log:
        store = offset_store(log.engine)
        assert store.group_offsets("g") == {A0: CommittedOffset(10, "", clock(), "m")}
        assert store.committed("h", B0).offset == 3
        assert store.groups() == {"g", "h"}


def test_two_log_objects_see_each_others_commits_and_deletes(log_dir):
    with mqlog.open(log_dir) as first, mqlog.open(log_dir) as second:
        one, two = offset_store(first.engine), offset_store(second.engine)
        one.commit("g", {A0: 1})
        assert two.committed("g", A0).offset == 1
        two.commit("g", {A0: 2, A1: 5})
        assert one.committed("g", A0).offset == 2
        assert one.committed("g", A1).offset == 5
        two.delete("g", [A0])
        assert one.committed("g", A0) is None
        assert one.groups() == two.groups() == {"g"}


def test_consumers_on_two_log_objects_share_committed_offsets(log_dir):
    with mqlog.open(log_dir) as first, mqlog.open(log_dir) as second:
        first.create_topic("a", partitions=2)
        writer = first.consumer("g")
        writer.assign([A0])
        writer.commit({A0: 0})
        reader = second.consumer("g")
        assert reader.committed(A0) == 0
        writer.commit({A0: 4}, metadata="note")
        assert reader.committed(A0) == 4
        assert offset_store(second.engine).committed("g", A0).metadata == "note"


def test_offsets_stay_right_after_the_offsets_topic_is_compacted(log_dir, clock):
    """Many commits roll small segments of the offsets topic; compacting keeps the
    latest commit of every key, as seen after reopening."""
    with mqlog.open(log_dir, clock=clock) as log:
        store = offset_store(log.engine)
        log.alter_topic(OFFSETS_TOPIC, segment_bytes=4096)
        for round_number in range(60):
            store.commit("g", {A0: round_number, A1: 1000 + round_number})
            if round_number % 7 == 0:
                store.commit("g", {B0: round_number})
        store.delete("g", [A1])
        partition = offsets_partition("g")
        assert log.describe_topic(OFFSETS_TOPIC).partitions[partition].segment_count > 2
        log.compact(OFFSETS_TOPIC)
        records = list(log.iter(OFFSETS_TOPIC, partition))
        assert len(records) < 30
    with mqlog.open(log_dir, clock=clock) as log:
        store = offset_store(log.engine)
        assert {tp: v.offset for tp, v in store.group_offsets("g").items()} == {A0: 59, B0: 56}


@pytest.mark.parametrize(("durabilities", "flushes"), [
    ({"a": "none", "b": "none"}, 0),
    ({"a": "none", "b": "always"}, 1),
    ({"a": "interval", "b": "none"}, 1),
])
def test_a_commit_is_flushed_unless_every_committed_topic_is_never_flushed(
        log, monkeypatch, durabilities, flushes):
    for topic, durability in durabilities.items():
        log.create_topic(topic, partitions=2, durability=durability)
    store = offset_store(log.engine)
    target = log.engine.partition(OFFSETS_TOPIC, offsets_partition("g"))
    calls = []
    monkeypatch.setattr(target, "flush", lambda: calls.append(1) or target.state().end_offset)
    store.commit("g", {A0: 1, B0: 2})
    assert len(calls) == flushes
    assert store.committed("g", B0).offset == 2
    store.commit("g", {A1: 3})  # topic a alone
    assert len(calls) == flushes + (durabilities["a"] != "none")
