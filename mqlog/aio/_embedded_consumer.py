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
from collections.abc import Callable, Iterable
from typing import TypeVar, cast

from mqlog.aio._wrapped_consumer import WrappedConsumer
from mqlog.consumer import Consumer, check_timeout
from mqlog.errors import IllegalStateError, LogClosedError
from mqlog.logstore import Engine, Message, RecordColumns, append_watch

#: Longest wait between two rounds of a consumer without a group (seconds).
IDLE_STEP_S = 1.0

_Piece = TypeVar("_Piece", Message, RecordColumns)


class EmbeddedConsumer(WrappedConsumer):
    """An :class:`~mqlog.aio.AsyncConsumer` of a log directory; made by
    ``AsyncLog.consumer``. A group member joins on first use (``async with``,
    the first ``poll``, or ``await subscribe``)."""

    #: Seeks read the log itself: microseconds, on the loop.
    _lookups_block = False

    def __init__(self, consumer: Consumer, engine: Engine,
                 topics: Iterable[str] | str | re.Pattern[str]) -> None:
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, re.Pattern):
            topics = sorted(set(topics))
            if topics and consumer.group is None:
                raise IllegalStateError("subscribe needs a group: consumer(group=...)")
            for name in topics:
                engine.partition_count(name)  # UnknownTopicError now, not at the join
        super().__init__(consumer, topics)
        self._engine = engine
        #: A group member's reads may go through committed offsets (an fdatasync
        #: behind a coordinator lock): in the executor.
        self._reads_block = consumer.group is not None
        config = consumer.config
        self._step_s = (IDLE_STEP_S if consumer.group is None
                        else config.group_check_interval_ms / 1000)

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

    def _closed_now(self) -> None:
        if not self._engine.closed:
            append_watch(self._engine).poke()  # waiting polls see the close now

    def _check_open(self) -> None:
        if self._engine.closed:
            raise LogClosedError("consumer is closed")
        super()._check_open()
