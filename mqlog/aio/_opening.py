"""What :func:`mqlog.aio.open` returns, whatever the backend: await it for the
log, or use it as an async context manager that closes the log on the way out.
Opening (recovery, or connecting to a cluster) runs in the shared executor."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from mqlog.aio._api import AsyncLog
from mqlog.aio._blocking import run_blocking

LogT = TypeVar("LogT", bound=AsyncLog)


class Opening(Generic[LogT]):
    """An :class:`~mqlog.aio.AsyncLog` being opened: ``await`` it, or ``async with``
    it. ``make`` opens the log; it runs in the shared executor."""

    def __init__(self, make: Callable[[], LogT]) -> None:
        self._make = make
        self._log: LogT | None = None

    async def _open(self) -> LogT:
        return await run_blocking(self._make)

    def __await__(self) -> Generator[Any, None, LogT]:
        return self._open().__await__()

    async def __aenter__(self) -> LogT:
        self._log = await self._open()
        return self._log

    async def __aexit__(self, *exc_info: object) -> None:
        if self._log is not None:
            await self._log.close()
