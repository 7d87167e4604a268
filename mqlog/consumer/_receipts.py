"""Receiving queue messages with receipt handles, and acking by handle (as Amazon
SQS does): for scripts and other processes that hand messages on, where the
process that acks is not the one that received.

A receipt handle is a string, ``<topic>:<partition>:<offset>:<delivery>:<ms>``
(topic names cannot hold ``:``): the message and which hand-out of it (its
delivery number and the time it was handed out, in ms since the epoch). A
message received this way is held by no worker (owner DETACHED, see
``_share_state``): worker deaths do not free it, only its deadline does (the
visibility timeout), after which any worker may take it again. An ack by
handle succeeds only while that hand-out is the current one: once the lock ran
out and the message was handed out again, the handle is stale and the ack
raises DeliveryLostError, never a silent success. Acking the same handle twice
is allowed (the second does nothing) as long as its entry is still in the
share state's window.

A current handle may also release its message (``nack_receipt``: deliverable
again after a delay, with a reason kept for the dead-letter headers; the next
receive past ``max_deliveries`` dead-letters it, as after a worker's nack) or
change its visibility (``extend_receipt``: held that long from now; the handle
stays current). A stale handle raises DeliveryLostError for these too, and
changes nothing. After a release the handle is stale: the message is no
longer held by it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypedDict

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._dead_lettering import write_reason
from mqlog.consumer._group import queue_directory
from mqlog.consumer._queue import QueueConsumer, default_backoff, milliseconds
from mqlog.consumer._queue_files import WINDOW_RECORDS, share_state_path
from mqlog.consumer._share_state import (
    ACKED,
    ACQUIRED,
    AVAILABLE,
    DETACHED,
    ShareState,
)
from mqlog.errors import ConfigError, DeliveryLostError, UnknownGroupError
from mqlog.logstore import Engine, Message
from mqlog.names import validate_name

if TYPE_CHECKING:
    from typing_extensions import Unpack


@dataclasses.dataclass(frozen=True)
class Receipt:
    """Which hand-out of which message a receipt handle stands for."""

    topic: str
    partition: int
    offset: int
    #: The message's delivery number at this hand-out (1 = first).
    delivery_count: int
    #: When it was handed out (ms since the epoch).
    delivered_ms: int

    def __str__(self) -> str:
        return (f"{self.topic}:{self.partition}:{self.offset}:{self.delivery_count}:"
                f"{self.delivered_ms}")

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """The receipt of a handle made by ``str(receipt)``; ConfigError otherwise."""
        parts = text.split(":") if isinstance(text, str) else []
        try:
            if len(parts) != 5 or not all(p.isdigit() for p in parts[1:]):
                raise ValueError
            topic = validate_name("topic", parts[0], internal=True)
        except ValueError:  # InvalidTopicError is a ValueError
            raise ConfigError(f"{text!r} is not a receipt handle (topic:partition:offset:"
                              f"delivery:ms)") from None
        partition, offset, delivery, delivered = (int(p) for p in parts[1:])
        return cls(topic, partition, offset, delivery, delivered)


@dataclasses.dataclass(frozen=True)
class ReceivedMessage:
    """A message received with a receipt handle (see ``Log.receive_with_receipts``)."""

    #: The handle to ack it with (``Log.ack_receipts``).
    receipt: str
    #: The record (ack it by its receipt: no worker holds it).
    message: Message
    #: Its delivery number at this hand-out (1 = first).
    delivery_count: int


class QueueOptions(TypedDict, total=False):
    """The options of ``Log.queue`` a receive with receipts passes on."""

    max_deliveries: int
    dead_letter_topic: str | None
    backoff: Callable[[int], float] | None


def receive_with_receipts(log: Engine, group: str, topics: Iterable[str] | str, *,
                          max_messages: int = 1, visibility_s: float = 30.0,
                          timeout: float | None = 0.0, **queue_options: Unpack[QueueOptions]
                          ) -> list[ReceivedMessage]:
    """Up to ``max_messages`` messages of queue group ``group``, each held for
    ``visibility_s`` seconds by its receipt handle rather than by a worker (see the
    module): a receive of a worker that leaves at once. ``queue_options`` are
    those of ``Log.queue`` (``max_deliveries``, ``dead_letter_topic``, ...)."""
    log.check_writable(f"receive messages of queue group {group!r}")
    worker = QueueConsumer(log, group, topics, ack_timeout_s=visibility_s, **queue_options)
    try:
        messages = worker.receive(max_messages, timeout)
        by_state: dict[int, tuple[ShareState, list]] = {}
        for message in messages:
            by_state.setdefault(id(message._state), (message._state, []))[1].append(message)
        out = []
        for state, held in by_state.values():
            with state.locked():
                for message in held:
                    slot = message.offset % state.capacity
                    if (state.entries["state"][slot] != ACQUIRED
                            or state.entries["owner"][slot] != worker.member_id):
                        continue  # its lock already ran out and another worker took it
                    state.entries["owner"][slot] = DETACHED
                    delivered = int(state.entries["last_ms"][slot])
                    receipt = Receipt(message.topic, message.partition, message.offset,
                                      message.delivery_count, delivered)
                    out.append(ReceivedMessage(str(receipt), message, message.delivery_count))
        return out
    finally:
        worker.close()  # holds nothing now: every message is detached


def ack_receipts(log: Engine, group: str, receipts: Iterable[str]) -> None:
    """Ack the messages of receipt handles (see the module). Every handle is
    parsed first (ConfigError, nothing acked, for one that is not a handle); the
    current hand-outs are acked, then DeliveryLostError names the stale ones."""
    parsed = [Receipt.parse(text) for text in receipts]
    directory = _group_directory(log, group)
    by_partition: dict[TopicPartition, list[Receipt]] = {}
    for receipt in parsed:
        by_partition.setdefault(TopicPartition(receipt.topic, receipt.partition),
                                []).append(receipt)
    stale = []
    for tp, held in by_partition.items():
        path = share_state_path(directory, tp)
        if not os.path.exists(path):
            stale += held
            continue
        state = _open_state(log, path, tp.topic)
        try:
            stale += _ack(state, held)
        finally:
            state.close()
    if stale:
        raise DeliveryLostError(
            f"cannot ack {', '.join(str(r) for r in stale)}: stale receipt handles (the "
            f"lock ran out and the message was handed out again, or it is long finished)")


def _ack(state: ShareState, receipts: list[Receipt]) -> list[Receipt]:
    """Mark the current hand-outs ACKED; returns the stale receipts. The group's
    position moves past them at its next change (as after a lock-free ack)."""
    stale = []
    with state.locked():
        end = state.bounds()[1]
        for receipt in receipts:
            slot = receipt.offset % state.capacity
            entry = state.entries[slot].copy()  # not a view: the map closes later
            current = _is_this_hand_out(state, end, receipt)
            if current and entry["state"] == ACQUIRED and entry["owner"] == DETACHED:
                state.entries["state"][slot] = ACKED
            elif not (current and entry["state"] == ACKED):
                stale.append(receipt)
    return stale


def nack_receipt(log: Engine, group: str, receipt: str, *, delay_s: float | None = None,
                 reason: str | None = None) -> None:
    """Release the message of a current receipt handle (see the module): any worker
    may take it again after ``delay_s`` seconds (None: the queues' default
    back-off for its delivery count), and ``reason`` is kept as its last nack
    reason. ConfigError / TypeError for a bad handle or delay, DeliveryLostError
    for a stale handle; either way nothing changes."""
    parsed = Receipt.parse(receipt)
    delay_ms = milliseconds("delay_s", default_backoff(parsed.delivery_count)
                            if delay_s is None else delay_s)
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"reason must be a str, not {type(reason).__name__}")
    directory = _group_directory(log, group)
    tp = TopicPartition(parsed.topic, parsed.partition)

    def release(state: ShareState, slot: int) -> None:
        if reason is not None:
            write_reason(directory, tp, state, parsed.offset, reason)
        state.entries["state"][slot] = AVAILABLE
        state.entries["time"][slot] = log.now_ms() + delay_ms

    _change_current(log, directory, parsed, "release", release)


def extend_receipt(log: Engine, group: str, receipt: str, visibility_s: float) -> None:
    """Hold the message of a current receipt handle ``visibility_s`` seconds from
    now (0: any worker may take it at once); the handle stays current.
    ConfigError / TypeError for a bad handle or time, DeliveryLostError for a
    stale handle; either way nothing changes."""
    parsed = Receipt.parse(receipt)
    visibility_ms = milliseconds("visibility_s", visibility_s)

    def extend(state: ShareState, slot: int) -> None:
        state.entries["time"][slot] = log.now_ms() + visibility_ms

    _change_current(log, _group_directory(log, group), parsed, "extend", extend)


def _change_current(log: Engine, directory: str, receipt: Receipt, action: str,
                    change: Callable[[ShareState, int], None]) -> None:
    """Run ``change(state, slot)`` under the share state's lock if ``receipt`` is
    the current hand-out of a message held by its handle; else DeliveryLostError."""
    path = share_state_path(directory, TopicPartition(receipt.topic, receipt.partition))
    if os.path.exists(path):
        state = _open_state(log, path, receipt.topic)
        try:
            with state.locked():
                slot = receipt.offset % state.capacity
                if (_is_this_hand_out(state, state.bounds()[1], receipt)
                        and state.entries["state"][slot] == ACQUIRED
                        and state.entries["owner"][slot] == DETACHED):
                    change(state, slot)
                    return
        finally:
            state.close()
    raise DeliveryLostError(
        f"cannot {action} {receipt}: stale receipt handle (the lock ran out and the message "
        f"was handed out again, or it was acked or released)")


def _is_this_hand_out(state: ShareState, end: int, receipt: Receipt) -> bool:
    """Whether the entry of ``receipt``'s offset is still of that hand-out (lock held)."""
    slot = receipt.offset % state.capacity
    return (end - state.capacity <= receipt.offset < end
            and int(state.entries["deliveries"][slot]) == receipt.delivery_count
            and int(state.entries["last_ms"][slot]) == receipt.delivered_ms)


def _group_directory(log: Engine, group: str) -> str:
    """The queue group's directory; UnknownGroupError if it has none."""
    directory = queue_directory(log, group)
    if not os.path.isdir(directory):
        raise UnknownGroupError(f"unknown queue group {group!r}")
    return directory


def _open_state(log: Engine, path: str, topic: str) -> ShareState:
    """An existing share state, as durable as ``topic``'s records."""
    return ShareState(path, WINDOW_RECORDS, 0, log.topic_config(topic).durability == "always")
