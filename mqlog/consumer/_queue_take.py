"""Taking records from a queue group's partitions for one worker (``receive``).

Owner: a ``Taker`` belongs to one ``QueueConsumer`` and owns which partitions
it serves, grouped by priority lane (re-read from the engine at most once per
``LANES_RECHECK_S``), and whose turn it is within a lane. It is used under the
worker's lock (``QueueConsumer.receive``); ``lanes`` is also read by
``claim``.

Invariants (rules 1, 3 and 5 of ``_queue``):
- Records are acquired in the share state first (which counts the delivery,
  durably), then read; what cannot be handed out after all is put back or
  finished before the take returns, so no acquired record is left held by a
  worker that will not return it: a record not due yet is released without
  counting the delivery, an expired one is dropped (or dead-lettered if its
  topic says so), one past ``max_deliveries`` is dead-lettered, one deleted
  by retention meanwhile or whose batch is damaged is archived.
- A higher priority lane is served before any lower one; within a lane the
  partitions take turns from one receive to the next.
- A redelivery that is a record's last attempt ends the receive: it is
  handed out alone.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._dead_lettering import dead_letter
from mqlog.consumer._queue_files import state_is_durable
from mqlog.consumer._share_state import ARCHIVED, ShareState
from mqlog.errors import CorruptRecordError, OffsetOutOfRangeError
from mqlog.headers import DELIVER_AT, EXPIRES_AT
from mqlog.lanes import PRIORITY_MAX, lane_topic
from mqlog.logstore import Partition

if TYPE_CHECKING:
    from mqlog.consumer._queue import QueueConsumer, QueueMessage

#: Takes from one partition in one receive when records had to be set aside.
TAKE_ATTEMPTS = 8
LANES_RECHECK_S = 1.0

#: A record set aside with its share-state entry: (record, deliveries, first
#: delivery ms, last delivery ms).
Held = tuple["QueueMessage", int, int, int]

_log = logging.getLogger("mqlog.queue")


class Taker:
    """Hands out one worker's records: lanes by priority, partitions in turn."""

    def __init__(self, worker: QueueConsumer, message_type: type[QueueMessage]) -> None:
        self._worker = worker
        self._message_type = message_type
        #: Per priority, highest first: the partitions of the topics' lanes.
        self._lanes: list[list[TopicPartition]] = []
        self._lanes_checked = 0.0
        #: Which partition of a lane comes first at the next take.
        self._next = 0

    def take(self, limit: int) -> list[QueueMessage]:
        """Messages from the highest priority lane that has any, then lower ones;
        within a lane, partitions take turns."""
        out: list[QueueMessage] = []
        for lane in self.lanes():
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

    def lanes(self) -> list[list[TopicPartition]]:
        """The partitions to serve, grouped by priority, highest first (re-read once
        a second, so lanes and partitions created meanwhile are picked up)."""
        now = time.monotonic()
        if now - self._lanes_checked < LANES_RECHECK_S:
            return self._lanes
        self._lanes_checked = now
        engine = self._worker.engine
        existing = set(engine.topics())
        lanes = []
        for priority in range(PRIORITY_MAX, -1, -1):
            lane = []
            for topic in self._worker.topics:
                name = lane_topic(topic, priority)
                if name in existing:
                    count = engine.partition_count(name)
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
        worker = self._worker
        partition = worker.engine.partition(tp.topic, tp.partition)
        published = partition.state()
        state = worker.share_state(tp)
        if state.bounds()[0] >= published.end_offset:
            return [], 0, False  # everything there is finished
        now = worker.engine.now_ms()
        state.durable = state_is_durable(partition)  # alter_topic may change it
        max_deliveries = worker.max_deliveries
        acquired = state.acquire(worker.member_id, now, worker.ack_timeout_ms, limit,
                                 published.log_start_offset, published.end_offset,
                                 max_deliveries, alone_ok)
        if not acquired.offsets:
            return [], 0, acquired.stopped
        read, damaged = read_offsets(partition, acquired.offsets, self._message_type)
        records = iter(read)
        ttl_ms = partition.config().message_ttl_ms
        out: list[QueueMessage] = []
        dead: list[Held] = []
        expired: list[Held] = []
        gone: list[int] = []
        corrupt: list[int] = []
        later: list[tuple[int, int]] = []
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
            if deliveries > max_deliveries:
                dead.append((record, deliveries, first, last))
            else:
                record.delivery_count = deliveries
                record.first_delivery_ms = first
                record._state = state
                record._queue = worker
                out.append(record)
            record = next(records, None)
        if dead:
            dead_letter(worker, tp, state, dead, now)
        if gone:
            state.finish(worker.member_id, gone, ARCHIVED)
        if corrupt:
            _log.warning("archiving %d records of %s/%d in queue group %r: damaged on disk "
                         "(offsets %s)", len(corrupt), tp.topic, tp.partition, worker.group,
                         ", ".join(f"{low}..{high - 1}" for low, high in damaged))
            state.finish(worker.member_id, corrupt, ARCHIVED)
            state.count("corrupt", len(corrupt))
        for offset, due in later:
            state.release(worker.member_id, [offset], due, undeliver=True)
        if expired:
            self._expire(tp, state, partition, expired, now)
        return (out, len(dead) + len(gone) + len(later) + len(expired) + len(corrupt),
                acquired.stopped)

    def _expire(self, tp: TopicPartition, state: ShareState, partition: Partition,
                items: list[Held], now: int) -> None:
        """Drop records whose time to live ran out: counted, and dead-lettered if the
        topic says so."""
        if partition.config().dead_letter_expired:
            dead_letter(self._worker, tp, state, items, now, reason="expired")
        else:
            state.finish(self._worker.member_id, [item[0].offset for item in items], ARCHIVED)
        state.count("expired", len(items))


def read_offsets(partition: Partition, offsets: list[int], message_type: type[QueueMessage]
                 ) -> tuple[list[QueueMessage], list[tuple[int, int]]]:
    """The records at ``offsets`` (ascending) as ``message_type``, read in runs of
    consecutive offsets, and the damaged ranges met ([low, high) each): records
    deleted meanwhile or damaged are missing from the result."""
    records: list[QueueMessage] = []
    damaged: list[tuple[int, int]] = []
    run_start = previous = offsets[0]
    for offset in [*offsets[1:], None]:
        if offset is not None and offset == previous + 1:
            previous = offset
            continue
        first = run_start
        while first <= previous:
            try:
                got: list[QueueMessage] = partition.read(
                    first, previous - first + 1, None, messages=message_type)
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


def _timing(record: QueueMessage, ttl_ms: int | None) -> tuple[int | None, int | None]:
    """(deliver at, expires at) of a record, in ms; None where it has none."""
    headers = record.headers
    due = headers.get(DELIVER_AT)
    expires = headers.get(EXPIRES_AT)
    expires_ms = int(expires) if expires is not None else None
    if ttl_ms is not None:
        by_topic = record.timestamp + ttl_ms
        expires_ms = by_topic if expires_ms is None else min(expires_ms, by_topic)
    return (int(due) if due is not None else None), expires_ms
