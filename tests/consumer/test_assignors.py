"""Assignors as pure functions: complete, disjoint, only to subscribers, balanced, sticky."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlog.consumer import TopicPartition
from mqlog.consumer._assignors import (
    ASSIGNORS,
    range_assign,
    roundrobin_assign,
    sticky_assign,
)

SOAK = os.environ.get("MQLOG_SOAK") == "1"
EXAMPLES = 1000 if SOAK else 60
NAMES = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


@st.composite
def groups(draw, uniform: bool = False):
    """(subscriptions, partition_counts): 1-6 members, 1-3 topics of 1-12 partitions;
    with ``uniform`` every member subscribes to every topic, else each to a random
    subset (possibly none)."""
    topics = {f"t{i}": draw(st.integers(1, 12)) for i in range(draw(st.integers(1, 3)))}
    members = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    if uniform:
        return {m: set(topics) for m in members}, topics
    subscriptions = {m: set(draw(st.lists(st.sampled_from(sorted(topics)), unique=True)))
                     for m in members}
    return subscriptions, topics


def check_valid(subscriptions, counts, assignment) -> None:
    """Every partition of a subscribed topic goes to exactly one of its subscribers."""
    assert set(assignment) == set(subscriptions)
    owners: dict[TopicPartition, str] = {}
    for member, partitions in assignment.items():
        assert partitions == sorted(partitions), f"{member}'s list is not sorted"
        for partition in partitions:
            assert partition.topic in subscriptions[member], (
                f"{partition} went to {member}, which does not subscribe to it")
            assert partition not in owners, f"{partition} went to {owners[partition]} and {member}"
            owners[partition] = member
    subscribed = set().union(*subscriptions.values())
    expected = {tp(topic, n) for topic in subscribed for n in range(counts[topic])}
    assert set(owners) == expected


def spread(assignment) -> int:
    sizes = [len(partitions) for partitions in assignment.values()]
    return max(sizes) - min(sizes)


def owner_map(assignment) -> dict[TopicPartition, str]:
    return {p: member for member, partitions in assignment.items() for p in partitions}


# -- fixed cases -----------------------------------------------------------------------------------


def test_range_gives_contiguous_ranges_first_members_one_more():
    subscriptions = {"b": {"x", "y"}, "a": {"x", "y"}, "c": {"x"}}
    assert range_assign(subscriptions, {"x": 7, "y": 3}) == {
        "a": [tp("x", 0), tp("x", 1), tp("x", 2), tp("y", 0), tp("y", 1)],
        "b": [tp("x", 3), tp("x", 4), tp("y", 2)],
        "c": [tp("x", 5), tp("x", 6)],
    }


def test_roundrobin_deals_in_turn_skipping_members_not_subscribed():
    subscriptions = {"a": {"x"}, "b": {"x", "y"}}
    assert roundrobin_assign(subscriptions, {"x": 3, "y": 2}) == {
        "a": [tp("x", 0), tp("x", 2)],
        "b": [tp("x", 1), tp("y", 0), tp("y", 1)],
    }


def test_sticky_keeps_previous_owners_and_balances():
    previous = {"a": [tp("x", n) for n in range(6)]}
    result = sticky_assign({"a": {"x"}, "b": {"x"}}, {"x": 6}, previous)
    assert result == {"a": [tp("x", 0), tp("x", 1), tp("x", 2)],
                      "b": [tp("x", 3), tp("x", 4), tp("x", 5)]}


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
def test_no_members_or_no_topics(name):
    assign = ASSIGNORS[name]
    assert assign({}, {"x": 3}, {}) == {}
    assert assign({"a": set()}, {"x": 3}, {}) == {"a": []}
    assert assign({"a": {"x"}}, {}, {}) == {"a": []}


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
def test_previous_owners_that_left_or_unknown_partitions_are_ignored(name):
    previous = {"gone": [tp("x", 0)], "a": [tp("x", 9), tp("old", 0)]}
    result = ASSIGNORS[name]({"a": {"x"}, "b": {"x"}}, {"x": 2}, previous)
    check_valid({"a": {"x"}, "b": {"x"}}, {"x": 2}, result)


# -- properties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
@settings(max_examples=EXAMPLES, deadline=None)
@given(group=groups())
def test_assignment_is_complete_disjoint_and_only_to_subscribers(name, group):
    subscriptions, counts = group
    check_valid(subscriptions, counts, ASSIGNORS[name](subscriptions, counts, {}))


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
@settings(max_examples=EXAMPLES, deadline=None)
@given(group=groups(), order=st.randoms(use_true_random=False))
def test_assignment_does_not_depend_on_member_order(name, group, order):
    subscriptions, counts = group
    members = list(subscriptions)
    order.shuffle(members)
    shuffled = {m: subscriptions[m] for m in members}
    assert ASSIGNORS[name](shuffled, counts, {}) == ASSIGNORS[name](subscriptions, counts, {})


@pytest.mark.parametrize("name", ["roundrobin", "sticky"])
@settings(max_examples=EXAMPLES, deadline=None)
@given(group=groups(uniform=True))
def test_uniform_subscriptions_are_balanced(name, group):
    subscriptions, counts = group
    assert spread(ASSIGNORS[name](subscriptions, counts, {})) <= 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(members=st.integers(1, 8), partitions=st.integers(1, 30))
def test_range_is_balanced_for_one_topic(members, partitions):
    subscriptions = {NAMES[i]: {"x"} for i in range(members)}
    assert spread(range_assign(subscriptions, {"x": partitions})) <= 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(group=groups(uniform=True), joiner=st.sampled_from(NAMES))
def test_sticky_moves_only_what_a_joining_member_takes(group, joiner):
    subscriptions, counts = group
    before = sticky_assign(subscriptions, counts, {})
    if joiner in subscriptions:
        return
    grown = {**subscriptions, joiner: set(counts)}
    after = sticky_assign(grown, counts, before)
    check_valid(grown, counts, after)
    assert spread(after) <= 1
    old, new = owner_map(before), owner_map(after)
    moved = {p for p in old if old[p] != new[p]}
    assert moved == set(after[joiner]), "a partition moved between members that stayed"
    total = sum(counts.values())
    assert len(moved) <= -(-total // len(grown))


@settings(max_examples=EXAMPLES, deadline=None)
@given(group=groups(uniform=True), data=st.data())
def test_sticky_moves_only_the_partitions_of_a_leaving_member(group, data):
    subscriptions, counts = group
    if len(subscriptions) < 2:
        return
    before = sticky_assign(subscriptions, counts, {})
    leaver = data.draw(st.sampled_from(sorted(subscriptions)))
    shrunk = {m: topics for m, topics in subscriptions.items() if m != leaver}
    after = sticky_assign(shrunk, counts, before)
    check_valid(shrunk, counts, after)
    assert spread(after) <= 1
    old, new = owner_map(before), owner_map(after)
    moved = {p for p in old if old[p] != new[p]}
    assert moved == set(before[leaver])


@settings(max_examples=EXAMPLES, deadline=None)
@given(group=groups(), data=st.data())
def test_sticky_keeps_a_valid_assignment_through_changes(group, data):
    """Random subscriptions, members joining and leaving: always valid, and every
    member that could take a partition from a member with two more does not."""
    subscriptions, counts = group
    previous = sticky_assign(subscriptions, counts, {})
    for _ in range(data.draw(st.integers(1, 4))):
        if len(subscriptions) > 1 and data.draw(st.booleans()):
            leaver = data.draw(st.sampled_from(sorted(subscriptions)))
            subscriptions = {m: t for m, t in subscriptions.items() if m != leaver}
        else:
            joiner = data.draw(st.sampled_from(NAMES))
            topics = data.draw(st.lists(st.sampled_from(sorted(counts)), unique=True))
            subscriptions = {**subscriptions, joiner: set(topics)}
        result = sticky_assign(subscriptions, counts, previous)
        check_valid(subscriptions, counts, result)
        for donor, partitions in result.items():
            for partition in partitions:
                for taker, taken in result.items():
                    assert not (partition.topic in subscriptions[taker]
                                and len(taken) + 1 < len(partitions)), (
                        f"{taker} ({len(taken)}) could take {partition} from {donor} "
                        f"({len(partitions)})")
        previous = result
