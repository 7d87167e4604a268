"""Queue semantics on the log: competing workers, per-message ack/nack, lock
deadlines, durable delivery counts and dead letters (``Log.queue``).

Owner: a QueueConsumer (the worker, this module) owns its member id (an
``flock`` on ``<log>/queues/<group>/members/<id>.json``: a killed worker is
known dead at once), its open share states (one per partition it has served,
closed with it) and the messages it holds. The shared truth is each
partition's ShareState (see ``_share_state``): a message is held by one worker
at a time, until it is acked, nacked, its lock deadline passes, or its worker
dies. A closed worker takes, acks, nacks and extends nothing (LogClosedError)
and has released what it held.

The other modules of queue groups: ``_queue_take`` (taking records from the
partitions: lanes, expiry, delays), ``_dead_lettering`` (moving records to the
dead-letter topic, nack reasons), ``_queue_files`` (the group's files),
``_queue_views`` (read-only descriptions), ``_pending`` (pending messages and
claims), ``_receipts`` (receipt handles) and ``_dead_letters`` (listing,
redriving and purging dead letters).

Rules:
1. ``receive`` hands out records in offset order per partition, each held for
   ``ack_timeout_s``; an unacked record is handed out again after its deadline,
   on ``nack`` (after the nack's delay, else the back-off), or at once when its
   worker died.
2. An acked record is never handed out again; the group's position per
   partition (``start`` of the share state) is the first unfinished record.
3. Each hand-out counts, durably (the count is in the shared state before
   ``receive`` returns), so a record whose handler kills its process every
   time is moved to the dead-letter topic after ``max_deliveries`` hand-outs,
   and the other records keep flowing meanwhile. A redelivery that is a
   record's last attempt is handed out alone (a receive returns it by itself
   or ends before it), so the records received with one that kills its worker
   are not dead-lettered with it.
4. A dead-lettered record keeps its key, value and headers and gains
   ``dlq.*`` headers: original topic, partition, offset, delivery count, last
   nack reason, first and last delivery time. Moving it to the dead-letter
   topic is at-least-once: a worker killed between the append and the state
   change can leave a duplicate there.
5. A record whose batch on disk is damaged cannot be delivered (nor
   dead-lettered: its bytes are unknown). It is archived as Kafka share
   groups archive a rejected record: never handed out, counted in the
   ``corrupt`` counter of the share state, logged as a warning, and the
   group's position moves past it, so workers never loop on it. The records
   around it are delivered as usual.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from mqlog.consumer._config import TopicPartition, check_timeout
from mqlog.consumer._dead_lettering import DLQ_SUFFIX, remember_reason
from mqlog.consumer._group import lock_is_held, queue_directory, refuse_other_kind
from mqlog.consumer._queue_files import (
    WINDOW_RECORDS,
    member_path,
    share_state_path,
    state_is_durable,
)
from mqlog.consumer._queue_take import Taker
from mqlog.consumer._share_state import ACKED, DETACHED, ShareState
from mqlog.errors import ConfigError, DeliveryLostError, LogClosedError
from mqlog.logstore import Engine, Message
from mqlog.names import validate_name

#: How often a worker looks for dead workers whose records it can free.
DEAD_CHECK_S = 0.1
#: How often close() looks whether the acks other threads are making have ended.
CLOSE_POLL_S = 0.0005
#: Longest lock, nack delay or extension: times are whole ms in 64-bit fields, and
#: ms counts up to 2**53 are exact in a float (about 285,000 years).
SECONDS_MAX = 2**53 // 1000

Backoff = Callable[[int], float]


def default_backoff(deliveries: int) -> float:
    """Seconds before a nacked record comes back: 0.5 s doubling per delivery, at
    most 60 s, with +-20% jitter so that retries of many records spread out."""
    return min(60.0, 0.5 * 2 ** max(deliveries - 1, 0)) * random.uniform(0.8, 1.2)


class QueueMessage(Message):
    """A message held by one worker until it is acked or nacked.

    ``_state`` (its partition's share state) and ``_queue`` (the worker holding
    it) are set by the queue modules that hand messages out (``_queue_take``,
    ``_pending``), as plain slot stores: no call per message on the receive path.
    """

    __slots__ = ("delivery_count", "first_delivery_ms", "_state", "_queue")

    # Read records always have these (``Message`` allows None for records to append).
    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: Mapping[str, bytes]
    #: How many times it was handed out, this time included (1 = first).
    delivery_count: int
    #: When it was first handed out (ms since the epoch).
    first_delivery_ms: int
    _state: ShareState
    _queue: QueueConsumer

    def ack(self) -> None:
        """Done: the message is never delivered to the group again."""
        queue = self._queue
        acting = queue._acting
        acting.append(None)  # see QueueConsumer._begin_acting
        try:
            queue.check_open()
            if not self._state.ack_fast(queue.member_id, self.offset, queue.now_ms(),
                                        queue.safe_margin_ms):
                queue._finish(self, ACKED)
        finally:
            acting.pop()

    def nack(self, delay_s: float | None = None, reason: str | None = None) -> None:
        """Not done: deliver it again after ``delay_s`` (default: the back-off)."""
        self._queue._nack(self, delay_s, reason)

    def extend(self, seconds: float) -> None:
        """Still working: hold the message ``seconds`` longer from now."""
        self._queue._extend(self, seconds)


class QueueConsumer:
    """A worker of a queue group; see ``Log.queue``. Thread-safe."""

    def __init__(self, log: Engine, group: str, topics: Iterable[str] | str, *,
                 ack_timeout_s: float = 30.0, max_deliveries: int = 5,
                 dead_letter_topic: str | None = None, backoff: Backoff | None = None) -> None:
        validate_name("group", group)
        if not isinstance(ack_timeout_s, (int, float)) or isinstance(ack_timeout_s, bool) or not (
            0 < ack_timeout_s <= SECONDS_MAX
        ):
            raise ConfigError(f"ack_timeout_s must be > 0, not {ack_timeout_s!r}")
        if not isinstance(max_deliveries, int) or isinstance(max_deliveries, bool) or not (
            1 <= max_deliveries < 255
        ):
            raise ConfigError(f"max_deliveries must be an int from 1 to 254, "
                              f"not {max_deliveries!r}")
        if dead_letter_topic is not None:
            validate_name("topic", dead_letter_topic)
        if backoff is not None and not callable(backoff):
            raise ConfigError("backoff must be callable(deliveries) -> seconds")
        topics = [topics] if isinstance(topics, str) else sorted(set(topics))
        if not topics:
            raise ConfigError("a queue needs at least one topic")
        #: The storage engine the queue's topics are in.
        self.engine = log
        self.group = group
        self.topics = topics
        self.ack_timeout_ms = int(ack_timeout_s * 1000)
        #: An ack this long before its lock deadline needs no lock (see ack_fast).
        self.safe_margin_ms = min(1000, self.ack_timeout_ms // 4)
        #: The log's clock (ms since the epoch).
        self.now_ms = log.clock
        self.max_deliveries = max_deliveries
        self.dead_letter_topic = dead_letter_topic
        self.backoff = backoff or default_backoff
        for topic in self.topics:
            log.partition_count(topic)  # UnknownTopicError now, not at receive
        refuse_other_kind(log, group, "queue")
        self._states: dict[TopicPartition, ShareState] = {}
        #: Held while taking messages and while closing (threads may share a worker).
        self._lock = threading.RLock()
        #: One item per ack, nack, extend or claim running now (see _begin_acting).
        self._acting: list[None] = []
        self._closed = False
        self._last_dead_check = 0.0
        #: The group's directory (see ``_queue_files``).
        self.directory = queue_directory(log, group)
        self.member_id, self._member_fd = self._register()
        self._taker = Taker(self, QueueMessage)

    # -- membership -----------------------------------------------------------------------

    def _register(self) -> tuple[int, int]:
        members = os.path.join(self.directory, "members")
        os.makedirs(members, exist_ok=True)
        while True:
            member = random.getrandbits(32) or 1
            try:
                fd = os.open(member_path(self.directory, member),
                             os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
            return member, fd

    def _alive(self, member: int) -> bool:
        if member in (self.member_id, DETACHED):  # receipts are freed by their deadline
            return True
        path = member_path(self.directory, member)
        if lock_is_held(path):
            return True
        try:
            os.unlink(path)  # a dead worker's file: clean it up
        except FileNotFoundError:
            pass
        return False

    def _free_dead_workers(self) -> None:
        now = time.monotonic()
        if now - self._last_dead_check < DEAD_CHECK_S:
            return
        self._last_dead_check = now
        with self._lock:  # close() unmaps the states: it waits, as for a take
            for state in self._states.values():
                self._release_dead(state)

    def _release_dead(self, state: ShareState) -> None:
        state.release_owners({owner for owner in state.owners() if not self._alive(owner)})

    def next_due_ms(self) -> int | None:
        """When (ms since the epoch) the next record of this worker's partitions
        comes due without an append -- a delayed or nacked one, or one whose lock
        runs out -- or None: how long a waiting receive may sleep at most."""
        return self._next_due()

    def _next_due(self) -> int | None:
        now = self.engine.now_ms()
        with self._lock:  # close() unmaps the states: not while one is read
            times = [t for t in (s.next_due(now) for s in self._states.values())
                     if t is not None]
        return min(times) if times else None

    def share_state(self, tp: TopicPartition) -> ShareState:
        """The share state of ``tp``, opened on first use and kept until ``close``
        (for the queue modules that take, claim and dead-letter for this worker)."""
        state = self._states.get(tp)
        if state is not None:
            return state
        with self._lock:
            return self._open_state(tp)

    def _open_state(self, tp: TopicPartition) -> ShareState:
        state = self._states.get(tp)
        if state is None:
            path = share_state_path(self.directory, tp)
            partition = self.engine.partition(tp.topic, tp.partition)
            start = partition.state().log_start_offset
            state = self._states[tp] = ShareState(path, WINDOW_RECORDS, start,
                                                  state_is_durable(partition))
            self._release_dead(state)  # a newcomer frees what dead workers held at once
        return state

    def lanes(self) -> list[list[TopicPartition]]:
        """The partitions this worker serves, grouped by priority lane, highest
        first (re-read at most once a second)."""
        return self._taker.lanes()

    # -- receiving --------------------------------------------------------------------------

    def receive(self, max_messages: int = 100, timeout: float | None = 0.0
                ) -> list[QueueMessage]:
        """Up to ``max_messages`` messages held for this worker: at once if any are
        ready, else after waiting up to ``timeout`` seconds (None: until some are)."""
        if not isinstance(max_messages, int) or isinstance(max_messages, bool) or (
            max_messages < 1
        ):
            raise ConfigError(f"max_messages must be an int >= 1, not {max_messages!r}")
        check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.check_open()
            self._free_dead_workers()
            seen = self.engine.append_counter()
            with self._lock:  # close() waits for a take in progress
                self.check_open()
                out = self._taker.take(max_messages)
            if out:
                return out
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return out
            # Delayed records and running-out locks come due without an append.
            wait = DEAD_CHECK_S if remaining is None else min(remaining, DEAD_CHECK_S)
            due = self._next_due()
            if due is not None:
                wait = min(wait, max(due - self.engine.now_ms(), 0) / 1000)
            self.engine.wait_for_append(seen, wait)

    # -- acknowledging ------------------------------------------------------------------------

    def _begin_acting(self) -> None:
        """Start an operation on share states outside the lock (an ack, nack,
        extend or claim; they may flush, and acks are the hot path): LogClosedError
        once closed; until :meth:`_end_acting`, close() waits for it rather than
        unmap the states under it. No lock: ``list.append`` and ``pop`` are atomic,
        and an operation is counted before it looks at ``_closed``, which close()
        sets before it looks at the count."""
        self._acting.append(None)
        if self._closed:
            self._acting.pop()
            self.check_open()

    def _end_acting(self) -> None:
        self._acting.pop()

    def ack_many(self, messages: Iterable[QueueMessage]) -> None:
        """Ack messages of this worker at once: one lock, and on a
        ``durability="always"`` topic one flush, per partition rather than per
        message. A message whose lock ran out and that another worker holds now
        is not acked: DeliveryLostError names those once the others are acked."""
        self.check_open()
        by_state: dict[int, tuple[ShareState, list[QueueMessage]]] = {}
        for message in messages:
            if getattr(message, "_queue", None) is not self:
                raise ConfigError(f"{message!r} was not received by this worker")
            by_state.setdefault(id(message._state), (message._state, []))[1].append(message)
        lost = []
        self._begin_acting()
        try:
            for state, held in by_state.values():
                gone = set(state.finish(self.member_id, [m.offset for m in held], ACKED))
                lost += [f"{m.topic}/{m.partition}@{m.offset}" for m in held
                         if m.offset in gone]
        finally:
            self._end_acting()
        if lost:
            raise DeliveryLostError(
                f"cannot ack {', '.join(lost)}: their locks ran out (ack_timeout_s="
                f"{self.ack_timeout_ms / 1000}) and another worker holds them now")

    def _finish(self, message: QueueMessage, outcome: int) -> None:
        lost = message._state.finish(self.member_id, [message.offset], outcome)
        self._raise_if_lost(message, lost, "ack")

    def _nack(self, message: QueueMessage, delay_s: float | None, reason: str | None) -> None:
        self.check_open()
        tp = TopicPartition(message.topic, message.partition)
        delay_ms = milliseconds("delay_s", self.backoff(message.delivery_count)
                                if delay_s is None else delay_s)
        self._begin_acting()
        try:
            if reason is not None:
                remember_reason(self, tp, message.offset, reason)
            lost = message._state.release(self.member_id, [message.offset],
                                           self.engine.now_ms() + delay_ms)
        finally:
            self._end_acting()
        self._raise_if_lost(message, lost, "nack")

    def _extend(self, message: QueueMessage, seconds: float) -> None:
        self.check_open()
        deadline_ms = self.engine.now_ms() + milliseconds("seconds", seconds)
        self._begin_acting()
        try:
            lost = message._state.extend(self.member_id, [message.offset], deadline_ms)
        finally:
            self._end_acting()
        self._raise_if_lost(message, lost, "extend")

    def _raise_if_lost(self, message: QueueMessage, lost: list[int], action: str) -> None:
        if lost:
            raise DeliveryLostError(
                f"cannot {action} {message.topic}/{message.partition}@{message.offset}: its "
                f"lock ran out (ack_timeout_s={self.ack_timeout_ms / 1000}) and another "
                f"worker holds it now"
            )

    def claim(self, min_idle_s: float, max_messages: int = 100, *, topic: str | None = None,
              partition: int | None = None, offsets: Iterable[int] | None = None
              ) -> list[QueueMessage]:
        """Take over pending messages idle at least ``min_idle_s`` seconds from the
        workers holding them (Redis' XAUTOCLAIM; see ``mqlog.consumer._pending``):
        each counts as a delivery and is held by this worker from now on."""
        from mqlog.consumer._pending import claim

        self._begin_acting()
        try:
            return claim(self, min_idle_s, max_messages, topic=topic, partition=partition,
                         offsets=offsets)
        finally:
            self._end_acting()

    def dead_letter_topic_for(self, topic: str) -> str:
        """Where this worker moves ``topic``'s records it gives up on: its
        ``dead_letter_topic``, else ``<topic>.dlq``."""
        return self.dead_letter_topic or topic + DLQ_SUFFIX

    # -- lifecycle ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[QueueMessage]:
        while not self._closed:
            try:
                yield from self.receive(timeout=None)
            except LogClosedError:
                return

    def check_open(self) -> None:
        """LogClosedError once the worker is closed."""
        if self._closed:
            raise LogClosedError("queue consumer is closed")

    def close(self) -> None:
        """Leave: messages still held become available to the others at once.
        Waits for the acks, nacks, extends and claims other threads are making
        (later ones raise LogClosedError)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        while self._acting:  # rare and short (an ack, or one flush); not under the
            time.sleep(CLOSE_POLL_S)  # lock, which a claim may need to open a state
        with self._lock:
            states, self._states = list(self._states.values()), {}
        for state in states:
            state.release_owners({self.member_id})
            state.close()
        try:
            os.unlink(member_path(self.directory, self.member_id))
        except FileNotFoundError:
            pass
        os.close(self._member_fd)

    def __enter__(self) -> QueueConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def milliseconds(name: str, seconds: object) -> int:
    """``seconds`` (an int or float from 0 to SECONDS_MAX) in whole ms; TypeError
    for another type, ConfigError out of range (NaN and infinities included)."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not (math.isfinite(seconds) and 0 <= seconds <= SECONDS_MAX):
        raise ConfigError(f"{name} must be from 0 to {SECONDS_MAX} seconds, not {seconds!r}")
    return int(seconds * 1000)
