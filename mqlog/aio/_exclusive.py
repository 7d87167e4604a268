"""One call at a time on a synchronous client: the rule every asyncio consumer
of ``mqlog.aio`` follows, whatever its backend.

A synchronous consumer is meant for one thread; its asyncio wrapper runs its
calls on the loop's thread or in the shared executor, one at a time, under an
``asyncio.Lock`` held from the start of a call to its end -- in the executor
too, even when whoever awaited the call was cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar

from mqlog.aio._blocking import start_blocking

_T = TypeVar("_T")


async def exclusive(lock: asyncio.Lock, blocking: bool, fn: Callable[..., _T], *args: object,
                    undo: Callable[[_T], None] | None = None,
                    quick: Callable[[], _T | None] | None = None) -> _T:
    """``fn(*args)`` holding ``lock``: on the loop's thread, or (``blocking``) in
    the shared executor -- unless ``quick()``, tried first on the loop's thread,
    does the work without blocking (None: it could not, and did nothing).
    Cancelled while it runs in the executor, it still holds the lock until it
    ends, then ``undo(result)``."""
    await lock.acquire()
    if not blocking:
        try:
            return fn(*args)
        finally:
            lock.release()
    if quick is not None:
        try:
            result = quick()
        except BaseException:
            lock.release()
            raise
        if result is not None:
            lock.release()
            return result
    future = start_blocking(fn, *args)
    try:
        result = await asyncio.shield(future)
    except asyncio.CancelledError:
        # Whether it finished before the cancellation reached this task (its
        # result came too late to be returned) or finishes later, its result is
        # given back, before anyone else gets the client.
        if future.done():
            _give_back(future, undo, lock)
        else:
            future.add_done_callback(functools.partial(_give_back, undo=undo, lock=lock))
        raise
    except BaseException:
        lock.release()
        raise
    lock.release()
    return result


def _give_back(done: asyncio.Future[_T], undo: Callable[[_T], None] | None,
               lock: asyncio.Lock) -> None:
    """``undo`` the result of a call whose caller was cancelled; release the lock."""
    try:
        if undo is not None and not done.cancelled() and done.exception() is None:
            undo(done.result())
    finally:
        lock.release()
