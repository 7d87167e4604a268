"""What every ``mqlog.aio`` backend provides: the asyncio verbs of mqlog.

These abstract classes are the public types of ``mqlog.aio``; a backend (the
embedded log, ``_embedded_*``; a Kafka cluster, ``_cluster_*``) subclasses them. The
verbs, their arguments and their errors are those of the synchronous API
(``mqlog.Log``, ``Producer``, ``Consumer``, ``QueueConsumer``); only waiting
differs: whatever the synchronous call would block on is awaited.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from mqlog.consumer import TopicPartition
from mqlog.errors import LogClosedError
from mqlog.logstore import Message, RecordColumns, TopicDescription
from mqlog.producer import RecordMetadata

Listener = Callable[[set[TopicPartition]], None]


class AsyncProducer(abc.ABC):
    """Sends records; ``await send`` returns once the record is written under its
    topic's durability, with where it was written."""

    @abc.abstractmethod
    def send(self, topic: str, value: bytes | str, *, key: bytes | str | None = None,
             headers: Mapping[str, bytes] | None = None, partition: int | None = None,
             timestamp: int | None = None, delay_s: float | None = None,
             deliver_at: int | None = None, ttl_s: float | None = None,
             priority: int = 0) -> Awaitable[RecordMetadata]:
        """Send one record; await the result for where it was written, once it is
        (see ``Producer.send``). Bad input raises at the call, before anything is
        queued; the order of sends is the order of the calls."""

    @abc.abstractmethod
    def send_many(self, topic: str, values: Sequence[bytes | str],
                  keys: Sequence[bytes | str | None] | None = None
                  ) -> Awaitable[dict[int, range]]:
        """Send many records; await the result for ``{partition: offsets}`` once
        all are written (see ``Producer.send_many``)."""

    @abc.abstractmethod
    async def flush(self, timeout: float | None = None) -> int:
        """Write everything queued; how many records are still unwritten after
        ``timeout`` seconds (0: all written)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush, then stop; further sends raise LogClosedError. Idempotent."""

    async def __aenter__(self) -> AsyncProducer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncConsumer(abc.ABC):
    """Reads records, as a member of a consumer group or from assigned
    partitions: ``async for message in consumer``, or ``await poll()``."""

    @abc.abstractmethod
    async def subscribe(self, topics: Iterable[str] | str | re.Pattern[str],
                        on_assigned: Listener | None = None,
                        on_revoked: Listener | None = None) -> None:
        """Join the group and consume ``topics`` (see ``Consumer.subscribe``)."""

    @abc.abstractmethod
    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership)."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""

    @abc.abstractmethod
    async def poll(self, timeout: float | None = 0.0,
                   max_records: int | None = None) -> list[Message]:
        """Records at once if any are there, else after waiting up to ``timeout``
        seconds (None: until some arrive); [] if none came (see ``Consumer.poll``)."""

    @abc.abstractmethod
    async def poll_columns(self, timeout: float | None = 0.0,
                           max_records: int | None = None) -> list[RecordColumns]:
        """As :meth:`poll`, each partition's records as one ``RecordColumns``."""

    @abc.abstractmethod
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None,
                     metadata: str = "") -> dict[TopicPartition, int]:
        """Commit ``offsets``, or the positions of everything returned so far
        (see ``Consumer.commit``)."""

    @abc.abstractmethod
    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or None."""

    @abc.abstractmethod
    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned from ``tp``."""

    @abc.abstractmethod
    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Next records: the first still in the log (all partitions if none named)."""

    @abc.abstractmethod
    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Next records: those appended from now on (all partitions if none named)."""

    @abc.abstractmethod
    async def seek_to_time(self, ts_ms: int, *partitions: TopicPartition) -> None:
        """Next records: the first with a timestamp >= ``ts_ms``."""

    @abc.abstractmethod
    def pause(self, *partitions: TopicPartition) -> None:
        """Fetch nothing from these partitions (all if none named) until resumed."""

    @abc.abstractmethod
    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch from these paused partitions again (all if none named)."""

    @abc.abstractmethod
    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""

    @abc.abstractmethod
    async def lag(self) -> dict[TopicPartition, int]:
        """Records between each partition's position and its end offset."""

    @abc.abstractmethod
    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return from ``tp``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit (with auto-commit) and leave the group; idempotent."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Message]:
        """Records forever, or until ``consumer_timeout_ms`` passes without one, or
        the consumer is closed."""

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncQueueMessage(Message):
    """A record held by one queue worker until ``await ack()`` or ``await nack()``:
    a :class:`~mqlog.Message` with its delivery count."""

    __slots__ = ("delivery_count", "first_delivery_ms", "_receiver", "_handle")

    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: Mapping[str, bytes]
    #: How many times it was handed out, this time included (1 = first).
    delivery_count: int
    #: When it was first handed out (ms since the epoch).
    first_delivery_ms: int
    _receiver: AsyncQueueConsumer
    #: What the backend that handed it out needs to settle it.
    _handle: Any

    async def ack(self) -> None:
        """Done: the message is never delivered to the group again."""
        await self._receiver.ack(self)

    async def nack(self, delay_s: float | None = None, reason: str | None = None) -> None:
        """Not done: deliver it again after ``delay_s`` (default: the back-off)."""
        await self._receiver.nack(self, delay_s=delay_s, reason=reason)

    async def extend(self, seconds: float) -> None:
        """Still working: hold the message ``seconds`` longer from now."""
        await self._receiver.extend(self, seconds)


class AsyncQueueConsumer(abc.ABC):
    """A worker of a queue group: ``await receive()`` or ``async for``, then
    ``await message.ack()`` (see ``QueueConsumer``)."""

    @abc.abstractmethod
    async def receive(self, max_messages: int = 100, timeout: float | None = 0.0
                      ) -> list[AsyncQueueMessage]:
        """Up to ``max_messages`` messages held for this worker: at once if any
        are ready, else after waiting up to ``timeout`` seconds (None: until
        some are)."""

    @abc.abstractmethod
    async def ack(self, message: AsyncQueueMessage) -> None:
        """``await message.ack()``: DeliveryLostError if its lock ran out and
        another worker holds it now."""

    @abc.abstractmethod
    async def ack_many(self, messages: Iterable[AsyncQueueMessage]) -> None:
        """Ack several messages of this worker at once (see ``QueueConsumer.ack_many``)."""

    @abc.abstractmethod
    async def nack(self, message: AsyncQueueMessage, *, delay_s: float | None = None,
                   reason: str | None = None) -> None:
        """``await message.nack(...)``: deliver it again after ``delay_s``."""

    @abc.abstractmethod
    async def extend(self, message: AsyncQueueMessage, seconds: float) -> None:
        """``await message.extend(seconds)``: hold it ``seconds`` longer from now."""

    @abc.abstractmethod
    async def claim(self, min_idle_s: float, max_messages: int = 100, *,
                    topic: str | None = None, partition: int | None = None,
                    offsets: Iterable[int] | None = None) -> list[AsyncQueueMessage]:
        """Take over pending messages idle at least ``min_idle_s`` seconds from
        the workers holding them (Redis' XAUTOCLAIM; see ``QueueConsumer.claim``)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Leave: messages still held become available to the others at once."""

    async def __aiter__(self) -> AsyncIterator[AsyncQueueMessage]:
        """Messages forever, until the worker is closed."""
        while True:
            try:
                messages = await self.receive(timeout=None)
            except LogClosedError:
                return
            for message in messages:
                yield message

    async def __aenter__(self) -> AsyncQueueConsumer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncLog(abc.ABC):
    """A log opened for asyncio: makes producers, consumers and queue workers,
    and closes them with itself (``async with mqlog.aio.open(...) as log``)."""

    @abc.abstractmethod
    def producer(self, **config: Any) -> AsyncProducer:
        """A new producer (settings: ``ProducerConfig``)."""

    @abc.abstractmethod
    def consumer(self, group: str | None = None,
                 topics: Iterable[str] | str | re.Pattern[str] = (),
                 **config: Any) -> AsyncConsumer:
        """A new consumer; with ``group`` and ``topics`` a member of that group,
        joining on first use (settings: ``ConsumerConfig``)."""

    @abc.abstractmethod
    def queue(self, group: str, topics: Iterable[str] | str, *, ack_timeout_s: float = 30.0,
              max_deliveries: int = 5, dead_letter_topic: str | None = None,
              backoff: Callable[[int], float] | None = None) -> AsyncQueueConsumer:
        """A worker of queue group ``group`` over ``topics`` (see ``Log.queue``)."""

    @abc.abstractmethod
    async def create_topic(self, name: str, partitions: int = 1, *, exist_ok: bool = False,
                           **topic_config: Any) -> TopicDescription:
        """Create a topic (see ``Log.create_topic``)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the clients made by this log (flushing producers, leaving
        groups), then the log; idempotent."""

    async def __aenter__(self) -> AsyncLog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
