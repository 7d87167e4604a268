"""The asyncio consumer of a Kafka cluster, over the synchronous ``ClusterConsumer``.

Positions, assignment, group membership and commits are the synchronous
consumer's (librdkafka's), so every rule of ``mqlog.open("kafka://...")``
holds unchanged; this class only decides where each call runs.

A poll is rounds: first ``ClusterConsumer.poll(0)`` on the loop's thread
(librdkafka's fetcher thread prefetches records, so under load a round finds
them at once without leaving the loop), then, if it found nothing, a wait of
at most ``WAIT_SLICE_S`` inside ``ClusterConsumer.poll`` in the shared executor
(``_blocking``), which returns as soon as librdkafka has a record. librdkafka
gives no file descriptor to wait on, so a consumer waits in a pool thread --
one wait in flight per consumer however many calls await it (``_lock``), and
the pool's threads are bounded (``_blocking.WORKERS``): waits of more
consumers than that take turns, ``WAIT_SLICE_S`` each. Rebalance callbacks
(``on_assigned``, ``on_revoked``) run inside whichever round serves them.

Calls that talk to the cluster -- joining (``subscribe``), ``commit``,
``committed``, ``position``, ``lag``, ``seek_to_*`` (watermark and time
lookups) and ``close`` -- run in the shared executor; ``seek``, ``pause``,
``resume``, ``paused`` and ``assignment`` are local and run on the loop's
thread, as does ``assign`` (not a coroutine in the API: it checks partition
counts against the log's cached metadata, and re-reads that on the loop's
thread when it is older than ``TOPIC_RECHECK_S``).

Invariants: the synchronous consumer is used by one call at a time (``_lock``,
see ``_exclusive``); a round whose poll was cancelled while it waited in the
executor gives its records back (the positions move back to the first of
them), so a cancelled poll loses nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TypeVar

from mqlog.aio._api import AsyncConsumer, Listener
from mqlog.aio._exclusive import exclusive
from mqlog.cluster._consumer import ClusterConsumer as SyncClusterConsumer
from mqlog.consumer import TopicPartition, check_timeout
from mqlog.errors import LogClosedError
from mqlog.logstore import Message, RecordColumns

#: Longest one wait for records holds a thread of the shared executor (seconds).
WAIT_SLICE_S = 0.1

_T = TypeVar("_T")
_Piece = TypeVar("_Piece", Message, RecordColumns)


class ClusterConsumer(AsyncConsumer):
    """An :class:`~mqlog.aio.AsyncConsumer` of a Kafka cluster; made by
    ``AsyncLog.consumer``. A group member joins on first use (``async with``,
    the first ``poll``, or ``await subscribe``); its topics are checked then."""

    def __init__(self, consumer: SyncClusterConsumer,
                 topics: Iterable[str] | str | re.Pattern[str]) -> None:
        #: The synchronous consumer underneath (its ``config``, ``group``).
        self.consumer = consumer
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, re.Pattern):
            topics = sorted(set(topics))
        self._subscription: list[str] | re.Pattern[str] | None = topics or None
        self._joining: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    # -- group membership ----------------------------------------------------------------

    async def subscribe(self, topics: Iterable[str] | str | re.Pattern[str],
                        on_assigned: Listener | None = None,
                        on_revoked: Listener | None = None) -> None:
        """Join the group and consume ``topics`` (in the shared executor: topic
        names are checked against the cluster's metadata); see
        ``Consumer.subscribe``. The partitions come with the next polls, whose
        rounds run the listeners."""
        self._check_open()
        await self._exclusive(True, self.consumer.subscribe, topics, on_assigned, on_revoked)
        self._subscription = None

    async def _join_if_needed(self) -> None:
        """Join with the topics given to ``AsyncLog.consumer``, once: concurrent
        calls share one join; after a failed one, the next call tries again."""
        if self._subscription is None:
            return
        joining = self._joining
        if joining is None or (joining.done() and (joining.cancelled()
                                                   or joining.exception() is not None)):
            joining = self._joining = asyncio.ensure_future(self.subscribe(self._subscription))
            # Its error goes to the calls awaiting it; if they were all cancelled,
            # the next call joins again, so nothing is left unreported.
            joining.add_done_callback(_retrieve)
        await asyncio.shield(joining)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (no group membership)."""
        self.consumer.assign(partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return self.consumer.assignment()

    # -- fetching ---------------------------------------------------------------------------

    async def poll(self, timeout: float | None = 0.0,
                   max_records: int | None = None) -> list[Message]:
        """Records at once if librdkafka has any, else after waiting up to
        ``timeout`` seconds (None: until some arrive); [] if none came.
        Cancelling it loses no record. See ``Consumer.poll``."""
        return await self._poll(self.consumer.poll, timeout, max_records)

    async def poll_columns(self, timeout: float | None = 0.0,
                           max_records: int | None = None) -> list[RecordColumns]:
        """As :meth:`poll`, each partition's records as one
        :class:`~mqlog.RecordColumns` (see ``Consumer.poll_columns``)."""
        return await self._poll(self.consumer.poll_columns, timeout, max_records)

    async def _poll(self, round_: Callable[[float, int | None], list[_Piece]],
                    timeout: float | None, max_records: int | None) -> list[_Piece]:
        """Rounds of ``round_(0)`` on the loop and ``round_(slice)`` in the executor."""
        self._check_open()
        check_timeout(timeout)
        await self._join_if_needed()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def quick() -> list[_Piece] | None:
            return round_(0.0, max_records) or None

        while True:
            wait = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S,
                                                             deadline - loop.time())
            if wait <= 0:  # the last round: no waiting, on the loop
                return await self._exclusive(False, round_, 0.0, max_records)
            pieces = await self._exclusive(True, round_, wait, max_records,
                                           undo=self._give_back, quick=quick)
            if pieces:
                return pieces
            self._check_open()

    def _give_back(self, pieces: list[Message] | list[RecordColumns]) -> None:
        """Move positions back to the first of the records a cancelled poll read."""
        first: dict[TopicPartition, int] = {}
        for piece in pieces:
            offset = piece.offset if isinstance(piece, Message) else int(piece.offsets[0])
            first.setdefault(TopicPartition(piece.topic, piece.partition), offset)
        for tp, offset in first.items():
            if tp in self.consumer.assignment():
                self.consumer.seek(tp, offset)

    async def __aiter__(self) -> AsyncIterator[Message]:
        """Records forever, or until ``consumer_timeout_ms`` passes without one, or
        the consumer is closed."""
        timeout_ms = self.consumer.config.consumer_timeout_ms
        quiet_s = None if timeout_ms is None else timeout_ms / 1000
        while not self._closed:
            try:
                records = await self.poll(timeout=quiet_s)
            except LogClosedError:
                return
            if not records and quiet_s is not None:
                return
            for record in records:
                yield record

    # -- positions and commits ---------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None,
                     metadata: str = "") -> dict[TopicPartition, int]:
        """Commit ``offsets``, or the positions of everything returned so far, in
        the shared executor (the group's coordinator answers). Errors as
        ``Consumer.commit``."""
        self._check_open()
        return await self._exclusive(True, self.consumer.commit, offsets, metadata)

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or None (in the shared executor)."""
        return await self._exclusive(True, self.consumer.committed, tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned from ``tp``."""
        self.consumer.seek(tp, offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Next records: the first still in the log (all partitions if none named);
        the watermarks are looked up in the shared executor."""
        await self._exclusive(True, self.consumer.seek_to_beginning, *partitions)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Next records: those appended from now on (all partitions if none named)."""
        await self._exclusive(True, self.consumer.seek_to_end, *partitions)

    async def seek_to_time(self, ts_ms: int, *partitions: TopicPartition) -> None:
        """Next records: the first with a timestamp >= ``ts_ms`` (all partitions
        if none named)."""
        await self._exclusive(True, self.consumer.seek_to_time, ts_ms, *partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        """Fetch nothing from these partitions (all if none named) until resumed."""
        self.consumer.pause(*partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch from these paused partitions again (all if none named)."""
        self.consumer.resume(*partitions)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return self.consumer.paused()

    async def lag(self) -> dict[TopicPartition, int]:
        """Records between each partition's position and its end offset (in the
        shared executor: end offsets come from the cluster)."""
        return await self._exclusive(True, self.consumer.lag)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return from ``tp`` (in the
        shared executor: before the first fetch it may be the committed offset)."""
        return await self._exclusive(True, self.consumer.position, tp)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> ClusterConsumer:
        """Join the group now (for a member made with topics)."""
        await self._join_if_needed()
        return self

    async def close(self) -> None:
        """Commit (with auto-commit) and leave the group, in the shared executor,
        after the wait in flight (at most ``WAIT_SLICE_S``); polls waiting
        meanwhile raise LogClosedError (``async for`` ends). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._exclusive(True, self.consumer.close)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("consumer is closed")

    async def _exclusive(self, blocking: bool, fn: Callable[..., _T], *args: object,
                         undo: Callable[[_T], None] | None = None,
                         quick: Callable[[], _T | None] | None = None) -> _T:
        """``fn(*args)`` with the synchronous consumer to itself (see ``exclusive``)."""
        return await exclusive(self._lock, blocking, fn, *args, undo=undo, quick=quick)


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark a finished join's error as seen (its awaiters get it themselves)."""
    if not task.cancelled():
        task.exception()
