"""Wakes fetches waiting for records when any process appends to the log.

Appends made by this server (Kafka producers) wake the waiting fetches at
once: the Produce handler calls :meth:`AppendWatch.poke`. Appends of other
processes (embedded producers on the same directory) move the engine's
append counter; while a fetch is waiting, the event loop looks at the
counter every ``POLL_S`` and wakes every waiting fetch when it moved. So a
fetch is woken within ``POLL_S`` of an append by any process, and an idle
server (no fetch waiting) does no work at all.

Why not a thread blocked on the counter's futex: every append (the
server's own included) then woke that thread, and handing the GIL to it and
back cost the append path far more than the append itself (40 % of a busy
server's time in a profile); reading a memory-mapped word a thousand times a
second while someone waits costs well under 1 % of a core.
"""

from __future__ import annotations

import asyncio

from mqlog.logstore import Engine
from mqlog.server.kafka._context import ServerState

#: How often the counter is read while a fetch waits (seconds).
POLL_S = 0.001

#: Where a server keeps its watch in ``ServerState.extensions``.
EXTENSION = "append_watch"


class AppendWatch:
    """Await :meth:`changed` for the next append after :meth:`counter` was read."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._waiters: set[asyncio.Future[None]] = set()
        self._last = engine.append_counter()
        self._poller: asyncio.TimerHandle | None = None

    def counter(self) -> int:
        """The append counter now; pass it to :meth:`changed`."""
        return self._engine.append_counter()

    def poke(self) -> None:
        """Wake every waiting fetch now: this process just appended."""
        if self._waiters:
            self._wake()

    async def changed(self, seen: int, timeout_s: float) -> None:
        """Return once the counter differs from ``seen``, someone pokes, or
        ``timeout_s`` passed."""
        if timeout_s <= 0 or self._engine.append_counter() != seen:
            return
        waiter = self._loop.create_future()
        self._waiters.add(waiter)
        if self._poller is None:
            self._last = seen
            self._poller = self._loop.call_later(POLL_S, self._poll)
        try:
            async with asyncio.timeout(timeout_s):
                await waiter
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def _poll(self) -> None:
        self._poller = None
        now = self._engine.append_counter()
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
        """Stop polling and wake the waiting fetches (they find what there is)."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._wake()


def append_watch(server: ServerState) -> AppendWatch:
    """The server's append watch, made on first use in the running loop."""
    watch = server.extensions.get(EXTENSION)
    if watch is None:
        watch = server.extensions[EXTENSION] = AppendWatch(server.engine,
                                                           asyncio.get_running_loop())
    return watch
