"""The asyncio consumer of the embedded log, over a synchronous ``Consumer``.

A poll is rounds of the synchronous ``Consumer.poll(0)`` -- heartbeat, sync a
new plan, fetch, auto-commit, never waiting -- and, between rounds that found
nothing, a wait on the loop's append watch (``mqlog.logstore.append_watch``)
for an append by any process, at most ``group_check_interval_ms`` for a group
member (so it heartbeats and follows rebalances while it waits, as the
synchronous poll does) or 1 s otherwise. Waiting uses no thread.

Where a round runs: a round that only reads the log (microseconds) runs on
the loop's thread: every round of a consumer without a group, and a group
member's round when ``Consumer.round_is_quick`` says so. A group member's
other rounds -- a look at the group (every ``group_check_interval_ms``), which
may take the group's coordinator lock, a plan to sync, partitions to take, a
committed offset to read, an auto-commit due (an fdatasync) -- run in the
shared executor (``_blocking``), as do joins, commits and ``close``.

Invariants: the synchronous consumer is used by one call at a time
(``_lock``, held from the start of a call to its end in the executor, even if
whoever awaited it was cancelled); a round whose poll was cancelled gives its
records back (the positions move back to the first of them), so a cancelled
poll loses nothing. Group liveness is the synchronous consumer's: the member
holds its member file's flock while the process lives, heartbeats on every
poll round, and is removed after ``max_poll_interval_ms`` without a poll.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TypeVar, cast

from mqlog.aio._api import AsyncConsumer, Listener
from mqlog.aio._exclusive import exclusive
from mqlog.consumer import Consumer, TopicPartition, check_timeout
from mqlog.errors import IllegalStateError, LogClosedError
from mqlog.logstore import Engine, Message, RecordColumns, append_watch

#: Longest wait between two rounds of a consumer without a group (seconds).
IDLE_STEP_S = 1.0

_T = TypeVar("_T")
_Piece = TypeVar("_Piece", Message, RecordColumns)


class EmbeddedConsumer(AsyncConsumer):
    """An :class:`~mqlog.aio.AsyncConsumer` of a log directory; made by
    ``AsyncLog.consumer``. A group member joins on first use (``async with``,
    the first ``poll``, or ``await subscribe``)."""

    def __init__(self, consumer: Consumer, engine: Engine,
                 topics: Iterable[str] | str | re.Pattern[str]) -> None:
        #: The synchronous consumer underneath (its ``config``, ``group``).
        self.consumer = consumer
        self._engine = engine
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, re.Pattern):
            topics = sorted(set(topics))
            if topics and consumer.group is None:
                raise IllegalStateError("subscribe needs a group: consumer(group=...)")
            for name in topics:
                engine.partition_count(name)  # UnknownTopicError now, not at the join
        self._subscription: list[str] | re.Pattern[str] | None = topics or None
        self._joining: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        config = consumer.config
        self._step_s = (IDLE_STEP_S if consumer.group is None
                        else config.group_check_interval_ms / 1000)

    # -- group membership ----------------------------------------------------------------

    async def subscribe(self, topics: Iterable[str] | str | re.Pattern[str],
                        on_assigned: Listener | None = None,
                        on_revoked: Listener | None = None) -> None:
        """Join the group (in the shared executor) and consume ``topics``; the
        listeners run in the executor's thread (see ``Consumer.subscribe``)."""
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
            # Its error goes to the polls awaiting it; if they were all cancelled,
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
        """Records at once if any are there, else after waiting up to ``timeout``
        seconds (None: until some arrive) for an append by any process; [] if
        none came. Cancelling it loses no record. See ``Consumer.poll``."""
        return await self._poll(self.consumer.poll, False, timeout, max_records)

    async def poll_columns(self, timeout: float | None = 0.0,
                           max_records: int | None = None) -> list[RecordColumns]:
        """As :meth:`poll`, each partition's records as one
        :class:`~mqlog.RecordColumns` (see ``Consumer.poll_columns``)."""
        return await self._poll(self.consumer.poll_columns, True, timeout, max_records)

    async def _poll(self, round_: Callable[[float, int | None], list[_Piece]], columns: bool,
                    timeout: float | None, max_records: int | None) -> list[_Piece]:
        """Rounds of ``round_(0, max_records)`` (``Consumer.poll_quick`` with
        ``columns`` when it is quick) and waits for appends between them."""
        self._check_open()
        check_timeout(timeout)
        await self._join_if_needed()
        loop = asyncio.get_running_loop()
        watch = append_watch(self._engine)
        deadline = None if timeout is None else loop.time() + timeout
        in_group = self.consumer.group is not None

        def quick() -> list[_Piece] | None:
            return cast("list[_Piece] | None",
                        self.consumer.poll_quick(max_records, columns=columns))

        while True:
            seen = watch.counter()
            pieces = await self._exclusive(in_group, round_, 0.0, max_records,
                                           undo=self._give_back, quick=quick)
            if pieces:
                return pieces
            wait = self._step_s
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                wait = min(wait, remaining)
            await watch.changed(seen, wait)
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
        the shared executor (a commit is an append and an fdatasync). Errors as
        ``Consumer.commit`` (CommitFailedError for partitions not owned)."""
        self._check_open()
        return await self._exclusive(True, self.consumer.commit, offsets, metadata)

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or None (read in the shared
        executor: the first read of a log goes through its committed offsets)."""
        return await self._exclusive(self.consumer.group is not None, self.consumer.committed,
                                     tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned from ``tp`` (between polls, as
        with the synchronous consumer)."""
        self.consumer.seek(tp, offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Next records: the first still in the log (all partitions if none named)."""
        await self._exclusive(False, self.consumer.seek_to_beginning, *partitions)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Next records: those appended from now on (all partitions if none named)."""
        await self._exclusive(False, self.consumer.seek_to_end, *partitions)

    async def seek_to_time(self, ts_ms: int, *partitions: TopicPartition) -> None:
        """Next records: the first with a timestamp >= ``ts_ms`` (all partitions
        if none named)."""
        await self._exclusive(False, self.consumer.seek_to_time, ts_ms, *partitions)

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
        """Records between each partition's position and its end offset (a group
        member's in the shared executor: positions may come from commits)."""
        return await self._exclusive(self.consumer.group is not None, self.consumer.lag)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return from ``tp`` (a group
        member's in the shared executor: it may read the committed offset)."""
        return await self._exclusive(self.consumer.group is not None, self.consumer.position,
                                     tp)

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit (with auto-commit) and leave the group, in the shared executor;
        polls waiting meanwhile raise LogClosedError (``async for`` ends).
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._exclusive(True, self.consumer.close)
        finally:
            if not self._engine.closed:
                append_watch(self._engine).poke()  # waiting polls see the close now

    def _check_open(self) -> None:
        if self._closed or self._engine.closed:
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
