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
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypedDict

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._group import queue_directory
from mqlog.consumer._queue import QueueConsumer
from mqlog.consumer._queue_files import WINDOW_RECORDS, share_state_path
from mqlog.consumer._share_state import (
    ACKED,
    ACQUIRED,
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
    directory = queue_directory(log, group)
    if not os.path.isdir(directory):
        raise UnknownGroupError(f"unknown queue group {group!r}")
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
        durable = log.describe_topic(tp.topic).config.durability == "always"
        state = ShareState(path, WINDOW_RECORDS, 0, durable)
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
            current = (end - state.capacity <= receipt.offset < end
                       and int(entry["deliveries"]) == receipt.delivery_count
                       and int(entry["last_ms"]) == receipt.delivered_ms)
            if current and entry["state"] == ACQUIRED and entry["owner"] == DETACHED:
                state.entries["state"][slot] = ACKED
            elif not (current and entry["state"] == ACKED):
                stale.append(receipt)
    return stale
