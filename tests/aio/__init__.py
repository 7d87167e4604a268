"""Tests of mqlog.aio: every coroutine runs under ``run``, which bounds it generously."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

#: Longest any one test's coroutine may take (a loaded machine is slow; a hang is a bug).
TEST_TIMEOUT_S = 120.0

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a new event loop, failing if it takes over TEST_TIMEOUT_S."""
    return asyncio.run(asyncio.wait_for(coroutine, TEST_TIMEOUT_S))


async def started(*tasks: asyncio.Task[Any]) -> None:
    """Let ``tasks`` run up to the point where they wait."""
    for _ in range(10):
        await asyncio.sleep(0)
    assert not any(task.done() for task in tasks)
