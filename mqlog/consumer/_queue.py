"""Queue semantics on the log: competing workers, per-message ack/nack, lock
deadlines, durable delivery counts and dead letters (``Log.queue``).

Owner: a QueueConsumer owns its member id (an ``flock`` on
``<log>/queues/<group>/members/<id>``: a killed worker is known dead at once)
and the messages it holds. The shared truth is each partition's ShareState
(see ``_share_state``): a message is held by one worker at a time, until it
is acked, nacked, its lock deadline passes, or its worker dies.

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
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from mqlog.consumer._config import TopicPartition, check_timeout
from mqlog.consumer._group import lock_is_held, queue_directory, refuse_other_kind
from mqlog.consumer._share_state import ACKED, ARCHIVED, DETACHED, ShareState
from mqlog.errors import (
    ConfigError,
    CorruptRecordError,
    DeliveryLostError,
    LogClosedError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from mqlog.headers import (
    DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_FIRST_DELIVERY_MS,
    DEAD_LETTER_LAST_DELIVERY_MS,
    DEAD_LETTER_OFFSET,
    DEAD_LETTER_PARTITION,
    DEAD_LETTER_REASON,
    DEAD_LETTER_TOPIC,
    DELIVER_AT,
    EXPIRES_AT,
)
from mqlog.lanes import PRIORITY_MAX, lane_topic
from mqlog.logstore import Engine, Message, Record, atomic_write
from mqlog.names import validate_name

#: Takes from one partition in one receive when records had to be set aside.
TAKE_ATTEMPTS = 8
LANES_RECHECK_S = 1.0
#: Records one worker may hold per partition at once (the share window).
WINDOW_RECORDS = 65_536
#: How often a worker looks for dead workers whose records it can free.
DEAD_CHECK_S = 0.1
DLQ_SUFFIX = ".dlq"
#: Longest lock, nack delay or extension: times are whole ms in 64-bit fields, and
#: ms counts up to 2**53 are exact in a float (about 285,000 years).
SECONDS_MAX = 2**53 // 1000

Backoff = Callable[[int], float]
_log = logging.getLogger("mqlog.queue")


def member_path(directory: str, member: int) -> str:
    """The file a worker holds an ``flock`` on while it lives (JSON: pid, host)."""
    return os.path.join(directory, "members", f"{member}.json")


def share_state_path(directory: str, tp: TopicPartition) -> str:
    """The share-state file of one partition of the queue group at ``directory``."""
    return os.path.join(directory, tp.topic, str(tp.partition))


def reasons_path(directory: str, tp: TopicPartition) -> str:
    """The last nack reasons of one partition's unfinished records (JSON)."""
    return share_state_path(directory, tp) + ".reasons"


def state_is_durable(partition) -> bool:
    """Whether a queue's share state of ``partition`` is flushed on every change:
    when the topic's records are (durability "always")."""
    return partition.config().durability == "always"


def _timing(record: Message, ttl_ms: int | None) -> tuple[int | None, int | None]:
    """(deliver at, expires at) of a record, in ms; None where it has none."""
    headers = record.headers
    due = headers.get(DELIVER_AT)
    expires = headers.get(EXPIRES_AT)
    expires_ms = int(expires) if expires is not None else None
    if ttl_ms is not None:
        by_topic = record.timestamp + ttl_ms
        expires_ms = by_topic if expires_ms is None else min(expires_ms, by_topic)
    return (int(due) if due is not None else None), expires_ms


def default_backoff(deliveries: int) -> float:
    """Seconds before a nacked record comes back: 0.5 s doubling per delivery, at
    most 60 s, with +-20% jitter so that retries of many records spread out."""
    return min(60.0, 0.5 * 2 ** max(deliveries - 1, 0)) * random.uniform(0.8, 1.2)


class QueueMessage(Message):
    """A message held by one worker until it is acked or nacked."""

    __slots__ = ("delivery_count", "first_delivery_ms", "_state", "_queue")

    def ack(self) -> None:
        """Done: the message is never delivered to the group again."""
        queue = self._queue
        queue._check_open()
        if not self._state.ack_fast(queue.member_id, self.offset, queue.now_ms(),
                                    queue.safe_margin_ms):
            queue._finish(self, ACKED)

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
        self._log = log
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
        #: Per priority, highest first: the partitions of the topics' lanes.
        self._lanes: list[list[TopicPartition]] = []
        self._lanes_checked = 0.0
        self._next = 0
        self._states: dict[TopicPartition, ShareState] = {}
        #: Held while taking messages and while closing (threads may share a worker).
        self._lock = threading.RLock()
        self._closed = False
        self._last_dead_check = 0.0
        self.directory = queue_directory(log, group)
        self.member_id, self._member_fd = self._register()

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
        with self._lock:
            states = list(self._states.values())
        for state in states:
            self._release_dead(state)

    def _release_dead(self, state: ShareState) -> None:
        state.release_owners({owner for owner in state.owners() if not self._alive(owner)})

    def _next_due(self) -> int | None:
        now = self._log.now_ms()
        times = [t for t in (s.next_due(now) for s in self._states.values()) if t is not None]
        return min(times) if times else None

    def _state(self, tp: TopicPartition) -> ShareState:
        state = self._states.get(tp)
        if state is not None:
            return state
        with self._lock:
            return self._open_state(tp)

    def _open_state(self, tp: TopicPartition) -> ShareState:
        state = self._states.get(tp)
        if state is None:
            path = share_state_path(self.directory, tp)
            partition = self._log.partition(tp.topic, tp.partition)
            start = partition.state().log_start_offset
            state = self._states[tp] = ShareState(path, WINDOW_RECORDS, start,
                                                  state_is_durable(partition))
            self._release_dead(state)  # a newcomer frees what dead workers held at once
        return state

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
            self._check_open()
            self._free_dead_workers()
            seen = self._log.append_counter()
            with self._lock:  # close() waits for a take in progress
                self._check_open()
                out = self._take(max_messages)
            if out:
                return out
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return out
            # Delayed records and running-out locks come due without an append.
            wait = DEAD_CHECK_S if remaining is None else min(remaining, DEAD_CHECK_S)
            due = self._next_due()
            if due is not None:
                wait = min(wait, max(due - self._log.now_ms(), 0) / 1000)
            self._log.wait_for_append(seen, wait)

    def _take(self, limit: int) -> list[QueueMessage]:
        """Messages from the highest priority lane that has any, then lower ones;
        within a lane, partitions take turns."""
        out: list[QueueMessage] = []
        for lane in self._current_lanes():
            count = len(lane)
            for step in range(count):
                if len(out) >= limit:
                    break
                tp = lane[(self._next + step) % count]
                for _attempt in range(TAKE_ATTEMPTS):
                    taken, removed, stopped = self._take_from(tp, limit - len(out), not out)
                    out += taken
                    if stopped and (out or not removed):
                        self._next += 1
                        return out  # a last attempt is handed out alone
                    if not removed or len(out) >= limit:
                        break  # records that were dead-lettered or dropped made room
            if len(out) >= limit:
                break
        self._next += 1
        return out

    def _current_lanes(self) -> list[list[TopicPartition]]:
        """The partitions to serve, grouped by priority (re-read once a second, so
        lanes and partitions created meanwhile are picked up)."""
        now = time.monotonic()
        if now - self._lanes_checked < LANES_RECHECK_S:
            return self._lanes
        self._lanes_checked = now
        existing = set(self._log.topics())
        lanes = []
        for priority in range(PRIORITY_MAX, -1, -1):
            lane = []
            for topic in self.topics:
                name = lane_topic(topic, priority)
                if name in existing:
                    count = self._log.partition_count(name)
                    lane += [TopicPartition(name, p) for p in range(count)]
            if lane:
                lanes.append(lane)
        self._lanes = lanes
        return lanes

    def _take_from(self, tp: TopicPartition, limit: int, alone_ok: bool
                   ) -> tuple[list[QueueMessage], int, bool]:
        """(messages handed out, records acquired but not handed out: dead-lettered,
        expired, not due yet or deleted, whether a last attempt ends the receive).
        ``alone_ok``: nothing was taken yet, so a last attempt may be taken."""
        partition = self._log.partition(tp.topic, tp.partition)
        published = partition.state()
        state = self._state(tp)
        if state.bounds()[0] >= published.end_offset:
            return [], 0, False  # everything there is finished
        now = self._log.now_ms()
        state.durable = state_is_durable(partition)  # alter_topic may change it
        acquired = state.acquire(self.member_id, now, self.ack_timeout_ms, limit,
                                 published.log_start_offset, published.end_offset,
                                 self.max_deliveries, alone_ok)
        if not acquired.offsets:
            return [], 0, acquired.stopped
        read, damaged = self._read(partition, acquired.offsets)
        records = iter(read)
        ttl_ms = partition.config().message_ttl_ms
        out, dead, gone, later, expired, corrupt = [], [], [], [], [], []
        record = next(records, None)
        for offset, deliveries, first, last in zip(acquired.offsets, acquired.deliveries,
                                                   acquired.first_ms, acquired.last_ms):
            while record is not None and record.offset < offset:
                record = next(records, None)  # read past an offset not acquired
            if record is None or record.offset != offset:
                if any(low <= offset < high for low, high in damaged):
                    corrupt.append(offset)  # cannot be read: rule 5
                else:
                    gone.append(offset)  # deleted by retention before anyone finished it
                continue
            if record.headers or ttl_ms is not None:
                due, expires = _timing(record, ttl_ms)
                if expires is not None and expires <= now:
                    expired.append((record, deliveries, first, last))
                    record = next(records, None)
                    continue
                if due is not None and due > now:
                    later.append((offset, due))  # held back: not a delivery
                    record = next(records, None)
                    continue
            if deliveries > self.max_deliveries:
                dead.append((record, deliveries, first, last))
            else:
                record.delivery_count = deliveries
                record.first_delivery_ms = first
                record._state = state
                record._queue = self
                out.append(record)
            record = next(records, None)
        if dead:
            self._dead_letter(tp, state, dead, now)
        if gone:
            state.finish(self.member_id, gone, ARCHIVED)
        if corrupt:
            _log.warning("archiving %d records of %s/%d in queue group %r: damaged on disk "
                         "(offsets %s)", len(corrupt), tp.topic, tp.partition, self.group,
                         ", ".join(f"{low}..{high - 1}" for low, high in damaged))
            state.finish(self.member_id, corrupt, ARCHIVED)
            state.count("corrupt", len(corrupt))
        for offset, due in later:
            state.release(self.member_id, [offset], due, undeliver=True)
        if expired:
            self._expire(tp, state, partition, expired, now)
        return (out, len(dead) + len(gone) + len(later) + len(expired) + len(corrupt),
                acquired.stopped)

    def _expire(self, tp: TopicPartition, state: ShareState, partition,
                items: list[tuple[QueueMessage, int, int, int]], now: int) -> None:
        """Drop records whose time to live ran out: counted, and dead-lettered if the
        topic says so."""
        if partition.config().dead_letter_expired:
            self._dead_letter(tp, state, items, now, reason="expired")
        else:
            state.finish(self.member_id, [item[0].offset for item in items], ARCHIVED)
        state.count("expired", len(items))

    @staticmethod
    def _read(partition, offsets: list[int]
              ) -> tuple[list[QueueMessage], list[tuple[int, int]]]:
        """The records at ``offsets`` (ascending), read in runs of consecutive
        offsets, and the damaged ranges met ([low, high) each): records deleted
        meanwhile or damaged are missing from the result."""
        records: list[QueueMessage] = []
        damaged: list[tuple[int, int]] = []
        run_start = previous = offsets[0]
        for offset in offsets[1:] + [None]:
            if offset is not None and offset == previous + 1:
                previous = offset
                continue
            first = run_start
            while first <= previous:
                try:
                    got = partition.read(first, previous - first + 1, None,
                                         messages=QueueMessage)
                except OffsetOutOfRangeError as error:  # retention moved the start
                    if error.start_offset <= first:
                        break
                    first = error.start_offset  # read what is still there
                    continue
                except CorruptRecordError as error:
                    if error.next_offset is None or error.next_offset <= first:
                        raise
                    damaged.append((first, error.next_offset))
                    first = error.next_offset  # the records after the damage
                    continue
                if not got:
                    break
                records += got
                first = got[-1].offset + 1  # short only when damage follows
            if offset is not None:
                run_start = previous = offset
        return records, damaged

    # -- acknowledging ------------------------------------------------------------------------

    def ack_many(self, messages: Iterable[QueueMessage]) -> None:
        """Ack messages of this worker at once: one lock, and on a
        ``durability="always"`` topic one flush, per partition rather than per
        message. A message whose lock ran out and that another worker holds now
        is not acked: DeliveryLostError names those once the others are acked."""
        self._check_open()
        by_state: dict[int, tuple[ShareState, list[QueueMessage]]] = {}
        for message in messages:
            if getattr(message, "_queue", None) is not self:
                raise ConfigError(f"{message!r} was not received by this worker")
            by_state.setdefault(id(message._state), (message._state, []))[1].append(message)
        lost = []
        for state, held in by_state.values():
            gone = set(state.finish(self.member_id, [m.offset for m in held], ACKED))
            lost += [f"{m.topic}/{m.partition}@{m.offset}" for m in held if m.offset in gone]
        if lost:
            raise DeliveryLostError(
                f"cannot ack {', '.join(lost)}: their locks ran out (ack_timeout_s="
                f"{self.ack_timeout_ms / 1000}) and another worker holds them now")

    def _finish(self, message: QueueMessage, outcome: int) -> None:
        lost = message._state.finish(self.member_id, [message.offset], outcome)
        self._raise_if_lost(message, lost, "ack")

    def _nack(self, message: QueueMessage, delay_s: float | None, reason: str | None) -> None:
        self._check_open()
        tp = TopicPartition(message.topic, message.partition)
        delay_ms = _milliseconds("delay_s", self.backoff(message.delivery_count)
                                 if delay_s is None else delay_s)
        if reason is not None:
            self._remember_reason(tp, message.offset, reason)
        lost = message._state.release(self.member_id, [message.offset],
                                       self._log.now_ms() + delay_ms)
        self._raise_if_lost(message, lost, "nack")

    def _extend(self, message: QueueMessage, seconds: float) -> None:
        self._check_open()
        lost = message._state.extend(
            self.member_id, [message.offset], self._log.now_ms() + _milliseconds("seconds",
                                                                                 seconds))
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

        return claim(self, min_idle_s, max_messages, topic=topic, partition=partition,
                     offsets=offsets)

    # -- dead letters ---------------------------------------------------------------------------

    def _remember_reason(self, tp: TopicPartition, offset: int, reason: str) -> None:
        state = self._state(tp)
        with state.locked():
            start = state.bounds()[0]
            reasons = {k: v for k, v in self._load_reasons(tp).items() if k >= start}
            reasons[offset] = str(reason)
            path = reasons_path(self.directory, tp)
            document = json.dumps({str(k): v for k, v in reasons.items()}).encode()
            atomic_write(path, document, durable=state.durable)  # as durable as the state

    def _load_reasons(self, tp: TopicPartition) -> dict[int, str]:
        try:
            with open(reasons_path(self.directory, tp)) as handle:
                return {int(k): v for k, v in json.load(handle).items()}
        except (FileNotFoundError, ValueError):
            return {}

    def dead_letter_topic_for(self, topic: str) -> str:
        return self.dead_letter_topic or topic + DLQ_SUFFIX

    def _dead_letter(self, tp: TopicPartition, state: ShareState,
                     items: list[tuple[QueueMessage, int, int, int]], now: int,
                     reason: str | None = None) -> None:
        target = self.dead_letter_topic_for(tp.topic)
        config = self._log.topic_config(tp.topic)
        try:  # as durable as the topic the records come from
            self._log.create_topic(target, self._log.partition_count(tp.topic),
                                   durability=config.durability, flush_ms=config.flush_ms)
        except TopicExistsError:
            pass
        reasons = self._load_reasons(tp)
        records = []
        for record, deliveries, first, last in items:
            headers = dict(record.headers)
            headers.update({
                DEAD_LETTER_TOPIC: tp.topic.encode(),
                DEAD_LETTER_PARTITION: str(tp.partition).encode(),
                DEAD_LETTER_OFFSET: str(record.offset).encode(),
                DEAD_LETTER_DELIVERY_COUNT: str(deliveries - 1).encode(),
                DEAD_LETTER_REASON: (reason or reasons.get(record.offset, "")).encode(),
                DEAD_LETTER_FIRST_DELIVERY_MS: str(first).encode(),
                DEAD_LETTER_LAST_DELIVERY_MS: str(last).encode(),
            })
            records.append(Record(record.value, record.key, headers, record.timestamp))
        partitions = self._log.partition_count(target)
        self._log.append(target, tp.partition % partitions, records)
        state.finish(self.member_id, [item[0].offset for item in items], ARCHIVED)
        if reason is None:
            state.count("dead_lettered", len(items))

    # -- lifecycle ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[QueueMessage]:
        while not self._closed:
            try:
                yield from self.receive(timeout=None)
            except LogClosedError:
                return

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("queue consumer is closed")

    def close(self) -> None:
        """Leave: messages still held become available to the others at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
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

    def __exit__(self, *exc_info) -> None:
        self.close()


def _milliseconds(name: str, seconds: object) -> int:
    """``seconds`` (an int or float from 0 to SECONDS_MAX) in whole ms; TypeError
    for another type, ConfigError out of range (NaN and infinities included)."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if not (math.isfinite(seconds) and 0 <= seconds <= SECONDS_MAX):
        raise ConfigError(f"{name} must be from 0 to {SECONDS_MAX} seconds, not {seconds!r}")
    return int(seconds * 1000)


def dead_letter_origin(record: Record) -> tuple[str, int] | None:
    """(topic, partition) a dead letter came from, from its ``dlq.topic`` and
    ``dlq.partition`` headers; None for a record without them (not a dead letter)."""
    headers = record.headers
    try:
        topic = validate_name("topic", bytes(headers[DEAD_LETTER_TOPIC]).decode(),
                              internal=True)
        partition = int(bytes(headers[DEAD_LETTER_PARTITION]))
    except (KeyError, ValueError, UnicodeDecodeError):  # InvalidTopicError is a ValueError
        return None
    return topic, partition


def check_dead_letter_topic(log: Engine, topic: str) -> bool:
    """Raise ConfigError if ``topic`` holds records that are not dead letters (the
    first record of each partition is looked at); UnknownTopicError if there is
    no such topic. Returns whether the topic holds any record. Reads only."""
    description = log.describe_topic(topic)
    found = False
    for partition in description.partitions:
        if partition.end_offset <= partition.start_offset:
            continue
        records = log.read(topic, partition.partition, partition.start_offset, max_records=1)
        if not records:
            continue
        first = records[0]
        if dead_letter_origin(first) is None:
            raise ConfigError(
                f"topic {topic!r} is not a dead-letter topic: its record {partition.partition}"
                f"@{first.offset} has no dlq.topic and dlq.partition headers")
        found = True
    return found


def describe_queue(log: Engine, group: str) -> list[dict]:
    """Per partition of a queue group: its position (first unfinished offset), the
    log's end offset, and how many records are ready, in flight, delayed, expired,
    dead-lettered and archived as damaged (``corrupt``), read without taking any
    lock. Partitions of deleted topics are left out."""
    root = queue_directory(log, group)
    if not os.path.isdir(root):
        raise UnknownGroupError(f"unknown queue group {group!r}")
    now = log.now_ms()
    rows = []
    for topic in sorted(os.listdir(root)):
        if topic == "members" or not os.path.isdir(os.path.join(root, topic)):
            continue
        for name in sorted(os.listdir(os.path.join(root, topic)), key=_numeric_first):
            if not name.isdigit():
                continue
            partition = int(name)
            try:
                end = log.end_offset(topic, partition)
            except (UnknownTopicError, UnknownPartitionError):
                continue  # deleted since
            state = ShareState(os.path.join(root, topic, name), WINDOW_RECORDS, 0,
                               read_only=log.read_only)
            try:
                counts = state.counts(now)
                counters = state.counters()
            finally:
                state.close()
            rows.append({
                "topic": topic, "partition": partition, "position": counts["position"],
                "end_offset": end,
                "lag": max(end - counts["position"], 0) - counts["finished"],
                "ready": counts["ready"] + max(end - counts["window_end"], 0),
                "in_flight": counts["in_flight"], "delayed": counts["delayed"],
                "expired": counters["expired"], "dead_lettered": counters["dead_lettered"],
                "corrupt": counters["corrupt"],
            })
    return rows


def _numeric_first(name: str) -> tuple[int, str]:
    """Sort key putting partition numbers in numeric order (2 before 10)."""
    return (int(name), "") if name.isdigit() else (-1, name)
