"""The asyncio producer of the embedded log, over a synchronous ``Producer``.

``send`` runs on the loop's thread and only queues the record (microseconds:
the synchronous ``Producer.send``) and files its future under the batch that
holds the record (``_waiting``). The producer's sender thread appends whole
batches -- and, under ``durability="always"``, waits for their flush -- then
hands each finished batch to ``_batch_done`` (the producer's
``batch_listener``), which puts it on ``_done`` and wakes the loop once per
bunch of batches (``_drain_due``): no work per record on the sender thread,
no wake-up per record. ``_drain``, on the loop, settles every future of each
finished batch and pokes the append watch, so the log's waiting consumers in
this loop see the records at once. ``send_many`` reports through the
synchronous ``on_delivery`` (one call per ``send_many``) into ``_reports``.

Invariants: a future is filed under its batch on the loop's thread right after
``Producer.send`` returned, and a finished batch is settled on the loop's
thread too, so a batch the sender finished at once is still settled with all
its futures (the drain cannot run in between), and no future is added to a
batch after it is settled (a finished batch takes no more records).
``_drain_due`` is True from the moment a wake-up is scheduled until ``_drain``
starts, and ``_drain`` clears it before emptying ``_done`` and ``_reports``: a
batch or report added meanwhile is either emptied by this drain or schedules
the next.
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
from mqlog.producer import Batch, Producer, RecordMetadata

_Report = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Waiting:
    """The futures of this producer's sends into one batch, and the index of
    each one's record in the batch (kept apart: ints are no work for the
    garbage collector, a tuple per record would be)."""

    __slots__ = ("futures", "indexes")

    def __init__(self, future: asyncio.Future[RecordMetadata], index: int) -> None:
        self.futures = [future]
        self.indexes = [index]


class EmbeddedProducer(AsyncProducer):
    """An :class:`~mqlog.aio.AsyncProducer` writing to a log directory; made by
    ``AsyncLog.producer`` in a coroutine (it reports to the running loop)."""

    def __init__(self, producer: Producer, watch: AppendWatch) -> None:
        #: The synchronous producer underneath (its ``config``, ``producer_id``).
        self.producer = producer
        self._watch = watch
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[Batch, _Waiting] = {}
        self._done: collections.deque[Batch] = collections.deque()
        self._reports: collections.deque[_Report] = collections.deque()
        self._drain_due = False
        producer.batch_listener = self._batch_done

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
        delivery = self.producer.send(topic, value, key=key, headers=headers,
                                      partition=partition, timestamp=timestamp,
                                      delay_s=delay_s, deliver_at=deliver_at, ttl_s=ttl_s,
                                      priority=priority)
        waiting = self._waiting.get(delivery.batch)
        if waiting is None:
            self._waiting[delivery.batch] = _Waiting(future, delivery.index)
        else:
            waiting.futures.append(future)
            waiting.indexes.append(delivery.index)
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

    def _batch_done(self, batch: Batch) -> None:
        """On the sender thread: a batch is written or failed."""
        self._done.append(batch)
        self._wake_loop()

    def _report(self, future: asyncio.Future[Any], result: Any,
                error: BaseException | None) -> None:
        """On the sender thread: a ``send_many`` is written or failed."""
        self._reports.append((future, result, error))
        self._wake_loop()

    def _wake_loop(self) -> None:
        """On the sender thread: have ``_drain`` run, unless it is due already."""
        if not self._drain_due:
            self._drain_due = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody can await the result
                pass

    def _drain(self) -> None:
        """On the loop: settle the futures of every finished batch and report so far."""
        self._drain_due = False
        done = self._done
        while done:
            batch = done.popleft()
            waiting = self._waiting.pop(batch, None)
            if waiting is not None:
                _settle(batch, waiting)
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


def _settle(batch: Batch, waiting: _Waiting) -> None:
    """Complete the futures of a finished batch's sends (but cancelled ones)."""
    error = batch.error
    if error is not None:
        for future in waiting.futures:
            if not future.done():
                future.set_exception(error)
        return
    topic, partition, base_offset = batch.topic, batch.partition, batch.base_offset
    timestamps, append_ms = batch.timestamps, batch.append_ms
    for index, future in zip(waiting.indexes, waiting.futures):
        if not future.done():
            future.set_result(RecordMetadata(topic, partition, base_offset + index,
                                             timestamps.get(index, append_ms)))
