"""Flushes of durable partitions for the Produce handler, one at a time per
partition, shared by every produce waiting on it.

A produce to a topic with ``durability="always"`` appends at once and then
waits until its offsets are on disk. Waiting through a worker thread per
request cost a thread handoff per record when producers send one record per
request (``linger.ms=0``), and the engine's group commit alone could not
make up for it: requests queued for threads. Here each partition has at most
one flush running; a request whose offsets it covers waits for it, the
others wait for the next one, which starts when the running one ends and
covers every offset asked for by then. So a burst of requests costs one
thread handoff and one fdatasync per flush, not per request. Waiting costs
a future per request and no task: the flush's done callback resolves the
futures it covered.

Invariant: the future :meth:`Flushes.durable` returns resolves only once
every offset below the one it was given is on stable storage
(``Engine.make_durable`` covered it), and takes the flush's error otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools

from mqlog.server.kafka._context import ServerState

#: Where a server keeps its flushes in ``ServerState.extensions``.
EXTENSION = "flushes"


@dataclasses.dataclass
class _PartitionFlushes:
    done: int = 0  # every offset below it is durable
    running: bool = False  # a flush is running
    #: (offset, future) of the requests not yet covered by a finished flush
    waiters: list[tuple[int, asyncio.Future[None]]] = dataclasses.field(default_factory=list)


class Flushes:
    """The durable partitions' flushes of one server."""

    def __init__(self, server: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._partitions: dict[tuple[str, int], _PartitionFlushes] = {}

    def durable(self, topic: str, partition: int, offset: int) -> asyncio.Future[None]:
        """A future that resolves once every offset of the partition below
        ``offset`` is on disk."""
        future: asyncio.Future[None] = self._loop.create_future()
        state = self._partitions.setdefault((topic, partition), _PartitionFlushes())
        if offset <= state.done:
            future.set_result(None)
            return future
        state.waiters.append((offset, future))
        if not state.running:
            self._start(topic, partition, state)
        return future

    def _start(self, topic: str, partition: int, state: _PartitionFlushes) -> None:
        """Flush up to the highest offset asked for, in a worker thread."""
        state.running = True
        target = max(offset for offset, _ in state.waiters)
        flush = self._loop.run_in_executor(None, self._server.engine.make_durable, topic,
                                           partition, target)
        flush.add_done_callback(functools.partial(self._flushed, topic, partition, state,
                                                  target))

    def _flushed(self, topic: str, partition: int, state: _PartitionFlushes, target: int,
                 flush: asyncio.Future[None]) -> None:
        """Resolve the waiters the flush up to ``target`` covered (or give them its
        error); start the next flush for the others."""
        state.running = False
        error = None if flush.cancelled() else flush.exception()
        if error is None and not flush.cancelled():
            state.done = max(state.done, target)
        later: list[tuple[int, asyncio.Future[None]]] = []
        for offset, waiter in state.waiters:
            if offset > target:
                later.append((offset, waiter))
            elif waiter.done():
                continue  # its request is gone (its connection closed)
            elif flush.cancelled():
                waiter.cancel()
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(None)
        state.waiters = later
        if later:
            self._start(topic, partition, state)


def flushes(server: ServerState) -> Flushes:
    """The server's flushes, made on first use in the running loop."""
    found = server.extensions.get(EXTENSION)
    if found is None:
        found = server.extensions[EXTENSION] = Flushes(server, asyncio.get_running_loop())
    return found
