"""Wakes the event loop when any process appends to the log.

One thread waits on the engine's append counter (a futex word every
appender, in any process, bumps) and, when it changes, resolves the current
:class:`asyncio.Future` that waiting fetches share; each wait then takes a
fresh one. A fetch waiting for data is thus woken within the futex wake-up
and one loop iteration of an append, without a thread per waiting fetch.
"""

from __future__ import annotations

import asyncio
import threading

from mqlog.logstore import Engine

#: Longest the watcher thread sleeps before re-checking that it should run.
WAIT_SLICE_S = 0.5


class AppendWatch:
    """Await :meth:`changed` for the next append after :meth:`counter` was read."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._future: asyncio.Future[None] = loop.create_future()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mqlog-append-watch",
                                        daemon=True)
        self._thread.start()

    def counter(self) -> int:
        """The append counter now; pass it to :meth:`changed`."""
        return self._engine.append_counter()

    async def changed(self, seen: int, timeout_s: float) -> None:
        """Return once the counter differs from ``seen`` or ``timeout_s`` passed."""
        if self._engine.append_counter() != seen or timeout_s <= 0:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._future), timeout_s)
        except TimeoutError:
            pass

    def _watch(self) -> None:
        seen = self._engine.append_counter()
        while not self._stopped.is_set():
            self._engine.wait_for_append(seen, WAIT_SLICE_S)
            now = self._engine.append_counter()
            if now != seen:
                seen = now
                try:
                    self._loop.call_soon_threadsafe(self._wake)
                except RuntimeError:  # the loop closed under us
                    return

    def _wake(self) -> None:
        future, self._future = self._future, self._loop.create_future()
        if not future.done():
            future.set_result(None)

    def close(self) -> None:
        """Stop the watcher thread (within one wait slice)."""
        self._stopped.set()
        self._thread.join(timeout=2 * WAIT_SLICE_S)
