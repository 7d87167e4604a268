"""A queue group's pending messages and claiming them (Redis Streams' XPENDING,
XCLAIM and XAUTOCLAIM).

A pending message is one handed out and not finished: its share-state entry is
ACQUIRED (see ``_share_state``). It has an owner (the member id of the worker
that holds it, or 0 for a message handed out with a receipt handle), a delivery
count and an idle time: how long ago it was last handed out.

Reading pending messages takes no lock and changes nothing (the view may be a
moment old). Claiming takes messages idle for at least a given time from
whoever holds them, under each partition's share-state lock: the claiming
worker becomes the owner, the claim counts as a delivery (so a message that
keeps being claimed is dead-lettered after ``max_deliveries`` like any other),
and its lock deadline starts again. A former owner that acks, nacks or extends
the message afterwards gets DeliveryLostError, as after a lock ran out.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._dead_lettering import dead_letter
from mqlog.consumer._group import queue_directory
from mqlog.consumer._queue import QueueMessage, milliseconds
from mqlog.consumer._queue_take import read_offsets
from mqlog.consumer._share_state import ACQUIRED, ARCHIVED, DELIVERIES_MAX, ShareState
from mqlog.errors import ConfigError, UnknownGroupError, UnknownPartitionError, UnknownTopicError
from mqlog.logstore import Engine

if TYPE_CHECKING:
    from mqlog.consumer._queue import QueueConsumer


@dataclasses.dataclass(frozen=True)
class PendingMessage:
    """One message handed out and not finished."""

    topic: str
    partition: int
    offset: int
    #: The worker holding it (``QueueConsumer.member_id``); 0: a receipt handle's.
    member_id: int
    #: Milliseconds since it was last handed out (delivered or claimed).
    idle_ms: int
    #: How many times it was handed out, this time included.
    delivery_count: int
    #: When its lock runs out (ms since the epoch); then any worker may take it.
    deadline_ms: int

    #: Whether the lock had run out when this view was taken: the next receive of
    #: any worker takes the message, unless its owner finishes it first.
    lock_expired: bool


@dataclasses.dataclass(frozen=True)
class PendingPartition:
    """The pending messages of one partition, in short."""

    topic: str
    partition: int
    count: int
    first_offset: int
    last_offset: int


@dataclasses.dataclass(frozen=True)
class PendingSummary:
    """A queue group's pending messages in short (XPENDING without a range)."""

    group: str
    count: int
    #: Partitions with pending messages, in (topic, partition) order.
    partitions: tuple[PendingPartition, ...]
    #: Pending messages per owner (member id; 0 for receipt handles).
    members: dict[int, int]
    #: Idle time of the message idle longest; None when nothing is pending.
    oldest_idle_ms: int | None


def pending(log: Engine, group: str, *, topic: str | None = None, partition: int | None = None,
            member_id: int | None = None, min_idle_s: float = 0.0,
            limit: int | None = None) -> list[PendingMessage]:
    """The pending messages of ``group`` in (topic, partition, offset) order, those
    of ``topic``, ``partition``, ``member_id`` and idle at least ``min_idle_s``
    seconds; at most ``limit``. Reads only; UnknownGroupError for no such queue
    group."""
    min_idle_ms = _check_filters(partition, member_id, min_idle_s, limit)
    out: list[PendingMessage] = []
    for tp, entries, now in _windows(log, group):
        if (topic is not None and tp.topic != topic) or (
            partition is not None and tp.partition != partition
        ):
            continue
        offsets, window = entries
        idle = now - window["last_ms"]
        keep = idle >= min_idle_ms
        if member_id is not None:
            keep &= window["owner"] == member_id
        for index in np.flatnonzero(keep):
            if limit is not None and len(out) >= limit:
                return out
            entry = window[index]
            out.append(PendingMessage(
                tp.topic, tp.partition, int(offsets[index]), int(entry["owner"]),
                int(idle[index]), int(entry["deliveries"]), int(entry["time"]),
                int(entry["time"]) < now))
    return out


def pending_summary(log: Engine, group: str) -> PendingSummary:
    """How many messages of ``group`` are pending: in all, per partition (with the
    lowest and highest offset) and per owner. Reads only."""
    partitions: list[PendingPartition] = []
    members: dict[int, int] = {}
    oldest: int | None = None
    for tp, (offsets, window), now in _windows(log, group):
        if not len(offsets):
            continue
        partitions.append(PendingPartition(tp.topic, tp.partition, len(offsets),
                                           int(offsets[0]), int(offsets[-1])))
        for owner, count in zip(*np.unique(window["owner"], return_counts=True)):
            members[int(owner)] = members.get(int(owner), 0) + int(count)
        idle = int(now - window["last_ms"].min())
        oldest = idle if oldest is None else max(oldest, idle)
    return PendingSummary(group, sum(p.count for p in partitions), tuple(partitions),
                          members, oldest)


def _windows(log: Engine, group: str) -> Iterator[tuple[TopicPartition, tuple[np.ndarray,
                                                                            np.ndarray], int]]:
    """Per partition of the group's share states (of topics that still exist): the
    offsets and entries of its ACQUIRED records, and the time they were read at."""
    root = queue_directory(log, group)
    if not os.path.isdir(root):
        raise UnknownGroupError(f"unknown queue group {group!r}")
    for topic in sorted(os.listdir(root)):
        directory = os.path.join(root, topic)
        if topic == "members" or not os.path.isdir(directory):
            continue
        for name in sorted((n for n in os.listdir(directory) if n.isdigit()), key=int):
            try:
                log.end_offset(topic, int(name))
            except (UnknownTopicError, UnknownPartitionError):
                continue  # deleted since
            state = ShareState(os.path.join(directory, name), 0, 0, read_only=True)
            try:
                now = log.now_ms()
                start, end = state.position(), state.bounds()[1]
                offsets = np.arange(start, end, dtype=np.int64)
                window = state.entries[offsets % state.capacity].copy()
            finally:
                state.close()
            held = window["state"] == ACQUIRED
            yield TopicPartition(topic, int(name)), (offsets[held], window[held]), now


def claim(worker: QueueConsumer, min_idle_s: float, max_messages: int = 100, *,
          topic: str | None = None, partition: int | None = None,
          offsets: Iterable[int] | None = None) -> list[QueueMessage]:
    """Take up to ``max_messages`` pending messages idle at least ``min_idle_s``
    seconds from whoever holds them (see the module): of the worker's topics, or
    only ``topic`` / ``partition`` / the given ``offsets``. Messages claimed past
    ``max_deliveries`` go to the dead-letter topic instead of being returned."""
    if max_messages is None:
        raise ConfigError("max_messages must be an int >= 1, not None")
    min_idle_ms = _check_filters(partition, None, min_idle_s, max_messages)
    wanted = None if offsets is None else _offsets(offsets)
    worker.check_open()
    out: list[QueueMessage] = []
    for lane in worker.lanes():
        for tp in lane:
            if len(out) >= max_messages:
                return out
            if (topic is not None and tp.topic != topic) or (
                partition is not None and tp.partition != partition
            ):
                continue
            out += _claim_from(worker, tp, min_idle_ms, max_messages - len(out), wanted)
    return out


def _claim_from(worker: QueueConsumer, tp: TopicPartition, min_idle_ms: int, limit: int,
                wanted: set[int] | None) -> list[QueueMessage]:
    """Claim in one partition: the state change under its lock, then the read."""
    state = worker.share_state(tp)
    now = worker.now_ms()
    with state.locked():
        start, end = state.bounds()
        numbers = np.arange(start, end, dtype=np.int64)
        slots = numbers % state.capacity
        window = state.entries[slots]
        ready = ((window["state"] == ACQUIRED) & (window["owner"] != worker.member_id)
                 & (now - window["last_ms"] >= min_idle_ms))
        if wanted is not None:
            ready &= np.isin(numbers, list(wanted))
        chosen = np.flatnonzero(ready)[:limit]
        picked = slots[chosen]
        deliveries = np.minimum(state.entries["deliveries"][picked].astype(np.int64) + 1,
                                DELIVERIES_MAX)
        state.entries["deliveries"][picked] = deliveries
        state.entries["owner"][picked] = worker.member_id
        state.entries["time"][picked] = now + worker.ack_timeout_ms
        state.entries["last_ms"][picked] = now
        claimed = numbers[chosen].tolist()
        first = state.entries["first_ms"][picked].tolist()
    if not claimed:
        return []
    partition = worker.engine.partition(tp.topic, tp.partition)
    records, _damaged = read_offsets(partition, claimed, QueueMessage)
    by_offset = {record.offset: record for record in records}
    out, dead, missing = [], [], []
    for offset, count, first_ms in zip(claimed, deliveries.tolist(), first):
        record = by_offset.get(offset)
        if record is None:
            missing.append(offset)  # deleted by retention, or damaged: not deliverable
        elif count > worker.max_deliveries:
            dead.append((record, count, first_ms, now))
        else:
            record.delivery_count = count
            record.first_delivery_ms = first_ms
            record._state = state
            record._queue = worker
            out.append(record)
    if missing:
        state.finish(worker.member_id, missing, ARCHIVED)
    if dead:
        dead_letter(worker, tp, state, dead, now)
    return out


def _offsets(offsets: Iterable[int]) -> set[int]:
    wanted = set(offsets)
    if not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in wanted):
        raise ConfigError("offsets must be ints >= 0")
    return wanted


def _check_filters(partition: object, member_id: object, min_idle_s: object,
                   limit: object) -> int:
    """``min_idle_s`` in ms; ConfigError (TypeError for a wrong type of
    ``min_idle_s``), before anything is read or written, for a filter out of range."""
    for name, value in (("partition", partition), ("member_id", member_id)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise ConfigError(f"{name} must be an int >= 0, not {value!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 1):
        raise ConfigError(f"the limit must be an int >= 1, not {limit!r}")
    return milliseconds("min_idle_s", min_idle_s)
