"""``build_app``: the FastAPI app over one open log.

What every route shares lives on ``app.state``: ``log`` (the open
:class:`mqlog.Log`), ``limits`` (:class:`HttpLimits`), ``token`` (the bearer
token, or None) and ``stopping`` (an :class:`asyncio.Event` the listener sets
when it starts to shut down: a route that streams or waits ends on it, so the
graceful shutdown is prompt). Routes are ``async def`` and call the log in the
event loop (appends and reads take microseconds); what may wait (long polls,
fsyncs) awaits instead of blocking the loop. OpenAPI at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio

from fastapi import Depends, FastAPI

import mqlog
from mqlog.log import Log
from mqlog.metrics import ServerMetrics
from mqlog.server.http import (
    _console,
    _dead_letters_api,
    _groups_api,
    _log_api,
    _metrics_api,
    _produce_api,
    _queue_api,
    _read_api,
)
from mqlog.server.http._auth import check_token
from mqlog.server.http._body_limit import BodyLimit
from mqlog.server.http._errors import ERROR_RESPONSES, install_error_handlers
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._request_metrics import RequestMetrics


def build_app(log: Log, *, token: str | None = None, limits: HttpLimits | None = None,
              metrics: ServerMetrics | None = None) -> FastAPI:
    """The HTTP API over ``log`` (open for the app's lifetime; the caller closes
    it). With ``token`` every route but the OpenAPI document needs it.
    ``metrics``: where requests are counted and what ``/metrics`` adds to the
    log's state (default: new :class:`~mqlog.metrics.ServerMetrics` over the
    log's engine; pass the Kafka listener's to show both doors in one page)."""
    app = FastAPI(title="mqlog", version=mqlog.__version__,
                  summary="Queues, topics and groups of an mqlog log directory.",
                  docs_url="/docs", redoc_url=None,
                  responses=ERROR_RESPONSES)
    app.state.log = log
    app.state.limits = limits = limits or HttpLimits()
    app.state.token = token
    app.state.metrics = metrics = metrics or ServerMetrics(log.engine)
    app.state.stopping = asyncio.Event()
    install_error_handlers(app)
    secured = [Depends(check_token)]
    app.include_router(_log_api.router, dependencies=secured)
    app.include_router(_produce_api.router, dependencies=secured)
    app.include_router(_read_api.router, dependencies=secured)
    app.include_router(_groups_api.router, dependencies=secured)
    app.include_router(_dead_letters_api.router, dependencies=secured)
    app.include_router(_queue_api.router, dependencies=secured)
    app.include_router(_metrics_api.router, dependencies=secured)
    app.include_router(_console.router)  # its streams check the token themselves
    app.add_middleware(BodyLimit, limit=limits.max_request_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: counts refusals too
    return app
