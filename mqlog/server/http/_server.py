"""The HTTP listener: uvicorn serving the app inside the caller's event loop.

:class:`HttpServer` binds its own socket (so port 0 gives a real port to
print before anyone connects) and runs :class:`uvicorn.Server` as a task of
the running loop, beside the Kafka listener; signals stay with the caller
(``run_server``), which stops both listeners together. ``close`` stops
accepting, sets the app's ``stopping`` event (streams end on it), lets
requests in flight finish (long polls are cut short by the shutdown, see
``shutdown_timeout_s``) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

_log = logging.getLogger("mqlog.server.http")


class _InLoopServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: the caller owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """Serve ``app`` on ``host:port`` (port 0: a free port, see :attr:`address`)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *,
                 shutdown_timeout_s: int = 5) -> None:
        self.app = app
        self._host = host
        self._port = port
        self._shutdown_timeout_s = shutdown_timeout_s
        self._socket: socket.socket | None = None
        self._server: _InLoopServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on; the real port once started."""
        if self._socket is None:
            return self._host, self._port
        host, port = self._socket.getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Bind and start serving; returns once connections are accepted."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of a
        # socket that says it is TCP, and without it a keep-alive response's body
        # waits ~40 ms behind its head (Nagle against the client's delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._socket = sock
        config = uvicorn.Config(self.app, lifespan="off", access_log=False,
                                log_level="warning", log_config=None,
                                timeout_graceful_shutdown=self._shutdown_timeout_s,
                                server_header=False)
        self._server = _InLoopServer(config)
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # the startup failure
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        """Stop accepting, finish requests in flight, close the socket."""
        if self._server is not None and self._task is not None:
            self.app.state.stopping.set()
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()
