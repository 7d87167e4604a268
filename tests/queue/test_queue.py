"""Queue groups inside one process (``Log.queue``): receive, ack, nack, extend,
deadlines, delivery counts, dead letters, redrive, closing and bad input.

Most tests run on the fake clock of ``tests/conftest.py``: the queue takes its
deadlines and not-before times from the log's clock, so moving the clock by
hand makes redelivery exact. A few run on the real clock with short timeouts,
and two start a child process that dies holding messages.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

import mqlog
from mqlog import Record
from mqlog.consumer import _share_state
from mqlog.consumer._queue import QueueMessage, default_backoff
from mqlog.errors import (
    ConfigError,
    DeliveryLostError,
    LogClosedError,
    UnknownTopicError,
)
from tests.queue._children import fill, start, value_of

LOCK_S = 10
LOCK_MS = LOCK_S * 1000


@pytest.fixture
def log(log_dir, clock):
    """A log on the fake clock with a one-partition topic ``t``."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t")
        yield opened


def where(messages) -> list[tuple[int, int, int]]:
    """(partition, offset, delivery_count) of each message."""
    return [(m.partition, m.offset, m.delivery_count) for m in messages]


def drain(worker, limit: int = 100) -> list[QueueMessage]:
    """Receive and ack until nothing is ready; return what was received."""
    received = []
    while batch := worker.receive(max_messages=limit):
        for message in batch:
            message.ack()
        received += batch
    return received


# -- receiving -------------------------------------------------------------------------------------


def test_receive_hands_out_records_in_offset_order_with_their_fields(log, clock):
    log.append("t", 0, [Record(b"a", key=b"k", headers={"h": b"1"}, timestamp=5), b"b", b"c"])
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    got = worker.receive(max_messages=10)
    assert where(got) == [(0, 0, 1), (0, 1, 1), (0, 2, 1)]
    first = got[0]
    assert type(first) is QueueMessage
    assert (first.topic, first.value, first.key, dict(first.headers), first.timestamp) == (
        "t", b"a", b"k", {"h": b"1"}, 5)
    assert [m.first_delivery_ms for m in got] == [clock.now_ms] * 3
    assert worker.receive() == []


def test_receive_respects_max_messages(log):
    fill(log, "t", 0, 5)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    assert [m.offset for m in worker.receive(max_messages=2)] == [0, 1]
    assert [m.offset for m in worker.receive(max_messages=2)] == [2, 3]
    assert [m.offset for m in worker.receive(max_messages=2)] == [4]


def test_receive_covers_every_partition_of_every_topic(log):
    log.create_topic("u", partitions=3)
    for partition in range(3):
        fill(log, "u", partition, 2)
    fill(log, "t", 0, 1)
    worker = log.queue("g", ["u", "t", "u"], ack_timeout_s=LOCK_S)
    assert worker.topics == ["t", "u"]
    got = [(m.topic, m.partition, m.offset) for m in drain(worker, limit=3)]
    assert sorted(got) == [("t", 0, 0)] + [("u", p, o) for p in range(3) for o in range(2)]


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_receive_refuses_a_bad_max_messages(log, bad):
    worker = log.queue("g", "t")
    with pytest.raises(ValueError, match=f"max_messages must be an int >= 1, not {bad!r}"):
        worker.receive(max_messages=bad)


def test_receive_waits_for_an_append(log):
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    timer = threading.Timer(0.2, fill, (log, "t", 0, 1))
    timer.start()
    began = time.monotonic()
    got = worker.receive(timeout=10)
    timer.join()
    assert where(got) == [(0, 0, 1)]
    assert 0.15 <= time.monotonic() - began < 5


def test_iteration_yields_messages_until_closed(log):
    fill(log, "t", 0, 3)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    seen = []
    thread = threading.Thread(target=lambda: seen.extend(m.offset for m in worker))
    thread.start()
    time.sleep(0.3)
    worker.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert seen == [0, 1, 2]


def test_closing_from_another_thread_ends_a_busy_iteration_cleanly(log_dir):
    """close() while another thread is inside receive: the iteration ends (the
    LogClosedError it meets is swallowed) and nothing is raised anywhere."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t", partitions=4)
        for partition in range(4):
            fill(log, "t", partition, 2000)
        errors: list[str] = []

        def iterate(worker) -> None:
            try:
                for _message in worker:
                    pass  # not acked: the next worker gets it again
            except Exception as error:
                errors.append(f"iterating: {error!r}")

        for round_ in range(50):
            worker = log.queue("g", "t", ack_timeout_s=30, max_deliveries=254)
            thread = threading.Thread(target=iterate, args=(worker,))
            thread.start()
            time.sleep(0.0005 * (round_ % 11))
            try:
                worker.close()
            except Exception as error:
                errors.append(f"closing: {error!r}")
            thread.join(timeout=5)
            assert not thread.is_alive()
    assert errors == []


@pytest.mark.parametrize("action", ["ack", "nack", "extend", "ack_many"])
def test_close_waits_for_an_ack_another_thread_is_making(log_dir, monkeypatch, action):
    """An ack, nack or extend in progress on one thread when another closes the
    worker: close() waits for it (it does not unmap the share state under it),
    the action completes, and later ones raise LogClosedError."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t")
        fill(log, "t", 0, 3)
        worker = log.queue("g", "t")
        message, other, _ = worker.receive(3)
        inside, go_on = threading.Event(), threading.Event()
        for name in ("ack_fast", "finish", "release", "extend"):
            original = getattr(_share_state.ShareState, name)

            def paused(state, *args, _original=original, **kwargs):
                inside.set()
                assert go_on.wait(5)
                return _original(state, *args, **kwargs)

            monkeypatch.setattr(_share_state.ShareState, name, paused)
        outcome: list[object] = []

        def act() -> None:
            try:
                if action == "ack_many":
                    worker.ack_many([message])
                elif action == "extend":
                    message.extend(10)
                else:
                    getattr(message, action)()
                outcome.append("done")
            except Exception as error:
                outcome.append(error)

        acting = threading.Thread(target=act)
        acting.start()
        assert inside.wait(5)
        closing = threading.Thread(target=worker.close)
        closing.start()
        closing.join(0.2)
        assert closing.is_alive()  # waiting for the action
        go_on.set()
        acting.join(5)
        closing.join(5)
        assert not closing.is_alive() and outcome == ["done"]
        with pytest.raises(LogClosedError):
            other.ack()
        with pytest.raises(LogClosedError):
            other.nack()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_one_worker_shared_by_threads_leaves_no_file_open_after_close(log_dir):
    """A worker is thread-safe: threads that receive through it at once open each
    partition's share state once, and close() closes all of them."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t", partitions=8)
        for partition in range(8):
            fill(log, "t", partition, 50)
        with log.queue("warm-up", "t") as warm_up:  # closed now, not when collected
            drain(warm_up)  # the log's own files are open from here on
        leaked = []
        for round_ in range(30):
            before = open_fds()
            worker = log.queue(f"g{round_}", "t", ack_timeout_s=30)
            barrier = threading.Barrier(6)

            def receive(worker=worker, barrier=barrier) -> None:
                barrier.wait()
                for _ in range(3):
                    worker.receive(max_messages=7)

            threads = [threading.Thread(target=receive) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            worker.close()
            leaked.append(open_fds() - before)
    assert leaked == [0] * 30


# -- ack -------------------------------------------------------------------------------------------


def test_acked_records_never_come_back(log, clock, log_dir):
    fill(log, "t", 0, 3)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    first, second, third = worker.receive()
    first.ack()
    third.ack()
    clock.advance(LOCK_MS + 1)
    assert where(worker.receive()) == [(0, 1, 2)]
    log.close()
    with mqlog.open(log_dir, clock=clock) as reopened:
        again = reopened.queue("g", "t", ack_timeout_s=LOCK_S)
        clock.advance(LOCK_MS + 1)
        assert where(again.receive()) == [(0, 1, 3)]


def test_ack_twice_is_harmless(log):
    fill(log, "t", 0, 2)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    first, second = worker.receive()
    first.ack()
    first.ack()
    second.ack()
    second.ack()
    assert worker.receive() == []


def test_late_ack_succeeds_while_nobody_took_the_message(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [message] = worker.receive()
    clock.advance(LOCK_MS + 5)
    message.ack()
    assert log.queue("g", "t").receive() == []


def test_acks_after_another_worker_took_the_message_raise_delivery_lost(log, clock):
    fill(log, "t", 0, 1)
    slow = log.queue("g", "t", ack_timeout_s=LOCK_S)
    fast = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [stale] = slow.receive()
    clock.advance(LOCK_MS + 1)
    [taken] = fast.receive()
    assert (taken.offset, taken.delivery_count) == (0, 2)
    for action, call in [("ack", stale.ack), ("nack", stale.nack),
                         ("extend", lambda: stale.extend(5))]:
        with pytest.raises(DeliveryLostError) as caught:
            call()
        assert str(caught.value) == (
            f"cannot {action} t/0@0: its lock ran out (ack_timeout_s=10.0) and another "
            "worker holds it now")
    taken.ack()
    assert fast.receive() == [] and slow.receive() == []


def test_ack_of_a_message_another_worker_acked_is_harmless(log, clock):
    fill(log, "t", 0, 1)
    slow = log.queue("g", "t", ack_timeout_s=LOCK_S)
    fast = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [stale] = slow.receive()
    clock.advance(LOCK_MS + 1)
    [taken] = fast.receive()
    taken.ack()
    stale.ack()


def test_acks_from_another_thread_count(log):
    fill(log, "t", 0, 20)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    got = worker.receive()
    threads = [threading.Thread(target=m.ack) for m in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert worker.receive() == []


# -- deadlines, nack, extend -----------------------------------------------------------------------


def test_unacked_record_comes_back_just_after_its_deadline(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [message] = worker.receive()
    first = clock.now_ms
    clock.advance(LOCK_MS)
    assert worker.receive() == []
    clock.advance(1)
    [again] = worker.receive()
    assert (again.offset, again.delivery_count, again.first_delivery_ms) == (0, 2, first)


def test_redelivery_after_a_short_deadline_on_the_real_clock(log_dir):
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t")
        fill(log, "t", 0, 1)
        worker = log.queue("g", "t", ack_timeout_s=0.2)
        other = log.queue("g", "t", ack_timeout_s=0.2)
        [message] = worker.receive()
        began = time.monotonic()
        got = other.receive(timeout=5)
        assert where(got) == [(0, 0, 2)]
        assert 0.15 <= time.monotonic() - began < 4
        assert got[0].value == value_of(0, 0)


def test_delivery_count_grows_with_every_hand_out(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S, max_deliveries=4)
    counts = []
    for _ in range(4):
        counts += [m.delivery_count for m in worker.receive()]
        clock.advance(LOCK_MS + 1)
    assert counts == [1, 2, 3, 4]


def test_delivery_count_survives_reopening_the_log(log, clock, log_dir):
    fill(log, "t", 0, 1)
    [message] = log.queue("g", "t", ack_timeout_s=LOCK_S).receive()
    first = clock.now_ms
    log.close()
    clock.advance(7)
    with mqlog.open(log_dir, clock=clock) as reopened:
        [again] = reopened.queue("g", "t", ack_timeout_s=LOCK_S).receive()
    assert (again.delivery_count, again.first_delivery_ms) == (2, first)


def test_nack_with_a_delay_holds_the_record_back_until_then(log, clock):
    fill(log, "t", 0, 2)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    first, second = worker.receive()
    first.nack(delay_s=5)
    clock.advance(4999)
    assert worker.receive() == []
    clock.advance(1)
    assert where(worker.receive()) == [(0, 0, 2)]


def test_nack_with_no_delay_is_at_once_for_any_worker(log):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [message] = worker.receive()
    message.nack(delay_s=0)
    assert where(log.queue("g", "t").receive()) == [(0, 0, 2)]


def test_nack_without_a_delay_waits_for_the_backoff(log, clock):
    calls = []

    def backoff(deliveries: int) -> float:
        calls.append(deliveries)
        return 2.0 * deliveries

    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S, backoff=backoff)
    worker.receive()[0].nack()
    clock.advance(1999)
    assert worker.receive() == []
    clock.advance(1)
    [again] = worker.receive()
    again.nack()
    assert calls == [1, 2]
    clock.advance(3999)
    assert worker.receive() == []
    clock.advance(1)
    assert where(worker.receive()) == [(0, 0, 3)]


@pytest.mark.parametrize(("deliveries", "low", "high"),
                         [(1, 0.4, 0.6), (2, 0.8, 1.2), (4, 3.2, 4.8), (30, 48.0, 72.0)])
def test_default_backoff_doubles_with_jitter_up_to_a_minute(deliveries, low, high):
    delays = [default_backoff(deliveries) for _ in range(200)]
    assert low <= min(delays) and max(delays) <= high
    assert max(delays) - min(delays) > (high - low) / 4  # jittered, not constant


def test_extend_pushes_the_deadline_from_now(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    other = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [message] = worker.receive()
    clock.advance(5000)
    message.extend(30)
    clock.advance(30_000)
    assert other.receive() == []
    clock.advance(1)
    assert where(other.receive()) == [(0, 0, 2)]


def test_extend_then_ack(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [message] = worker.receive()
    message.extend(100)
    clock.advance(50_000)
    message.ack()
    clock.advance(100_000)
    assert worker.receive() == []


# -- more workers than partitions ------------------------------------------------------------------


def test_each_worker_of_one_partition_holds_different_records(log):
    fill(log, "t", 0, 4)
    workers = [log.queue("g", "t", ack_timeout_s=LOCK_S) for _ in range(3)]
    held = [where(w.receive(max_messages=1)) for w in workers]
    assert held == [[(0, 0, 1)], [(0, 1, 1)], [(0, 2, 1)]]
    assert where(workers[0].receive()) == [(0, 3, 1)]
    assert [w.receive() for w in workers] == [[], [], []]


def test_worker_threads_outnumbering_partitions_share_the_work(log_dir):
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t", partitions=2)
        for partition in range(2):
            fill(log, "t", partition, 150)
        workers = [log.queue("g", "t", ack_timeout_s=30) for _ in range(6)]
        got: list[list[tuple[int, int, int]]] = [[] for _ in workers]
        done = threading.Event()

        def work(index: int) -> None:
            deadline = time.monotonic() + 20
            while not done.is_set() and time.monotonic() < deadline:
                for message in workers[index].receive(max_messages=5, timeout=0.05):
                    time.sleep(0.001)
                    message.ack()
                    got[index].append(where([message])[0])
                if sum(map(len, got)) >= 300:
                    done.set()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    everything = sorted(item for items in got for item in items)
    assert everything == [(p, o, 1) for p in range(2) for o in range(150)]
    assert all(got), [len(items) for items in got]


# -- leaving: close and death ----------------------------------------------------------------------


def test_close_returns_held_records_to_the_others_at_once(log, log_dir):
    fill(log, "t", 0, 3)
    leaving = log.queue("g", "t", ack_timeout_s=LOCK_S)
    staying = log.queue("g", "t", ack_timeout_s=LOCK_S)
    assert len(leaving.receive()) == 3
    assert staying.receive() == []
    leaving.close()
    assert where(staying.receive()) == [(0, 0, 2), (0, 1, 2), (0, 2, 2)]
    members = os.listdir(log_dir / "queues" / "g" / "members")
    assert members == [f"{staying.member_id}.json"]


def test_context_manager_closes_the_worker(log):
    fill(log, "t", 0, 1)
    with log.queue("g", "t", ack_timeout_s=LOCK_S) as worker:
        worker.receive()
    with pytest.raises(LogClosedError, match="queue consumer is closed"):
        worker.receive()
    assert where(log.queue("g", "t").receive()) == [(0, 0, 2)]


def grab_and_die(log_dir, count: int) -> list[tuple[int, int]]:
    """Let a child process take ``count`` records of group g and die holding them."""
    child = start("grab", log=str(log_dir), group="g", topic="t", count=count)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -9, err
    held = out.split()[1]
    return [tuple(int(n) for n in item.split(":")) for item in held.split(",")]


def test_records_of_a_killed_worker_come_back_at_once(log, log_dir):
    survivor = log.queue("g", "t", ack_timeout_s=LOCK_S)
    assert survivor.receive() == []  # it knows the partition already
    fill(log, "t", 0, 5)
    assert grab_and_die(log_dir, 3) == [(0, 0), (0, 1), (0, 2)]
    began = time.monotonic()
    got = survivor.receive(max_messages=10, timeout=5)
    assert time.monotonic() - began < 1.0  # the lock is 10 s on a clock that stands still
    assert where(got) == [(0, 0, 2), (0, 1, 2), (0, 2, 2), (0, 3, 1), (0, 4, 1)]
    members = os.listdir(log_dir / "queues" / "g" / "members")
    assert members == [f"{survivor.member_id}.json"]  # the dead worker's file is cleaned up


def test_a_new_worker_takes_a_killed_workers_records_at_once(log, log_dir):
    fill(log, "t", 0, 3)
    assert grab_and_die(log_dir, 3) == [(0, 0), (0, 1), (0, 2)]
    newcomer = log.queue("g", "t", ack_timeout_s=LOCK_S)
    assert where(newcomer.receive(max_messages=10, timeout=0)) == [
        (0, 0, 2), (0, 1, 2), (0, 2, 2)]


# -- dead letters ----------------------------------------------------------------------------------


def test_dead_letter_after_max_deliveries_keeps_the_record_and_says_why(log, clock):
    log.create_topic("orders", partitions=3)
    log.append("orders", 2, [Record(b"v", key=b"k", headers={"h": b"x"}, timestamp=77)])
    worker = log.queue("g", "orders", ack_timeout_s=LOCK_S, max_deliveries=2)
    first_ms = clock.now_ms
    worker.receive()[0].nack(delay_s=1, reason="first")
    clock.advance(1000)
    [again] = worker.receive()
    assert again.delivery_count == 2
    again.nack(delay_s=0, reason="second")
    clock.advance(5)
    assert worker.receive() == []
    description = log.describe_topic("orders.dlq")
    assert [p.end_offset for p in description.partitions] == [0, 0, 1]
    [dead] = log.read("orders.dlq", 2, 0)
    assert (dead.value, dead.key, dead.timestamp) == (b"v", b"k", 77)
    headers = dict(dead.headers)
    headers.pop("dlq.last_delivery_ms")  # see test_dead_letter_last_delivery_time_*
    assert headers == {
        "h": b"x", "dlq.topic": b"orders", "dlq.partition": b"2", "dlq.offset": b"0",
        "dlq.delivery_count": b"2", "dlq.reason": b"second",
        "dlq.first_delivery_ms": str(first_ms).encode(),
    }
    assert log.queue("g", "orders").receive() == []


def test_dead_letter_last_delivery_time_is_the_last_hand_out(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S, max_deliveries=2)
    worker.receive()
    clock.advance(LOCK_MS + 1)
    last_ms = clock.now_ms
    assert where(worker.receive()) == [(0, 0, 2)]
    clock.advance(LOCK_MS + 1)
    assert worker.receive() == []
    [dead] = log.read("t.dlq", 0, 0)
    assert dead.headers["dlq.last_delivery_ms"] == str(last_ms).encode()


def test_dead_letter_after_deadlines_only_has_no_reason(log, clock):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S, max_deliveries=1)
    worker.receive()
    clock.advance(LOCK_MS + 1)
    assert worker.receive() == []
    [dead] = log.read("t.dlq", 0, 0)
    assert (dead.headers["dlq.reason"], dead.headers["dlq.delivery_count"]) == (b"", b"1")


def test_custom_dead_letter_topic_is_created_like_the_source(log, clock):
    log.create_topic("u", partitions=2)
    fill(log, "u", 1, 1)
    worker = log.queue("g", "u", ack_timeout_s=LOCK_S, max_deliveries=1,
                       dead_letter_topic="parked")
    assert worker.dead_letter_topic_for("u") == "parked"
    worker.receive()[0].nack(delay_s=0, reason="no")
    assert worker.receive() == []
    assert "u.dlq" not in log.topics()
    assert [p.end_offset for p in log.describe_topic("parked").partitions] == [0, 1]
    [dead] = log.read("parked", 1, 0)
    assert (dead.value, dead.headers["dlq.topic"], dead.headers["dlq.reason"]) == (
        value_of(1, 0), b"u", b"no")


def test_existing_custom_dead_letter_topic_with_fewer_partitions(log):
    log.create_topic("u", partitions=3)
    log.create_topic("parked")
    fill(log, "u", 2, 1)
    worker = log.queue("g", "u", max_deliveries=1, dead_letter_topic="parked")
    worker.receive()[0].nack(delay_s=0)
    assert worker.receive() == []
    [dead] = log.read("parked", 0, 0)
    assert (dead.value, dead.headers["dlq.partition"]) == (value_of(2, 0), b"2")


def test_receive_returns_ready_records_behind_a_dead_letter(log, clock):
    fill(log, "t", 0, 2)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S, max_deliveries=1)
    assert where(worker.receive(max_messages=1)) == [(0, 0, 1)]
    clock.advance(LOCK_MS + 1)
    assert where(worker.receive(max_messages=1, timeout=0)) == [(0, 1, 1)]
    assert log.end_offset("t.dlq", 0) == 1


def test_the_other_records_flow_past_a_record_that_keeps_failing(log, clock):
    fill(log, "t", 0, 6)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S, max_deliveries=3)
    acked = []
    for _ in range(5):
        for message in worker.receive(max_messages=2):
            if message.offset == 0:
                message.nack(delay_s=0, reason="poison")
            else:
                message.ack()
                acked.append(message.offset)
    assert acked == [1, 2, 3, 4, 5]
    assert worker.receive() == []
    [dead] = log.read("t.dlq", 0, 0)
    assert (dead.value, dead.headers["dlq.delivery_count"]) == (value_of(0, 0), b"3")


# -- redrive ---------------------------------------------------------------------------------------


def dead_letter_all(log: mqlog.Log, topic: str = "t", reason: str = "bad") -> None:
    """Dead-letter every ready record of ``topic`` (max_deliveries=1, one nack each)."""
    worker = log.queue("dl", topic, max_deliveries=1)
    for message in worker.receive(max_messages=100):
        message.nack(delay_s=0, reason=reason)
    assert worker.receive(max_messages=100) == []
    worker.close()


@pytest.fixture
def dead(log):
    """Three dead letters of t (values value_of(0, 0..2), one with key and headers)."""
    log.append("t", 0, [Record(value_of(0, 0), key=b"k", headers={"h": b"1"}, timestamp=9),
                        value_of(0, 1), value_of(0, 2)])
    dead_letter_all(log)
    assert log.end_offset("t.dlq", 0) == 3
    return log


def test_redrive_moves_every_dead_letter_back_once(dead):
    log = dead
    assert log.redrive("t.dlq") == 3
    back = log.read("t", 0, 3)
    assert [(r.offset, r.value) for r in back] == [(3 + i, value_of(0, i)) for i in range(3)]
    assert (back[0].key, dict(back[0].headers), back[0].timestamp) == (b"k", {"h": b"1"}, 9)
    assert [dict(r.headers) for r in back[1:]] == [{}, {}]
    assert log.redrive("t.dlq") == 0
    assert log.end_offset("t", 0) == 6
    assert log.end_offset("t.dlq", 0) == 3  # the dead letters stay where they are
    assert where(log.queue("dl", "t").receive()) == [(0, 3, 1), (0, 4, 1), (0, 5, 1)]


def test_redrive_by_offsets_then_the_rest(dead):
    log = dead
    assert log.redrive("t.dlq", offsets=[0, 2]) == 2
    assert [r.value for r in log.read("t", 0, 3)] == [value_of(0, 0), value_of(0, 2)]
    assert log.redrive("t.dlq", offsets=[0, 2]) == 0
    assert log.redrive("t.dlq") == 1
    assert [r.value for r in log.read("t", 0, 5)] == [value_of(0, 1)]


def test_redrive_by_filter_sees_the_dead_letter_headers(dead):
    log = dead
    seen = []

    def pick(message) -> bool:
        seen.append((message.offset, message.headers["dlq.offset"]))
        return message.key == b"k"

    assert log.redrive("t.dlq", where=pick) == 1
    assert sorted(seen) == [(0, b"0"), (1, b"1"), (2, b"2")]
    assert [r.value for r in log.read("t", 0, 3)] == [value_of(0, 0)]
    assert log.redrive("t.dlq", where=pick) == 0
    assert log.redrive("t.dlq", offsets=[1, 2], where=lambda m: m.offset == 2) == 1
    assert log.redrive("t.dlq") == 1


def test_redrive_moves_new_dead_letters_later(dead, clock):
    log = dead
    assert log.redrive("t.dlq") == 3
    dead_letter_all(log, reason="again")
    assert log.end_offset("t.dlq", 0) == 6
    assert log.redrive("t.dlq") == 3
    assert log.end_offset("t", 0) == 9


def test_redrive_of_an_unknown_topic(log):
    with pytest.raises(UnknownTopicError):
        log.redrive("nope.dlq")


# -- retention and compaction ----------------------------------------------------------------------


@pytest.fixture
def retained(log):
    """Topic r: 40 records of 200 bytes in 3 segments; retention keeps about 4 KiB."""
    log.create_topic("r", segment_bytes=4096, retention_bytes=4096)
    for _ in range(40):
        log.append("r", 0, [b"x" * 200])
    assert log.describe_topic("r").partitions[0].segment_count == 3
    return log


def test_records_deleted_by_retention_are_skipped_even_if_unfinished(retained):
    log = retained
    worker = log.queue("g", "r", ack_timeout_s=LOCK_S)
    held = worker.receive(max_messages=3)
    assert log.enforce_retention("r") == 1
    start = log.start_offset("r", 0)
    assert start == 15
    rest = drain(worker)
    assert where(rest) == [(0, o, 1) for o in range(start, 40)]
    for message in held:
        message.ack()  # finished meanwhile: harmless
    assert "r.dlq" not in log.topics()


def test_retention_during_a_receive_does_not_drop_records_still_there(retained, monkeypatch):
    log = retained
    worker = log.queue("g", "r", ack_timeout_s=LOCK_S)
    acquire = _share_state.ShareState.acquire

    def acquire_then_retention(self, *args, **kwargs):
        acquired = acquire(self, *args, **kwargs)
        log.enforce_retention("r")  # as another process may, between acquire and read
        return acquired

    monkeypatch.setattr(_share_state.ShareState, "acquire", acquire_then_retention)
    first = worker.receive(max_messages=100)
    monkeypatch.setattr(_share_state.ShareState, "acquire", acquire)
    start = log.start_offset("r", 0)
    assert start == 15
    assert [m.offset for m in first + drain(worker)] == list(range(start, 40))


def test_compaction_gaps_are_skipped(log):
    log.create_topic("c", cleanup_policy="compact", segment_bytes=4096)
    for i in range(30):
        log.append("c", 0, [Record(b"y" * 200, key=b"k%d" % (i % 3))])
    log.compact("c")  # what the background compactor has not done yet
    survivors = [r.offset for r in log.iter("c", 0)]
    assert survivors[0] > 0
    worker = log.queue("g", "c", ack_timeout_s=LOCK_S)
    assert [m.offset for m in drain(worker)] == survivors


# -- bad input and closed things -------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"group": ""}, "group name is empty"),
    ({"group": "a/b"}, "group name 'a/b' has characters outside [a-zA-Z0-9._-]"),
    ({"group": "."}, "group name cannot be '.'"),
    ({"group": ".."}, "group name cannot be '..'"),
    ({"group": 7}, "group name must be a str, not int"),
    ({"ack_timeout_s": 0}, "ack_timeout_s must be > 0, not 0"),
    ({"ack_timeout_s": -1.5}, "ack_timeout_s must be > 0, not -1.5"),
    ({"ack_timeout_s": "5"}, "ack_timeout_s must be > 0, not '5'"),
    ({"max_deliveries": 0}, "max_deliveries must be an int from 1 to 254, not 0"),
    ({"max_deliveries": 255}, "max_deliveries must be an int from 1 to 254, not 255"),
    ({"max_deliveries": 2.0}, "max_deliveries must be an int from 1 to 254, not 2.0"),
])
def test_bad_configuration_is_refused_before_anything_is_written(log, log_dir, options,
                                                                  message):
    arguments = {"group": "g", **options}
    group = arguments.pop("group")
    with pytest.raises(ConfigError) as caught:
        log.queue(group, "t", **arguments)
    assert str(caught.value) == message
    assert not (log_dir / "queues").exists()


def test_unknown_topic_is_refused(log, log_dir):
    with pytest.raises(UnknownTopicError, match="nope"):
        log.queue("g", ["t", "nope"])
    assert not (log_dir / "queues").exists()


def test_a_closed_worker_refuses_to_receive_and_close_is_idempotent(log):
    worker = log.queue("g", "t")
    worker.close()
    worker.close()
    with pytest.raises(LogClosedError, match="queue consumer is closed"):
        worker.receive()


def test_closing_the_log_closes_its_workers(log):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    worker.receive()
    log.close()
    with pytest.raises(LogClosedError, match="queue consumer is closed"):
        worker.receive()
    with pytest.raises(LogClosedError, match="is closed"):
        log.queue("g", "t")


@pytest.mark.parametrize("action", ["ack", "nack", "extend"])
def test_acting_on_a_message_of_a_closed_worker_raises_log_closed(log, action):
    fill(log, "t", 0, 1)
    worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
    [message] = worker.receive()
    worker.close()
    call = {"ack": message.ack, "nack": message.nack, "extend": lambda: message.extend(1)}
    with pytest.raises(LogClosedError):
        call[action]()
    assert worker._states == {}  # nothing reopened by the closed worker


# -- durability ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("durability", "flushed"), [("always", True), ("none", False)])
def test_queue_state_is_flushed_for_always_topics(log, monkeypatch, durability, flushed):
    synced = []
    monkeypatch.setattr(_share_state.ShareState, "_sync", lambda self: synced.append(self.path))
    log.create_topic("d", durability=durability)
    fill(log, "d", 0, 2)
    worker = log.queue("g", "d", ack_timeout_s=LOCK_S, max_deliveries=1)
    first, second = worker.receive()  # 1 flush: the delivery counts
    first.ack()  # 2: lock-free, then flushed
    second.nack(delay_s=0)  # 3
    assert worker.receive() == []  # 4-6: taken, archived, counted as dead-lettered
    assert len(synced) == (6 if flushed else 0)
    assert log.describe_topic("d.dlq").config.durability == durability
    worker.close()


def test_ack_many_acks_per_partition_with_one_flush_each(log, clock, monkeypatch):
    synced = []
    monkeypatch.setattr(_share_state.ShareState, "_sync", lambda self: synced.append(self.path))
    log.create_topic("d", partitions=2, durability="always")
    fill(log, "d", 0, 3)
    fill(log, "d", 1, 3)
    worker = log.queue("g", "d", ack_timeout_s=LOCK_S)
    other = log.queue("g", "d", ack_timeout_s=LOCK_S)
    received = worker.receive(max_messages=10)
    assert len(received) == 6
    clock.advance(LOCK_MS + 1)
    [taken] = other.receive(max_messages=1)  # the lock of (0, 0) ran out: now other's
    assert (taken.partition, taken.offset) == (0, 0)
    synced.clear()
    with pytest.raises(DeliveryLostError, match=r"cannot ack d/0@0: their locks ran out"):
        worker.ack_many(received)
    assert len(synced) == 2  # one flush per partition
    assert [row.position for row in log.describe_queue("g")] == [0, 3]
    taken.ack()
    assert [row.position for row in log.describe_queue("g")] == [3, 3]
    with pytest.raises(ValueError, match="was not received by this worker"):
        other.ack_many(received[1:2])
    worker.close()
    other.close()


# -- topics deleted and created again --------------------------------------------------------------

def test_a_queue_reads_a_topic_deleted_and_created_again_elsewhere_from_where_it_was(
        log_dir, clock):
    """Another process deletes a topic a queue group has taken records of and
    creates it again: its new records get offsets from the queue's window end
    on (the end floor), so the queue's workers -- the one that was running and
    a new one -- receive them all, none skipped for an offset the group passed
    in the deleted topic."""
    with mqlog.open(log_dir, clock=clock) as log, mqlog.open(log_dir, clock=clock) as admin:
        log.create_topic("t")
        fill(log, "t", 0, 5)
        worker = log.queue("g", "t", ack_timeout_s=LOCK_S)
        assert [m.offset for m in drain(worker)] == [0, 1, 2, 3, 4]
        admin.delete_topic("t")
        admin.create_topic("t")
        admin.append("t", 0, [b"new-%d" % n for n in range(3)])
        assert admin.end_offset("t", 0) == 8  # offsets 0-4 stay spent
        assert [(m.offset, m.value) for m in drain(worker)] == [
            (5, b"new-0"), (6, b"new-1"), (7, b"new-2")]
        admin.append("t", 0, [b"later"])
        worker.close()
        with log.queue("g", "t", ack_timeout_s=LOCK_S) as fresh:
            assert [(m.offset, m.value) for m in drain(fresh)] == [(8, b"later")]
