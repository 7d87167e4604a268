"""Consumer groups inside one process: members as consumers polled in turn, or as threads."""

from __future__ import annotations

import re
import threading
import time

import pytest

import mqlog
from mqlog.consumer import TopicPartition
from mqlog.errors import CommitFailedError, MqlogError

from . import fill, owners_cover, poll_until, tps

ALL4 = tps("t", 0, 1, 2, 3)
#: Settling time for the tests of stuck groups: ample for a group that is not stuck
#: (members check every 100 ms), short for one that is.
BUG_TIMEOUT_S = 3.0


@pytest.fixture
def log(log_dir):
    with mqlog.open(log_dir, durability="none") as opened:
        opened.create_topic("t", partitions=4)
        yield opened


class Events:
    """Records a member's on_assigned / on_revoked calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TopicPartition]]] = []

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self.calls.append(("assigned", set(partitions)))

    def revoked(self, partitions: set[TopicPartition]) -> None:
        self.calls.append(("revoked", set(partitions)))


def member(log: mqlog.Log, client_id: str, events: Events | None = None, topics=("t",),
           **config):
    """A member of group "g" reading from the earliest offset. Member ids start with
    ``client_id``, so client ids fix the members' order for the assignors."""
    consumer = log.consumer("g", client_id=client_id, auto_offset_reset="earliest", **config)
    if events is None:
        consumer.subscribe(list(topics))
    else:
        consumer.subscribe(list(topics), on_assigned=events.assigned, on_revoked=events.revoked)
    return consumer


# -- joining and leaving ----------------------------------------------------------------------


def test_first_member_gets_every_partition_at_once(log):
    events = Events()
    a = member(log, "a", events)
    assert a.assignment() == ALL4
    assert events.calls == [("assigned", ALL4)]


@pytest.mark.parametrize(("assignor", "kept", "given"), [
    ("range", {0, 1}, {2, 3}),
    ("roundrobin", {0, 2}, {1, 3}),
    ("sticky", {0, 1}, {2, 3}),
])
def test_second_member_gets_its_share_after_the_first_revokes_it(log, assignor, kept, given):
    a_events, b_events = Events(), Events()
    a = member(log, "a", a_events, assignor=assignor)
    b = member(log, "b", b_events, assignor=assignor)
    assert b.assignment() == set()  # a still holds them until its next poll
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
    assert (a.assignment(), b.assignment()) == (tps("t", *kept), tps("t", *given))
    assert a_events.calls == [("assigned", ALL4), ("revoked", tps("t", *given))]
    assert b_events.calls == [("assigned", tps("t", *given))]


def test_a_leaving_member_partitions_are_taken_back(log):
    a_events, b_events = Events(), Events()
    a = member(log, "a", a_events)
    b = member(log, "b", b_events)
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
    given = b.assignment()
    b.close()
    assert b.assignment() == set()
    assert b_events.calls == [("assigned", given), ("revoked", given)]
    poll_until([a], lambda: a.assignment() == ALL4)
    assert a_events.calls == [("assigned", ALL4), ("revoked", given), ("assigned", given)]


def test_revoked_runs_before_assigned_when_a_member_loses_and_gains(log):
    """Round robin over 6 partitions: a,c hold {0,2,4},{1,3,5}; once b joins they
    hold {0,3},{2,5} and b {1,4}: a and c each give up two and gain one, which the
    other gives up first."""
    log.create_topic("six", partitions=6)
    calls = {name: Events() for name in "abc"}
    a = member(log, "a", calls["a"], topics=["six"], assignor="roundrobin")
    c = member(log, "c", calls["c"], topics=["six"], assignor="roundrobin")
    poll_until([a, c], lambda: owners_cover([a, c], tps("six", *range(6))) and bool(
        c.assignment()))
    assert (a.assignment(), c.assignment()) == (tps("six", 0, 2, 4), tps("six", 1, 3, 5))
    calls["a"].calls.clear()
    calls["c"].calls.clear()
    b = member(log, "b", calls["b"], topics=["six"], assignor="roundrobin")
    poll_until([a, c, b], lambda: [x.assignment() for x in (a, b, c)] == [
        tps("six", 0, 3), tps("six", 1, 4), tps("six", 2, 5)])
    assert calls["a"].calls == [("revoked", tps("six", 2, 4)), ("assigned", tps("six", 3))]
    assert calls["c"].calls == [("revoked", tps("six", 1, 3)), ("assigned", tps("six", 2))]
    assert {kind for kind, _ in calls["b"].calls} == {"assigned"}
    assert set().union(*(p for _, p in calls["b"].calls)) == tps("six", 1, 4)


def test_members_on_two_log_objects_share_the_partitions(log, log_dir):
    """Two Log objects on one directory behave as two processes would."""
    with mqlog.open(log_dir) as other_log:
        a = member(log, "a")
        b = member(other_log, "b")
        poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
        assert len(a.assignment()) == len(b.assignment()) == 2
        b.close()
        poll_until([a], lambda: a.assignment() == ALL4)


def test_subscribe_to_an_unknown_topic_raises_before_joining(log):
    consumer = log.consumer("g")
    with pytest.raises(mqlog.UnknownTopicError, match="unknown topic 'nope'"):
        consumer.subscribe(["t", "nope"])
    assert consumer.assignment() == set()
    assert log.list_groups() == []


def test_invalid_group_name_is_refused(log):
    with pytest.raises(MqlogError, match=re.escape(
            "group name 'a/b' has characters outside [a-zA-Z0-9._-]")):
        log.consumer("a/b", topics=["t"])


def test_subscribing_again_changes_the_topics(log):
    log.create_topic("u", partitions=2)
    events = Events()
    a = member(log, "a", events)
    a.subscribe(["u"], on_assigned=events.assigned, on_revoked=events.revoked)
    assert a.assignment() == tps("u", 0, 1)
    assert events.calls == [("assigned", ALL4), ("revoked", ALL4), ("assigned", tps("u", 0, 1))]


def test_closing_the_log_makes_its_members_leave(log, log_dir):
    """Members of a closed Log can never poll again: they must not keep their
    partitions (and the group) to themselves until the process exits."""
    with mqlog.open(log_dir) as other_log:
        a = member(log, "a")
        b = member(other_log, "b")
        log.close()
        poll_until([b], lambda: b.assignment() == ALL4, timeout_s=BUG_TIMEOUT_S)
        with pytest.raises(mqlog.LogClosedError):
            a.poll()


def test_a_failing_on_revoked_still_gives_the_partitions_up(log):
    """The listener's error reaches the caller, but the rebalance completes: the
    partitions go to their new owner instead of staying with this member."""
    failures = []

    def revoked(partitions: set[TopicPartition]) -> None:
        failures.append(set(partitions))
        raise RuntimeError("listener failed")

    a = log.consumer("g", client_id="a")
    a.subscribe(["t"], on_revoked=revoked)
    b = member(log, "b")
    with pytest.raises(RuntimeError, match="listener failed"):
        poll_until([a], lambda: False, timeout_s=5)
    assert len(failures) == 1
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()),
               timeout_s=BUG_TIMEOUT_S)
    assert b.assignment() == failures[0]


def test_close_leaves_the_group_even_if_on_revoked_fails(log):
    a = log.consumer("g", client_id="a")
    a.subscribe(["t"], on_revoked=lambda partitions: 1 / 0)
    b = member(log, "b")
    with pytest.raises(ZeroDivisionError):
        a.close()
    poll_until([b], lambda: b.assignment() == ALL4, timeout_s=BUG_TIMEOUT_S)


def test_a_waiting_member_wakes_when_another_thread_appends(log):
    a = member(log, "a")
    timer = threading.Timer(0.2, lambda: fill(log, "t", 2, 1))
    timer.start()
    try:
        started = time.monotonic()
        messages = a.poll(timeout=30.0)
        waited = time.monotonic() - started
    finally:
        timer.join()
    assert [(m.partition, m.offset) for m in messages] == [(2, 0)]
    assert waited < 3.0, f"poll returned {waited:.2f} s after being woken"


# -- commits ---------------------------------------------------------------------------------------


def test_commit_and_committed_round_trip(log):
    for partition in range(4):
        fill(log, "t", partition, 3)
    a = member(log, "a")
    assert len(a.poll(max_records=5)) == 5
    positions = {tp: a.position(tp) for tp in ALL4}
    assert a.commit() == positions
    assert {tp: a.committed(tp) for tp in ALL4} == positions
    assert a.commit({TopicPartition("t", 3): 1}) == {TopicPartition("t", 3): 1}
    assert a.committed(TopicPartition("t", 3)) == 1
    with pytest.raises(ValueError, match="offsets must be ints >= 0, not -1"):
        a.commit({TopicPartition("t", 3): -1})
    assert a.committed(TopicPartition("t", 3)) == 1


def test_commit_of_a_partition_not_owned_fails_and_moves_nothing(log):
    a = member(log, "a")
    b = member(log, "b")
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
    mine, theirs = sorted(a.assignment())[0], sorted(b.assignment())[0]
    a.commit({mine: 0})
    with pytest.raises(CommitFailedError) as caught:
        a.commit({mine: 7, theirs: 9})
    assert re.fullmatch(rf"member a-\w+ of group 'g' does not own t/{theirs.partition} "
                        r"\(any more\)", str(caught.value)), str(caught.value)
    assert (a.committed(mine), b.committed(theirs)) == (0, None)


def test_a_new_member_starts_from_the_committed_offset(log):
    fill(log, "t", 0, 10)
    a = member(log, "a")
    assert [m.offset for m in a.poll(max_records=4)] == [0, 1, 2, 3]
    a.commit()
    a.close()
    b = member(log, "b")
    assert b.position(TopicPartition("t", 0)) == 4
    assert [m.offset for m in b.poll()] == [4, 5, 6, 7, 8, 9]


def test_auto_commit_commits_on_close(log):
    fill(log, "t", 0, 5)
    a = member(log, "a", enable_auto_commit=True, auto_commit_interval_ms=60_000)
    assert len(a.poll()) == 5
    assert a.committed(TopicPartition("t", 0)) is None
    a.close()
    assert log.consumer("g").committed(TopicPartition("t", 0)) == 5


def test_auto_commit_commits_periodically(log):
    fill(log, "t", 0, 10)
    a = member(log, "a", enable_auto_commit=True, auto_commit_interval_ms=200)
    a.poll(max_records=2)
    time.sleep(0.3)
    assert [m.offset for m in a.poll(max_records=2)] == [2, 3]
    assert a.committed(TopicPartition("t", 0)) == 4


def test_auto_commit_commits_revoked_partitions(log):
    for partition in range(4):
        fill(log, "t", partition, 2)
    a = member(log, "a", enable_auto_commit=True, auto_commit_interval_ms=60_000)
    assert len(a.poll()) == 8
    b = member(log, "b")
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
    assert {tp: b.committed(tp) for tp in b.assignment()} == {tp: 2 for tp in b.assignment()}
    assert {tp: a.committed(tp) for tp in a.assignment()} == {tp: None for tp in a.assignment()}


# -- topics that appear or grow --------------------------------------------------------------------


def test_pattern_subscription_picks_up_a_topic_created_later(log):
    log.create_topic("ev-a", partitions=2)
    a = log.consumer("g", auto_offset_reset="earliest")
    a.subscribe(re.compile(r"ev-.*"))
    assert a.assignment() == tps("ev-a", 0, 1)
    log.create_topic("ev-b")
    log.create_topic("other")
    log.append("ev-b", 0, [b"first", b"second"])
    log.append("other", 0, [b"not mine"])
    polled = poll_until([a], lambda: tps("ev-b", 0) <= a.assignment())
    polled += a.poll()
    assert [(m.topic, m.offset, m.value) for m in polled] == [("ev-b", 0, b"first"),
                                                              ("ev-b", 1, b"second")]
    assert a.assignment() == tps("ev-a", 0, 1) | tps("ev-b", 0)


def test_more_partitions_are_assigned_after_alter_topic(log):
    a = member(log, "a")
    b = member(log, "b")
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
    log.alter_topic("t", partitions=6)
    fill(log, "t", 5, 1)
    everything = tps("t", *range(6))
    polled = poll_until([a, b], lambda: owners_cover([a, b], everything))
    polled += a.poll() + b.poll()
    assert len(a.assignment()) == len(b.assignment()) == 3
    assert [(m.partition, m.offset) for m in polled] == [(5, 0)]


# -- slow members ----------------------------------------------------------------------------------


@pytest.fixture
def evicted(log):
    """Members a (max_poll_interval_ms=500) and b; a stops polling until b owns all."""
    for partition in range(4):
        fill(log, "t", partition, 3)
    a = member(log, "a", max_poll_interval_ms=500)
    b = member(log, "b")
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(b.assignment()))
    lost = a.assignment()
    a.poll()  # positions past its records: something to commit
    before = {tp: b.committed(tp) for tp in ALL4}
    poll_until([b], lambda: b.assignment() == ALL4)  # a does not poll meanwhile
    return a, b, lost, before


def test_a_member_that_stops_polling_gives_up_its_partitions(log, evicted):
    a, b, lost, before = evicted
    assert a.assignment() == set()
    with pytest.raises(CommitFailedError, match=r"of group 'g' does not own t/\d"):
        a.commit({tp: 3 for tp in lost})
    assert {tp: b.committed(tp) for tp in ALL4} == before
    poll_until([a, b], lambda: owners_cover([a, b], ALL4) and bool(a.assignment()))
    assert len(a.assignment()) == 2


def test_commit_without_offsets_after_eviction_raises_commit_failed(log, evicted):
    """A member that lost its partitions learns it from commit(), as from
    commit(offsets): its records will be processed again by the new owner."""
    a, b, lost, before = evicted
    with pytest.raises(CommitFailedError):
        a.commit()
    assert {tp: b.committed(tp) for tp in ALL4} == before


# -- members in threads ----------------------------------------------------------------------------


class SharedLedger:
    """What member threads processed, and any partition processed by two at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy: dict[int, int] = {}
        self.overlaps: list[str] = []
        self.processed: dict[int, set[int]] = {}

    def process(self, worker: int, messages) -> None:
        partitions = sorted({m.partition for m in messages})
        with self.lock:
            for partition in partitions:
                if partition in self.busy:
                    self.overlaps.append(f"p{partition}: {self.busy[partition]} and {worker}")
                self.busy[partition] = worker
        time.sleep(0.002)
        with self.lock:
            for partition in partitions:
                self.busy.pop(partition, None)
            for m in messages:
                self.processed.setdefault(m.partition, set()).add(m.offset)

    def count(self) -> int:
        with self.lock:
            return sum(len(offsets) for offsets in self.processed.values())


def test_member_threads_never_process_one_partition_at_once(log):
    """Three member threads (one leaves half way, a fourth joins) commit after
    processing while a producer appends; every record is processed, and no
    partition is ever in two threads' hands."""
    total = 4 * 100
    ledger = SharedLedger()
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(worker: int, lifetime_s: float) -> None:
        consumer = member(log, f"w{worker}", max_poll_records=20)
        deadline = time.monotonic() + lifetime_s
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                messages = consumer.poll(timeout=0.02)
                if messages:
                    ledger.process(worker, messages)
                    consumer.commit()
        except BaseException as error:  # reported by the test thread
            errors.append(error)
        finally:
            consumer.close()

    threads = [threading.Thread(target=work, args=(n, life))
               for n, life in ((0, 60.0), (1, 0.6), (2, 60.0))]
    for thread in threads:
        thread.start()
    for step in range(100):
        for partition in range(4):
            fill(log, "t", partition, 1)
        if step == 50:
            threads.append(threading.Thread(target=work, args=(3, 60.0)))
            threads[-1].start()
        time.sleep(0.005)
    deadline = time.monotonic() + 20
    while ledger.count() < total and time.monotonic() < deadline and not errors:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert ledger.overlaps == []
    assert ledger.processed == {p: set(range(100)) for p in range(4)}
