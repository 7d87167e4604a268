"""The asyncio queue worker of the embedded log, over a synchronous
``QueueConsumer``.

A receive is rounds of the synchronous ``QueueConsumer.receive(timeout=0)``
and, between rounds that found nothing, a wait on the loop's append watch for
an append by any process -- at most ``WAIT_STEP_S`` (dead workers' messages
are freed between rounds, as the synchronous receive does) and never past the
moment the next delayed, nacked or lock-expired record comes due
(``QueueConsumer.next_due_ms``). Waiting uses no thread.

Where the work runs: taking messages, acks, nacks and extensions change the
partition's share state under its lock, microseconds, on the loop's thread
-- unless one of the worker's topics has ``durability="always"``: then each of
them fdatasyncs the share state, and they run in the shared executor.

Invariant: a receive that is cancelled holds nothing. Cancelled while
waiting, it took nothing; cancelled while a take runs in the executor, the
messages taken are released as soon as the take ends (a nack with no delay:
they are ready for any worker at once, and the hand-out counts as a delivery).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from mqlog.aio._api import AsyncQueueConsumer, AsyncQueueMessage
from mqlog.aio._blocking import run_blocking, start_blocking
from mqlog.consumer import QueueConsumer, QueueMessage, check_timeout
from mqlog.errors import ConfigError, LogClosedError, MqlogError
from mqlog.logstore import append_watch

#: Longest wait between two rounds of a receive (seconds): as the synchronous one.
WAIT_STEP_S = 0.1
#: Shortest wait: a record due now that a round did not take is not spun on.
MIN_WAIT_S = 0.001

_T = TypeVar("_T")
_log = logging.getLogger("mqlog.aio")


class EmbeddedQueueConsumer(AsyncQueueConsumer):
    """An :class:`~mqlog.aio.AsyncQueueConsumer` of a log directory; made by
    ``AsyncLog.queue``."""

    def __init__(self, queue: QueueConsumer) -> None:
        #: The synchronous worker underneath (its ``group``, ``member_id``, ``topics``).
        self.queue = queue
        self._engine = queue.engine
        #: Whether its operations fdatasync (so run in the shared executor).
        self.blocking = any(self._engine.topic_config(topic).durability == "always"
                            for topic in queue.topics)
        self._closed = False

    async def receive(self, max_messages: int = 100, timeout: float | None = 0.0
                      ) -> list[AsyncQueueMessage]:
        """Up to ``max_messages`` messages held for this worker: at once if any are
        ready, else after waiting up to ``timeout`` seconds (None: until some
        are). Cancelling it leaves nothing held. See ``QueueConsumer.receive``."""
        if not isinstance(max_messages, int) or isinstance(max_messages, bool) or (
            max_messages < 1
        ):
            raise ConfigError(f"max_messages must be an int >= 1, not {max_messages!r}")
        check_timeout(timeout)
        self._check_open()
        loop = asyncio.get_running_loop()
        watch = append_watch(self._engine)
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            seen = watch.counter()
            taken = await self._take(max_messages)
            if taken:
                return [self._wrap(message) for message in taken]
            wait = WAIT_STEP_S
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                wait = min(wait, remaining)
            due = self.queue.next_due_ms()
            if due is not None:
                wait = min(wait, max((due - self._engine.now_ms()) / 1000, MIN_WAIT_S))
            await watch.changed(seen, wait)
            self._check_open()

    async def _take(self, max_messages: int) -> list[QueueMessage]:
        if not self.blocking:
            return self.queue.receive(max_messages, 0.0)
        future = start_blocking(self.queue.receive, max_messages, 0.0)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_release_taken)
            raise

    def _wrap(self, message: QueueMessage) -> AsyncQueueMessage:
        wrapped = AsyncQueueMessage(message.value, message.key, message.headers,
                                    message.timestamp, message.offset, message.topic,
                                    message.partition)
        wrapped.delivery_count = message.delivery_count
        wrapped.first_delivery_ms = message.first_delivery_ms
        wrapped._receiver = self
        wrapped._handle = message
        return wrapped

    # -- settling ---------------------------------------------------------------------------

    async def ack(self, message: AsyncQueueMessage) -> None:
        """Done: never delivered to the group again. DeliveryLostError if its lock
        ran out and another worker holds it now; LogClosedError once closed."""
        await self._settle(self._held(message).ack)

    async def ack_many(self, messages: Iterable[AsyncQueueMessage]) -> None:
        """Ack messages of this worker at once: one lock (and one flush) per
        partition. DeliveryLostError names those whose lock ran out."""
        held = [self._held(message) for message in messages]
        await self._settle(self.queue.ack_many, held)

    async def nack(self, message: AsyncQueueMessage, *, delay_s: float | None = None,
                   reason: str | None = None) -> None:
        """Not done: deliver it again after ``delay_s`` (default: the back-off),
        remembering ``reason`` for its dead letter."""
        await self._settle(self._held(message).nack, delay_s, reason)

    async def extend(self, message: AsyncQueueMessage, seconds: float) -> None:
        """Still working: hold it ``seconds`` longer from now."""
        await self._settle(self._held(message).extend, seconds)

    async def claim(self, min_idle_s: float, max_messages: int = 100, *,
                    topic: str | None = None, partition: int | None = None,
                    offsets: Iterable[int] | None = None) -> list[AsyncQueueMessage]:
        """Take over pending messages idle at least ``min_idle_s`` seconds from the
        workers holding them (see ``QueueConsumer.claim``); each counts as a
        delivery and is held by this worker from now on."""
        self._check_open()
        claimed = await self._settle(self.queue.claim, min_idle_s, max_messages, topic=topic,
                                     partition=partition, offsets=offsets)
        return [self._wrap(message) for message in claimed]

    def _held(self, message: AsyncQueueMessage) -> QueueMessage:
        if not isinstance(message, AsyncQueueMessage) or getattr(
                message, "_receiver", None) is not self:
            raise ConfigError(f"{message!r} was not received by this worker")
        handle: QueueMessage = message._handle
        return handle

    async def _settle(self, fn: Callable[..., _T], *args: object, **kwargs: object) -> _T:
        self._check_open()
        if self.blocking:
            return await run_blocking(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Leave (in the shared executor): messages still held become available to
        the other workers at once; receives waiting meanwhile raise LogClosedError
        (``async for`` ends). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await run_blocking(self.queue.close)
        finally:
            if not self._engine.closed:
                append_watch(self._engine).poke()

    def _check_open(self) -> None:
        if self._closed or self._engine.closed:
            raise LogClosedError("queue consumer is closed")


def _release_taken(done: asyncio.Future[list[QueueMessage]]) -> None:
    """After a cancelled take: make what it took ready again (in the executor)."""
    if done.cancelled() or done.exception() is not None:
        return
    taken = done.result()
    if taken:
        start_blocking(_nack_now, taken)


def _nack_now(messages: list[QueueMessage]) -> None:
    for message in messages:
        try:
            message.nack(delay_s=0)
        except MqlogError:  # its lock ran out, or the worker closed: not held any more
            _log.debug("releasing %r after a cancelled receive failed", message, exc_info=True)
