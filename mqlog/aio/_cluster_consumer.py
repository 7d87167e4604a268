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
from collections.abc import Callable
from typing import TypeVar

from mqlog.aio._wrapped_consumer import WrappedConsumer
from mqlog.cluster._consumer import ClusterConsumer as SyncClusterConsumer
from mqlog.consumer import check_timeout
from mqlog.logstore import Message, RecordColumns

#: Longest one wait for records holds a thread of the shared executor (seconds).
WAIT_SLICE_S = 0.1

_Piece = TypeVar("_Piece", Message, RecordColumns)


class ClusterConsumer(WrappedConsumer):
    """An :class:`~mqlog.aio.AsyncConsumer` of a Kafka cluster; made by
    ``AsyncLog.consumer``. A group member joins on first use (``async with``,
    the first ``poll``, or ``await subscribe``); its topics are checked then."""

    #: Watermark and time lookups, committed offsets and end offsets come from
    #: the cluster: in the executor.
    _lookups_block = True
    _reads_block = True
    consumer: SyncClusterConsumer

    async def _poll(self, round_: Callable[[float, int | None], list[_Piece]], columns: bool,
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

