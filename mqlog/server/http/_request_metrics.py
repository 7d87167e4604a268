"""Counting HTTP requests for ``/metrics``: per method, route template and status.

A pure ASGI middleware: it notes the status the response starts with and,
once the response is sent, records the request in the app's
:class:`~mqlog.metrics.ServerMetrics` under the matched route's template
(``/queues/{topic}/messages``, never the path itself, whose values would
make a series each; ``unmatched`` for a path no route has). A request whose
client hung up before a response counts with status 499, nginx's.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqlog.metrics import ServerMetrics

#: The status of a request answered with nothing (the client left first).
CLIENT_CLOSED = 499


class RequestMetrics:
    """ASGI middleware counting each HTTP request in ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = CLIENT_CLOSED

        async def noted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted_send)
        except Exception:
            status = 500
            raise
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.record_http_request(scope["method"], template, status,
                                             time.perf_counter() - started)
