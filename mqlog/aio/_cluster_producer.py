"""The asyncio producer of a Kafka cluster, over the synchronous ``ClusterProducer``.

``send`` runs the synchronous ``ClusterProducer.send`` on the loop's thread:
it only hands the record to librdkafka (microseconds) with an ``on_delivery``
callback. librdkafka's delivery reports are served by the synchronous
producer's own poller thread (one per producer, as in the synchronous API),
which calls that callback; the callback files the result in ``_reports`` and
wakes the loop once per bunch of reports (``_drain_due``), and ``_drain``, on
the loop, settles the futures. No thread waits for any one send.

The one call of a send that may block is the lookup of the topic's partition
count (a metadata request, the first time and every ``TOPIC_RECHECK_S``).
When the count is not cached (``ClusterProducer.knows_partitions``), the send
is deferred: it waits in ``_deferred`` while the lookup runs in the shared
executor (one lookup per topic at a time), and errors of such a send -- an
unknown topic included -- come from its future rather than from the call.

Invariants: sends reach librdkafka in the order of the calls: while any send
is deferred, every later send is deferred behind it (``_deferred`` is FIFO and
drained from its head only). ``_drain_due`` is True from the moment a wake-up
is scheduled until ``_drain`` starts, and ``_drain`` clears it before emptying
``_reports``: a report added meanwhile is either emptied by this drain or
schedules the next.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mqlog.aio._api import AsyncProducer
from mqlog.aio._blocking import run_blocking, start_blocking
from mqlog.cluster._producer import ClusterProducer as SyncClusterProducer
from mqlog.errors import LogClosedError
from mqlog.producer import RecordMetadata

_Report = tuple["asyncio.Future[Any]", Any, BaseException | None]


class _Deferred:
    """A send of ``records`` records waiting for its topic's partition count:
    ``start()`` hands it to librdkafka and returns the future it settles;
    ``future`` is the caller's."""

    __slots__ = ("topic", "records", "start", "future")

    def __init__(self, topic: str, records: int, start: Callable[[], asyncio.Future[Any]],
                 future: asyncio.Future[Any]) -> None:
        self.topic = topic
        self.records = records
        self.start = start
        self.future = future


class ClusterProducer(AsyncProducer):
    """An :class:`~mqlog.aio.AsyncProducer` sending to a Kafka cluster; made by
    ``AsyncLog.producer`` in a coroutine (it reports to the running loop)."""

    def __init__(self, producer: SyncClusterProducer) -> None:
        #: The synchronous producer underneath (its ``config``).
        self.producer = producer
        self._loop = asyncio.get_running_loop()
        self._reports: collections.deque[_Report] = collections.deque()
        self._drain_due = False
        self._deferred: collections.deque[_Deferred] = collections.deque()
        #: Topic -> its partition-count lookup in the shared executor, while it runs.
        self._lookups: dict[str, asyncio.Future[int]] = {}
        #: Topic -> what its last lookup raised (the deferred sends to it raise it).
        self._failed: dict[str, BaseException] = {}
        self._closed = False

    def send(self, topic: str, value: bytes | str, *, key: bytes | str | None = None,
             headers: Mapping[str, bytes] | None = None, partition: int | None = None,
             timestamp: int | None = None, delay_s: float | None = None,
             deliver_at: int | None = None, ttl_s: float | None = None,
             priority: int = 0) -> asyncio.Future[RecordMetadata]:
        """Hand one record to librdkafka and return the future of its
        :class:`~mqlog.RecordMetadata`, done once the cluster acknowledged it.
        Errors as ``ClusterProducer.send`` (UnsupportedError for the queue-group
        options), raised here -- or from the future when the topic's partition
        count had to be looked up first (see the module). Cancelling the future
        does not take the record back, deferred or not: it is sent all the same.
        While librdkafka's queue is full (``buffer_bytes``), the call waits for
        room, as the synchronous send."""
        if not self._deferred and not self._closed and self.producer.knows_partitions(topic):
            return self._send_now(topic, value, key, headers, partition, timestamp, delay_s,
                                  deliver_at, ttl_s, priority)
        return self._start_or_defer(topic, 1, functools.partial(
            self._send_now, topic, value, key, headers, partition, timestamp, delay_s,
            deliver_at, ttl_s, priority))

    def _send_now(self, topic: str, value: bytes | str, key: bytes | str | None,
                  headers: Mapping[str, bytes] | None, partition: int | None,
                  timestamp: int | None, delay_s: float | None, deliver_at: int | None,
                  ttl_s: float | None, priority: int) -> asyncio.Future[RecordMetadata]:
        """Hand the record to librdkafka; the future its delivery report settles."""
        future: asyncio.Future[RecordMetadata] = self._loop.create_future()
        self.producer.send(topic, value, key=key, headers=headers, partition=partition,
                           timestamp=timestamp, delay_s=delay_s, deliver_at=deliver_at,
                           ttl_s=ttl_s, priority=priority,
                           on_delivery=functools.partial(self._report, future))
        return future

    def send_many(self, topic: str, values: Sequence[bytes | str],
                  keys: Sequence[bytes | str | None] | None = None
                  ) -> asyncio.Future[dict[int, range]]:
        """Hand many records to librdkafka (``ClusterProducer.send_many``); the
        future of ``{partition: offsets}``, done once all are acknowledged."""

        def start() -> asyncio.Future[dict[int, range]]:
            future: asyncio.Future[dict[int, range]] = self._loop.create_future()
            self.producer.send_many(topic, values, keys,
                                    on_delivery=functools.partial(self._report, future))
            return future

        return self._start_or_defer(topic, len(values), start)

    async def flush(self, timeout: float | None = None) -> int:
        """Send everything queued, deferred sends included (their lookups end
        first); how many records are still unacknowledged after ``timeout``
        seconds (0: all). Waits in the shared executor."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if not await self._start_all_deferred(deadline):
            # One snapshot on the loop (deferred sends are handed over only here,
            # and librdkafka's flush(0) does not block): nothing counted twice or missed.
            return (sum(deferred.records for deferred in self._deferred)
                    + self.producer.flush(0.0))
        left = None if deadline is None else max(0.0, deadline - loop.time())
        return await run_blocking(self.producer.flush, left)

    async def close(self) -> None:
        """Start the deferred sends (once their lookups end), flush, then stop
        (in the shared executor); further sends raise LogClosedError.
        Idempotent."""
        self._closed = True
        await self._start_all_deferred(None)
        await run_blocking(self.producer.close)

    # -- sends waiting for a partition count ----------------------------------------------

    def _start_or_defer(self, topic: str, records: int,
                        start: Callable[[], asyncio.Future[Any]]) -> asyncio.Future[Any]:
        """``start()`` now if nothing waits and the count is cached, else queue it."""
        if self._closed:
            raise LogClosedError("producer is closed")
        if not self._deferred and self.producer.knows_partitions(topic):
            return start()
        future: asyncio.Future[Any] = self._loop.create_future()
        self._deferred.append(_Deferred(topic, records, start, future))
        self._start_deferred()
        return future

    async def _start_all_deferred(self, deadline: float | None) -> bool:
        """Wait until every deferred send is handed to librdkafka (or failed);
        False if the loop's clock passed ``deadline`` first."""
        loop = asyncio.get_running_loop()
        while self._deferred and self._lookups:
            wait = None if deadline is None else deadline - loop.time()
            if wait is not None and wait <= 0:
                return False
            # The lookup's own callback (registered first) starts the sends.
            await asyncio.wait(list(self._lookups.values()), timeout=wait)
        return True

    def _start_deferred(self, looked_up: str | None = None) -> None:
        """Start the deferred sends from the head of the queue while their topic's
        count is known (or its lookup failed); look up the first one's otherwise.
        ``looked_up``: a topic whose lookup just ended, which counts as known even
        if the loop ran that late (so that sends always make progress)."""
        deferred = self._deferred
        while deferred:
            head = deferred[0]
            failed = self._failed.get(head.topic)
            if failed is None and head.topic != looked_up and not (
                    self.producer.knows_partitions(head.topic)):
                self._look_up(head.topic)
                return
            deferred.popleft()
            # A cancelled send is started all the same: cancelling never takes a
            # record back, whether the count was cached at the call or not.
            if failed is not None:
                if not head.future.done():
                    head.future.set_exception(failed)
                continue
            try:
                started = head.start()
            except Exception as error:
                if not head.future.done():
                    head.future.set_exception(error)
                continue
            _chain(started, head.future)
        self._failed.clear()

    def _look_up(self, topic: str) -> None:
        """Look up ``topic``'s partition count in the shared executor, once at a time."""
        if topic in self._lookups:
            return
        lookup = self._lookups[topic] = start_blocking(self.producer.look_up_partitions, topic)

        def looked_up(done: asyncio.Future[int]) -> None:
            del self._lookups[topic]
            error = (LogClosedError("the loop is closing") if done.cancelled()
                     else done.exception())
            if error is not None:
                self._failed[topic] = error
            self._start_deferred(topic)

        lookup.add_done_callback(looked_up)

    # -- delivery reports -----------------------------------------------------------------

    def _report(self, future: asyncio.Future[Any], result: Any,
                error: BaseException | None) -> None:
        """On the poller thread (or a thread flushing): a send is acknowledged or failed."""
        self._reports.append((future, result, error))
        if not self._drain_due:
            self._drain_due = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody can await the result
                pass

    def _drain(self) -> None:
        """On the loop: settle the futures of every report so far."""
        self._drain_due = False
        reports = self._reports
        while reports:
            future, result, error = reports.popleft()
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _chain(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    """Settle ``target`` as ``source`` settles (both on the loop)."""

    def copy(done: asyncio.Future[Any]) -> None:
        if target.done():
            return
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)
