"""What the asyncio consumers of both backends share: one synchronous consumer
underneath, used by one call at a time, and where each of its calls runs.

:class:`WrappedConsumer` holds a synchronous consumer (``mqlog.Consumer`` or
``mqlog.cluster.ClusterConsumer``) and runs each call on the loop's thread or
in the shared executor (``_blocking``), one at a time (``_lock``, see
``_exclusive``). A backend says how a poll waits (``_poll``) and which calls
may block: ``_lookups_block`` (``seek_to_*``: watermark and time lookups) and
``_reads_block`` (``committed``, ``lag``, ``position``: committed offsets).
Invariants: a group member made with topics joins on first use (``async
with``, the first ``poll``, or ``await subscribe``), concurrent calls sharing
one join; a round whose poll was cancelled gives its records back (the
positions move back to the first of them), so a cancelled poll loses nothing.
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar

from mqlog.aio._api import AsyncConsumer, Listener
from mqlog.aio._exclusive import exclusive
from mqlog.consumer import TopicPartition
from mqlog.errors import LogClosedError
from mqlog.logstore import Message, RecordColumns

_T = TypeVar("_T")
_Piece = TypeVar("_Piece", Message, RecordColumns)


class WrappedConsumer(AsyncConsumer):
    """An :class:`~mqlog.aio.AsyncConsumer` over a synchronous consumer (see the module)."""

    #: Whether ``seek_to_*`` run in the shared executor.
    _lookups_block: bool
    #: Whether ``committed``, ``lag`` and ``position`` run in the shared executor.
    _reads_block: bool

    def __init__(self, consumer: Any, topics: Iterable[str] | str | re.Pattern[str]) -> None:
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
        """Join the group (in the shared executor) and consume ``topics``; see
        ``Consumer.subscribe``."""
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
        seconds (None: until some arrive); [] if none came. Cancelling it loses
        no record. See ``Consumer.poll``."""
        return await self._poll(self.consumer.poll, False, timeout, max_records)

    async def poll_columns(self, timeout: float | None = 0.0,
                           max_records: int | None = None) -> list[RecordColumns]:
        """As :meth:`poll`, each partition's records as one
        :class:`~mqlog.RecordColumns` (see ``Consumer.poll_columns``)."""
        return await self._poll(self.consumer.poll_columns, True, timeout, max_records)

    @abc.abstractmethod
    async def _poll(self, round_: Callable[[float, int | None], list[_Piece]], columns: bool,
                    timeout: float | None, max_records: int | None) -> list[_Piece]:
        """Rounds of ``round_(wait, max_records)`` until records come or ``timeout``
        passes (``columns``: the rounds return RecordColumns)."""

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
        the shared executor. Errors as ``Consumer.commit`` (CommitFailedError for
        partitions not owned)."""
        self._check_open()
        return await self._exclusive(True, self.consumer.commit, offsets, metadata)

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or None."""
        return await self._exclusive(self._reads_block, self.consumer.committed, tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make ``offset`` the next record returned from ``tp`` (between polls, as
        with the synchronous consumer)."""
        self.consumer.seek(tp, offset)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Next records: the first still in the log (all partitions if none named)."""
        await self._exclusive(self._lookups_block, self.consumer.seek_to_beginning, *partitions)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Next records: those appended from now on (all partitions if none named)."""
        await self._exclusive(self._lookups_block, self.consumer.seek_to_end, *partitions)

    async def seek_to_time(self, ts_ms: int, *partitions: TopicPartition) -> None:
        """Next records: the first with a timestamp >= ``ts_ms`` (all partitions
        if none named)."""
        await self._exclusive(self._lookups_block, self.consumer.seek_to_time, ts_ms, *partitions)

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
        """Records between each partition's position and its end offset."""
        return await self._exclusive(self._reads_block, self.consumer.lag)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` will return from ``tp``."""
        return await self._exclusive(self._reads_block, self.consumer.position, tp)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> WrappedConsumer:
        """Join the group now (for a member made with topics)."""
        await self._join_if_needed()
        return self

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
            self._closed_now()

    def _closed_now(self) -> None:
        """After ``close``: wake what waits in the backend's own way (nothing by default)."""

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
