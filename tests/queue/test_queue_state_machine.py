"""A stateful test of queue groups against a plain model of their rules.

Hypothesis drives appends, receives by several workers, ack/nack/extend,
deadline expiry (a fake clock), worker crashes and closing and reopening the
log. Crashes come in two kinds: a worker that closes without acking, and a
worker that dies right after taking records -- played by acquiring records in
the share state under a member id that has no member file (the state a
SIGKILLed worker leaves behind).

The model keeps, per record, its state (ready, held by a live worker, orphaned
by a dead one, acked, dead-lettered), its deadline or not-before time, its
delivery count and first delivery time. Checked after every step:

- a message is handed out only when it may be: ready and due, its lock
  expired, or its holder dead; it is held by at most one worker;
- acked records never come back; ack/nack/extend fail with DeliveryLostError
  exactly when the worker does not hold the record any more;
- delivery counts grow by one per hand-out and never decrease; a record is
  dead-lettered when handed out after ``max_deliveries`` deliveries;
- receive is complete: when it returns fewer records than asked, nothing else
  was ready (records of a dead worker are ready at once) or it stopped before a
  record on its last attempt, and per partition it hands out the lowest offsets;
- a redelivery that is a record's last attempt is handed out alone;
- the share-state file matches the model entry by entry, every offset below
  ``start`` is finished, and after a receive that looked at every partition
  ``start`` is exactly the first unfinished offset;
- at the end (after moving the clock past every deadline), everything is
  received and acked, or dead-lettered once.

Bounded for CI; ``MQLOG_SOAK=1`` runs many more and longer examples.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import mqlog
from mqlog.consumer import _queue
from mqlog.consumer._share_state import ShareState
from mqlog.errors import DeliveryLostError
from tests.conftest import FakeClock
from tests.queue._children import (
    ACKED,
    ACQUIRED,
    ARCHIVED,
    AVAILABLE,
    read_share_file,
    share_state_path,
    value_of,
)

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
TOPIC = "sm"
DLQ = "sm.dlq"
GROUP = "g"
PARTITIONS = 2
LOCK_MS = 1000
MAX_DELIVERIES = 2
MAX_WORKERS = 3
#: Member ids of dead workers: no member file is ever created for them.
GHOST_BASE = 0xFFFF_0000
#: Moves the clock past every deadline and not-before time the rules can set.
FAR_FUTURE_MS = 200_000
DELAYS = st.sampled_from([None, 0, 0.5, 1.5])


def backoff(deliveries: int) -> float:
    """Deterministic back-off: 250 ms per delivery."""
    return 0.25 * deliveries


@dataclasses.dataclass
class Rec:
    """The model of one record. ``time``: deadline (held, orphan) or not-before (ready)."""

    state: str = "ready"  # ready | held | orphan | acked | dead
    owner: str = ""
    ghost: int = 0
    time: int = 0
    deliveries: int = 0
    first_ms: int = 0

    @property
    def finished(self) -> bool:
        return self.state in ("acked", "dead")


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="mqlog-queue-sm-")
        self.clock = FakeClock()
        self.log = self._open()
        self.log.create_topic(TOPIC, partitions=PARTITIONS)
        self.recs: dict[tuple[int, int], Rec] = {}
        self.ends = [0] * PARTITIONS
        self.workers: dict[str, _queue.QueueConsumer] = {}
        self.handles: list[tuple[str, _queue.QueueMessage]] = []
        self.dead_letters: list[tuple[int, int]] = []
        self.dlq_read = [0] * PARTITIONS
        self.names = 0
        self.ghosts = 0
        #: Receives since the log was (re)opened: reopening waits for a few, so
        #: that examples spend their steps on the queue rather than on reopening.
        self.receives = 0

    def _open(self) -> mqlog.Log:
        return mqlog.open(os.path.join(self.directory, "log"), clock=self.clock,
                          durability="none")

    # -- model helpers ------------------------------------------------------------------------

    def may_hand_out(self, rec: Rec) -> bool:
        """A record some receive may return now (an orphan may have been freed)."""
        now = self.clock.now_ms
        return (rec.state == "ready" and rec.time <= now) or rec.state == "orphan" or (
            rec.state == "held" and rec.time < now)

    def due(self, rec: Rec) -> bool:
        """A record the share state hands out by itself now: ready and due, or its
        lock ran out."""
        now = self.clock.now_ms
        return (rec.state == "ready" and rec.time <= now) or (
            rec.state in ("held", "orphan") and rec.time < now)

    def must_hand_out(self, rec: Rec) -> bool:
        """A record a receive that finds room for it has to return now: due, or
        held by a dead worker (freed by the next receive that looks at it)."""
        return self.due(rec) or rec.state == "orphan"

    @staticmethod
    def is_last_attempt(delivery: int) -> bool:
        """A redelivery that is the record's last attempt: it is handed out alone."""
        return 1 < delivery == MAX_DELIVERIES

    def first_unfinished(self, partition: int) -> int:
        return next((o for o in range(self.ends[partition])
                     if not self.recs[partition, o].finished), self.ends[partition])

    def new_dead_letters(self) -> list[tuple[int, int]]:
        """Check the records appended to the DLQ since last time; mark them dead."""
        if DLQ not in self.log.topics():
            return []
        found = []
        for partition in range(PARTITIONS):
            for record in self.log.read(DLQ, partition, self.dlq_read[partition], 1000):
                headers = record.headers
                key = (int(headers["dlq.partition"]), int(headers["dlq.offset"]))
                rec = self.recs[key]
                assert key[0] == partition and headers["dlq.topic"] == TOPIC.encode()
                assert self.may_hand_out(rec), (key, rec)
                assert rec.deliveries >= MAX_DELIVERIES, (key, rec)
                assert headers["dlq.delivery_count"] == str(rec.deliveries).encode()
                assert headers["dlq.first_delivery_ms"] == str(rec.first_ms).encode()
                assert record.value == value_of(*key)
                rec.state, rec.owner = "dead", ""
                rec.deliveries += 1  # the hand-out that found it over the limit counts
                found.append(key)
                self.dlq_read[partition] = record.offset + 1
        self.dead_letters += found
        return found

    def check_received(self, name: str, messages, asked: int) -> None:
        """Check one receive of worker ``name`` against the model and apply it."""
        now = self.clock.now_ms
        self.receives += 1
        dead = self.new_dead_letters()
        taken = [(m.partition, m.offset) for m in messages]
        assert len(set(taken)) == len(taken) <= asked
        for message in messages:
            key = (message.partition, message.offset)
            rec = self.recs[key]
            assert self.may_hand_out(rec), (key, rec)
            assert message.value == value_of(*key) and message.topic == TOPIC
            assert message.delivery_count == rec.deliveries + 1
            first = rec.first_ms or now
            assert message.first_delivery_ms == first
            rec.state, rec.owner, rec.time = "held", name, now + LOCK_MS
            rec.deliveries, rec.first_ms = message.delivery_count, first
            self.handles.append((name, message))
        for partition in range(PARTITIONS):
            mine = [o for p, o in taken if p == partition]
            assert mine == sorted(mine)
            done = set(mine) | {o for p, o in dead if p == partition}
            skipped = [o for o in range(max(mine, default=-1))
                       if o not in done and self.must_hand_out(self.recs[partition, o])]
            assert skipped == [], (partition, mine, skipped)
        lone_last = [m for m in messages if self.is_last_attempt(m.delivery_count)]
        assert lone_last == [] or len(messages) == 1, taken  # a last attempt comes alone
        missed = [key for key, rec in self.recs.items()
                  if key not in taken and self.must_hand_out(rec)]
        # A receive ends before a last attempt it cannot hand out alone.
        stopped = bool(lone_last) or any(
            self.is_last_attempt(self.recs[key].deliveries + 1) for key in missed)
        if len(messages) < asked and not stopped:
            if not dead:
                assert missed == [], missed
            for partition in range(PARTITIONS):
                path = share_state_path(self.log.path, GROUP, TOPIC, partition)
                if path.exists():
                    assert read_share_file(path).start == self.first_unfinished(partition)
        del self.handles[:-30]

    def pick(self, data, unfinished_only: bool = False) -> tuple[str, _queue.QueueMessage]:
        handles = [(name, message) for name, message in self.handles
                   if not unfinished_only
                   or not self.recs[message.partition, message.offset].finished]
        if not handles:
            return "", None
        return handles[data.draw(st.integers(0, len(handles) - 1), label="handle")]

    def holds(self, name: str, message) -> bool:
        rec = self.recs[message.partition, message.offset]
        return rec.state == "held" and rec.owner == name

    def forget(self, name: str) -> None:
        del self.workers[name]
        self.handles = [(n, m) for n, m in self.handles if n != name]

    # -- rules ----------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        for partition in range(PARTITIONS):
            self.append(partition, 3)
        self.open_worker()
        self.open_worker()

    @rule(partition=st.integers(0, PARTITIONS - 1), count=st.integers(1, 3))
    def append(self, partition: int, count: int) -> None:
        end = self.ends[partition]
        self.log.append(TOPIC, partition, [value_of(partition, end + i) for i in range(count)])
        for offset in range(end, end + count):
            self.recs[partition, offset] = Rec()
        self.ends[partition] = end + count

    @precondition(lambda self: len(self.workers) < MAX_WORKERS)
    @rule()
    def open_worker(self) -> None:
        self.names += 1
        self.workers[f"w{self.names}"] = self.log.queue(
            GROUP, TOPIC, ack_timeout_s=LOCK_MS / 1000, max_deliveries=MAX_DELIVERIES,
            backoff=backoff)

    @precondition(lambda self: self.workers)
    @rule(data=st.data(), asked=st.integers(1, 4))
    def receive(self, data, asked: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.workers)), label="worker")
        messages = self.workers[name].receive(max_messages=asked, timeout=0)
        self.check_received(name, messages, asked)

    @precondition(lambda self: self.workers)
    @rule(data=st.data(), asked=st.integers(1, 4))
    def receive_and_handle(self, data, asked: int) -> None:
        """Receive, then ack, nack or keep each message as a handler would."""
        name = data.draw(st.sampled_from(sorted(self.workers)), label="worker")
        messages = self.workers[name].receive(max_messages=asked, timeout=0)
        self.check_received(name, messages, asked)
        for message in messages:
            action = data.draw(st.sampled_from(["ack", "ack", "nack", "keep"]), label="action")
            if action == "ack":
                self.do_ack(name, message)
            elif action == "nack":
                self.do_nack(name, message, data.draw(DELAYS, label="delay"), "why")

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def ack(self, data) -> None:
        self.do_ack(*self.pick(data))

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), delay=DELAYS, reason=st.sampled_from([None, "why"]))
    def nack(self, data, delay: float | None, reason: str | None) -> None:
        name, message = self.pick(data, unfinished_only=True)
        if message is not None:
            self.do_nack(name, message, delay, reason)

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), seconds=st.sampled_from([0.5, 2, 5]))
    def extend(self, data, seconds: float) -> None:
        name, message = self.pick(data, unfinished_only=True)
        if message is None:
            return
        if not self.holds(name, message):
            with pytest.raises(DeliveryLostError):
                message.extend(seconds)
            return
        message.extend(seconds)
        self.recs[message.partition, message.offset].time = (
            self.clock.now_ms + int(seconds * 1000))

    def do_ack(self, name: str, message) -> None:
        rec = self.recs[message.partition, message.offset]
        if rec.finished:
            message.ack()  # twice, or after another worker finished it: harmless
        elif self.holds(name, message):
            message.ack()
            rec.state, rec.owner = "acked", ""
        else:
            with pytest.raises(DeliveryLostError):
                message.ack()

    def do_nack(self, name: str, message, delay: float | None, reason: str | None) -> None:
        if not self.holds(name, message):
            with pytest.raises(DeliveryLostError):
                message.nack(delay, reason)
            return
        message.nack(delay, reason)
        rec = self.recs[message.partition, message.offset]
        seconds = backoff(message.delivery_count) if delay is None else delay
        rec.state, rec.owner, rec.time = "ready", "", self.clock.now_ms + int(seconds * 1000)

    @rule(ms=st.sampled_from([1, 999, 1000, 1001, 3000]))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @precondition(lambda self: self.workers)
    @rule(data=st.data())
    def close_worker(self, data) -> None:
        name = data.draw(st.sampled_from(sorted(self.workers)), label="worker")
        self.workers[name].close()
        for rec in self.recs.values():
            if rec.state == "held" and rec.owner == name:
                rec.state, rec.owner, rec.time = "ready", "", 0
        self.forget(name)

    @rule(partition=st.integers(0, PARTITIONS - 1), limit=st.integers(1, 3))
    def worker_dies_holding_records(self, partition: int, limit: int) -> None:
        """A worker takes records and dies at once: its member id has no live file."""
        self.ghosts += 1
        ghost = GHOST_BASE + self.ghosts
        now = self.clock.now_ms
        path = share_state_path(self.log.path, GROUP, TOPIC, partition)
        state = ShareState(str(path), _queue.WINDOW_RECORDS, 0)
        try:
            got = state.acquire(ghost, now, LOCK_MS, limit,
                                self.log.start_offset(TOPIC, partition), self.ends[partition],
                                MAX_DELIVERIES)
        finally:
            state.close()
        lone_last = [d for d in got.deliveries if self.is_last_attempt(d)]
        assert lone_last == [] or len(got.offsets) == 1, got
        for offset, deliveries, first in zip(got.offsets, got.deliveries, got.first_ms):
            rec = self.recs[partition, offset]
            assert self.may_hand_out(rec), (offset, rec)
            assert deliveries == rec.deliveries + 1
            assert first == (rec.first_ms or now)
            rec.state, rec.owner, rec.ghost, rec.time = "orphan", "", ghost, now + LOCK_MS
            rec.deliveries, rec.first_ms = deliveries, first
        if got.stopped:  # only for a last attempt, ready and not taken, or taken alone
            assert lone_last or any(
                self.may_hand_out(rec) and self.is_last_attempt(rec.deliveries + 1)
                for (p, o), rec in self.recs.items() if p == partition), got
        if len(got.offsets) < limit and not got.stopped:
            missed = [o for (p, o), rec in self.recs.items() if p == partition
                      and o not in got.offsets and self.due(rec)]
            assert missed == [], missed

    @precondition(lambda self: self.receives >= 4)
    @rule()
    def reopen(self) -> None:
        self.receives = 0
        self.log.close()
        for rec in self.recs.values():
            if rec.state == "held":
                rec.state, rec.owner, rec.time = "ready", "", 0
        self.workers.clear()
        self.handles.clear()
        self.log = self._open()

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def share_state_files_match_the_model(self) -> None:
        for partition in range(PARTITIONS):
            path = share_state_path(self.log.path, GROUP, TOPIC, partition)
            if not path.exists():
                assert all(rec.deliveries == 0 for (p, _), rec in self.recs.items()
                           if p == partition)
                continue
            parsed = read_share_file(path)
            assert (parsed.magic, parsed.version) == (b"MQLSHARE", 1)
            assert parsed.start <= self.first_unfinished(partition)
            assert parsed.start <= parsed.window_end <= self.ends[partition]
            for offset in range(parsed.start, self.ends[partition]):
                rec = self.recs[partition, offset]
                if offset >= parsed.window_end:
                    assert (rec.state, rec.deliveries) == ("ready", 0), (offset, rec)
                    continue
                self.check_entry(offset, rec, parsed.entry(offset))

    def check_entry(self, offset: int, rec: Rec, entry) -> None:
        state, deliveries, owner, time = (int(entry["state"]), int(entry["deliveries"]),
                                          int(entry["owner"]), int(entry["time"]))
        where = (offset, rec, entry.tolist())
        assert deliveries == rec.deliveries, where
        assert int(entry["first_ms"]) == rec.first_ms, where
        if rec.state == "acked":
            assert state == ACKED, where
        elif rec.state == "dead":
            assert state == ARCHIVED, where
        elif rec.state == "held":
            member = self.workers[rec.owner].member_id
            assert (state, owner, time) == (ACQUIRED, member, rec.time), where
        elif rec.state == "ready":
            assert (state, time) == (AVAILABLE, rec.time), where
        else:  # orphan: still held by the dead member, or freed by a live one
            assert (state, owner, time) in ((ACQUIRED, rec.ghost, rec.time),
                                            (AVAILABLE, rec.ghost, 0)), where

    # -- the end: everything is eventually received or dead-lettered ----------------------------

    def drain(self) -> None:
        self.clock.advance(FAR_FUTURE_MS)
        self.open_worker()
        name = f"w{self.names}"
        while True:
            messages = self.workers[name].receive(max_messages=50, timeout=0)
            before = len(self.dead_letters)
            self.check_received(name, messages, 50)
            for message in messages:
                message.ack()
                self.recs[message.partition, message.offset].state = "acked"
            if not messages and len(self.dead_letters) == before:
                break
        unfinished = {key: rec for key, rec in self.recs.items() if not rec.finished}
        assert unfinished == {}
        dead = sorted(key for key, rec in self.recs.items() if rec.state == "dead")
        assert sorted(self.dead_letters) == dead  # each dead letter written once
        for partition in range(PARTITIONS):
            path = share_state_path(self.log.path, GROUP, TOPIC, partition)
            if self.ends[partition]:
                assert read_share_file(path).start == self.ends[partition]

    def teardown(self) -> None:
        try:
            self.drain()
        finally:
            self.log.close()
            shutil.rmtree(self.directory, ignore_errors=True)


def test_queue_rules_hold_under_random_operations(monkeypatch):
    # Look for dead workers on every receive (not every 100 ms): the model can say when.
    monkeypatch.setattr(_queue, "DEAD_CHECK_S", 0.0)
    run_state_machine_as_test(QueueMachine, settings=settings(
        max_examples=300 if SOAK else 30, stateful_step_count=80 if SOAK else 40,
        deadline=None, suppress_health_check=[HealthCheck.too_slow]))


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="MQLOG_SOAK=1 runs the long variant")
def test_queue_rules_soak(monkeypatch):
    monkeypatch.setattr(_queue, "DEAD_CHECK_S", 0.0)
    run_state_machine_as_test(QueueMachine, settings=settings(
        max_examples=1000, stateful_step_count=100, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
