"""Waiting in an event loop for appends of durable topics to reach the disk.

A server appends to a topic with ``durability="always"`` at once (in its
loop, with ``flush=False``) and answers only once the records are on stable
storage. :func:`flush_cycles` gives the loop one :class:`FlushCycles` per
open engine, shared by every door of the process (the Kafka listener's
Produce, the HTTP API's produce and queue sends): a request awaits
:meth:`FlushCycles.durable` with the partition's end after its append.

At most one flush cycle runs at a time, in a worker thread: it starts at the
loop turn after a first request waits (so every partition of that request,
and of the others read in the same turn, is in it) and makes every
partition that someone waits on durable up to the highest offset asked for
when the cycle began, with one ``syncfs`` for all of them where the system
offers it (``Engine.make_durable_together``). Requests that arrive while a
cycle runs wait for the next one, which starts when the running one ends
and covers everything asked for by then. So a burst of requests over eight
partitions costs one thread handoff and one sync, not one per request or
per partition, and the loop never blocks on the disk.

Invariant: the future :meth:`FlushCycles.durable` returns resolves only once
every offset of the partition below the one given is on stable storage, and
takes the partition's error otherwise (StorageFailedError, or
UnknownTopicError for a topic deleted meanwhile). A waiter that is gone (its
request cancelled) is skipped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mqlog.errors import MqlogError
from mqlog.logstore._per_loop import per_loop

if TYPE_CHECKING:
    from mqlog.logstore.engine import Engine

_ATTACHMENT = "flush_cycles"

#: A partition: (topic, partition number).
_Key = tuple[str, int]


class FlushCycles:
    """The flushes one event loop waits on for one engine (see the module)."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        #: partition -> (offset, future) of the requests no finished cycle covered
        self._waiters: dict[_Key, list[tuple[int, asyncio.Future[None]]]] = {}
        #: A cycle is running or about to start: a new waiter joins the next one.
        self._running = False

    def durable(self, topic: str, partition: int, offset: int) -> asyncio.Future[None]:
        """A future that resolves once every offset of the partition below
        ``offset`` is on disk. (What is durable already is known to the engine,
        not here: a topic deleted and made again restarts its offsets.)"""
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.setdefault((topic, partition), []).append((offset, future))
        if not self._running:  # start at the loop's next turn, so that the other
            # partitions of the same request (or of the requests read in this turn)
            # are in the cycle too
            self._running = True
            self._loop.call_soon(self._start)
        return future

    def _start(self) -> None:
        """Flush every partition waited on, up to its highest offset asked for."""
        targets = {key: max(offset for offset, _ in waiters)
                   for key, waiters in self._waiters.items()}
        cycle = self._loop.run_in_executor(
            None, self._engine.make_durable_together,
            [(topic, number, offset) for (topic, number), offset in targets.items()])
        cycle.add_done_callback(lambda done: self._finished(targets, done))

    def _finished(self, targets: dict[_Key, int],
                  cycle: asyncio.Future[dict[_Key, MqlogError]]) -> None:
        """Resolve the waiters the cycle covered (or give them their partition's
        error); start the next cycle for the others."""
        failures: dict[_Key, MqlogError] = {}
        error: BaseException | None = None
        if not cycle.cancelled():
            error = cycle.exception()
            if error is None:
                failures = cycle.result()
        for key, target in targets.items():
            failure = error or failures.get(key)
            later = []
            for offset, waiter in self._waiters.pop(key):
                if offset > target:
                    later.append((offset, waiter))
                elif waiter.done():
                    continue  # its request is gone (its connection closed)
                elif cycle.cancelled():
                    waiter.cancel()
                elif failure is not None:
                    waiter.set_exception(failure)
                else:
                    waiter.set_result(None)
            if later:
                self._waiters[key] = later
        if self._waiters:
            self._start()
        else:
            self._running = False


def flush_cycles(engine: Engine) -> FlushCycles:
    """The flush cycles of ``engine`` for the running event loop, made on first
    use: one per loop per open engine (kept with ``Engine.attachment``)."""
    return per_loop(engine, _ATTACHMENT, FlushCycles)
