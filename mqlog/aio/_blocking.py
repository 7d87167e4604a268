"""The small shared executor of ``mqlog.aio``: where calls that may block run.

Appends and reads take microseconds and run on the event loop's thread. What
may take milliseconds to seconds runs here instead, so that the loop never
stalls: opening and closing a log, creating topics, group joins, heartbeats
and syncs (a rebalance takes the group's coordinator lock, which another
process may hold), commits (an append plus an fdatasync), flushes, and queue
operations on ``durability="always"`` topics (each fdatasyncs the share
state). The docstring of every call that uses it says so.

One pool per process, at most ``WORKERS`` threads, started on first use: the
number of threads never grows with the number of clients or waiting calls.
Waiting for records never uses it (see ``mqlog.logstore.append_watch``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

#: Most threads the shared pool runs at once.
WORKERS = 4

_P = ParamSpec("_P")
_T = TypeVar("_T")
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: the parent's threads are not there; start a new pool."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(WORKERS,
                                                          thread_name_prefix="mqlog-aio")
        return _pool


def start_blocking(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
                   ) -> asyncio.Future[_T]:
    """Start ``fn(*args, **kwargs)`` in the shared pool; the future of its result.
    It runs to the end even if whoever awaits the future is cancelled."""
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))


async def run_blocking(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``fn(*args, **kwargs)`` run in the shared pool, awaited."""
    return await start_blocking(fn, *args, **kwargs)
