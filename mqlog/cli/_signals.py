"""Signals that end a long command between two steps, never in the middle of one."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stopping_on(stop: threading.Event, numbers: Iterable[signal.Signals]) -> Iterator[None]:
    """While the block runs, the signals ``numbers`` set ``stop`` instead of raising
    (KeyboardInterrupt for SIGINT), so the command checks ``stop`` between steps and
    what it reports matches what it did; the previous handlers come back after.
    A second SIGINT raises KeyboardInterrupt as usual: Ctrl-C twice still stops a
    step that hangs (a child that never reads what is written to it). Outside the
    main thread (no signal handlers there) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number: int, _frame: Any) -> None:
        if number == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {number: signal.signal(number, handler) for number in numbers}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
