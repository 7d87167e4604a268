"""The asyncio producer of the embedded log, over a synchronous ``Producer``.

``send`` runs on the loop's thread and only queues the record (microseconds:
the synchronous ``Producer.send``); the producer's sender thread appends
whole batches -- and, under ``durability="always"``, waits for their flush --
then reports each record through ``on_delivery``. Those reports come back to
the loop in bunches: the sender thread puts them on ``_reports`` and wakes the
loop once per bunch (``_drain_due``), not once per record; ``_drain``, on the
loop, completes the awaiting futures and pokes the append watch, so the
log's waiting consumers in this loop see the records at once.

Invariant: ``_drain_due`` is True from the moment a wake-up is scheduled until
``_drain`` starts, and ``_drain`` clears it before emptying ``_reports``: a
report added meanwhile is either emptied by this drain or schedules the next.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from mqlog.aio._api import AsyncProducer
from mqlog.aio._blocking import run_blocking
from mqlog.logstore import AppendWatch
from mqlog.producer import Producer, RecordMetadata

_Report = tuple["asyncio.Future[Any]", Any, BaseException | None]


class EmbeddedProducer(AsyncProducer):
    """An :class:`~mqlog.aio.AsyncProducer` writing to a log directory; made by
    ``AsyncLog.producer`` in a coroutine (it reports to the running loop)."""

    def __init__(self, producer: Producer, watch: AppendWatch) -> None:
        #: The synchronous producer underneath (its ``config``, ``producer_id``).
        self.producer = producer
        self._watch = watch
        self._loop = asyncio.get_running_loop()
        self._reports: collections.deque[_Report] = collections.deque()
        self._drain_due = False

    def send(self, topic: str, value: bytes | str, *, key: bytes | str | None = None,
             headers: Mapping[str, bytes] | None = None, partition: int | None = None,
             timestamp: int | None = None, delay_s: float | None = None,
             deliver_at: int | None = None, ttl_s: float | None = None,
             priority: int = 0) -> asyncio.Future[RecordMetadata]:
        """Queue one record (on the loop's thread: microseconds) and return the
        future of its :class:`~mqlog.RecordMetadata`, done once it is written.
        Errors as ``Producer.send``, raised here before anything is queued, or
        what writing it raised, from the future. Cancelling the future does not
        take the record back. When ``buffer_bytes`` are queued (many sends at
        once), queueing waits for the sender to append, as the synchronous send."""
        future: asyncio.Future[RecordMetadata] = self._loop.create_future()
        self.producer.send(topic, value, key=key, headers=headers, partition=partition,
                           timestamp=timestamp, delay_s=delay_s, deliver_at=deliver_at,
                           ttl_s=ttl_s, priority=priority,
                           on_delivery=functools.partial(self._report, future))
        return future

    def send_many(self, topic: str, values: Sequence[bytes | str],
                  keys: Sequence[bytes | str | None] | None = None
                  ) -> asyncio.Future[dict[int, range]]:
        """Queue many records (``Producer.send_many``: keyless ones in one batch,
        appended in one call); the future of ``{partition: offsets}``, done once
        all are written."""
        future: asyncio.Future[dict[int, range]] = self._loop.create_future()
        self.producer.send_many(topic, values, keys,
                                on_delivery=functools.partial(self._report, future))
        return future

    async def flush(self, timeout: float | None = None) -> int:
        """Write everything queued; how many records are still unwritten after
        ``timeout`` seconds (0: all). Waits in the shared executor."""
        return await run_blocking(self.producer.flush, timeout)

    async def close(self) -> None:
        """Flush, then stop the sender thread (in the shared executor); further
        sends raise LogClosedError. Idempotent."""
        await run_blocking(self.producer.close)

    def _report(self, future: asyncio.Future[Any], result: Any,
                error: BaseException | None) -> None:
        """On the sender thread: one record (or ``send_many``) is written or failed."""
        self._reports.append((future, result, error))
        if not self._drain_due:
            self._drain_due = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody can await the result
                pass

    def _drain(self) -> None:
        """On the loop: complete the futures of every report so far."""
        self._drain_due = False
        reports = self._reports
        while reports:
            future, result, error = reports.popleft()
            if future.done():  # its sender was cancelled
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        self._watch.poke()
