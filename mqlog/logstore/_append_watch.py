"""Wakes coroutines waiting for records when any process appends to the log.

One :class:`AppendWatch` per event loop per open engine (:func:`append_watch`),
shared by everything in that loop that waits for appends: the Kafka server's
fetches and the ``mqlog.aio`` consumers. Appends made in this process by a
caller that knows it (the server's Produce handler, the asyncio producer once
a send completes) wake the waiting coroutines at once: :meth:`AppendWatch.poke`.
Appends of other processes, and of threads that do not poke, move the
engine's append counter; while a coroutine is waiting, the event loop reads
the counter every ``POLL_S`` and wakes every waiting coroutine when it moved.
So a waiter is woken within ``POLL_S`` of an append by any process, no
thread is started or blocked for it, and a loop with nobody waiting does no
work at all.

Why not a thread blocked on the counter's futex: every append (the process's
own included) then woke that thread, and handing the GIL to it and back cost
the append path far more than the append itself (40 % of a busy server's time
in a profile); reading a memory-mapped word a thousand times a second while
someone waits costs well under 1 % of a core.

Invariants: a watch is used only from its loop's thread (the engine may close
from another: then the next read of the counter wakes every waiter, and
``counter`` raises LogClosedError); a waiter is in ``_waiters`` exactly while
its ``changed`` call is suspended (a cancelled or timed-out wait removes it),
and the poll timer runs only while there are waiters.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mqlog.errors import LogClosedError
from mqlog.logstore._per_loop import per_loop

if TYPE_CHECKING:
    from mqlog.logstore.engine import Engine

#: How often the counter is read while a coroutine waits (seconds).
POLL_S = 0.001

#: The key of an engine's watches (one per loop) among its attachments.
_ATTACHMENT = "append_watches"


class AppendWatch:
    """Await :meth:`changed` for the next append after :meth:`counter` was read."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._waiters: set[asyncio.Future[None]] = set()
        self._last = engine.append_counter()
        self._poller: asyncio.TimerHandle | None = None

    def counter(self) -> int:
        """The append counter now; pass it to :meth:`changed`. LogClosedError once
        the engine is closed."""
        try:
            return self._engine.append_counter()
        except ValueError:  # the counter's map is gone: the engine closed
            self._engine.check_open()
            raise

    def waiting(self) -> int:
        """How many coroutines wait now."""
        return len(self._waiters)

    def poke(self) -> None:
        """Wake every waiting coroutine now: this process just appended."""
        if self._waiters:
            self._wake()

    async def changed(self, seen: int, timeout_s: float) -> None:
        """Return once the counter differs from ``seen``, someone pokes, or
        ``timeout_s`` passed."""
        if timeout_s <= 0 or self.counter() != seen:
            return
        waiter = self._loop.create_future()
        self._waiters.add(waiter)
        if self._poller is None:
            self._last = seen
            self._poller = self._loop.call_later(POLL_S, self._poll)
        # A timer that resolves the waiter, not asyncio.timeout: that costs a
        # context manager, two running-loop lookups and a cancellation per wait.
        timer = self._loop.call_later(timeout_s, _time_up, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)

    def _poll(self) -> None:
        self._poller = None
        try:
            now = self.counter()
        except LogClosedError:  # nothing will move any more: let the waiters see it
            self._wake()
            return
        if now != self._last:
            self._last = now
            self._wake()
        if self._waiters:
            self._poller = self._loop.call_later(POLL_S, self._poll)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """Stop polling and wake the waiting coroutines (they find what there is)."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._wake()


def _time_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def append_watch(engine: Engine) -> AppendWatch:
    """The append watch of ``engine`` for the running event loop, made on first
    use: one per loop per open engine (kept with ``Engine.attachment``, so it
    goes when the engine closes or the loop is collected)."""
    return per_loop(engine, _ATTACHMENT, AppendWatch)
