"""``build_app``: the FastAPI app over one open log.

What every route shares lives on ``app.state``: ``log`` (the open
:class:`mqlog.Log`), ``limits`` (:class:`HttpLimits`) and ``token`` (the
bearer token, or None). Routes are ``async def`` and call the log in the
event loop (appends and reads take microseconds); what may wait (long polls,
fsyncs) awaits instead of blocking the loop. OpenAPI at ``/openapi.json``.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

import mqlog
from mqlog.log import Log
from mqlog.server.http import _log_api
from mqlog.server.http._auth import check_token
from mqlog.server.http._body_limit import BodyLimit
from mqlog.server.http._errors import ERROR_RESPONSES, install_error_handlers
from mqlog.server.http._limits import HttpLimits


def build_app(log: Log, *, token: str | None = None,
              limits: HttpLimits | None = None) -> FastAPI:
    """The HTTP API over ``log`` (open for the app's lifetime; the caller closes
    it). With ``token`` every route but the OpenAPI document needs it."""
    app = FastAPI(title="mqlog", version=mqlog.__version__,
                  summary="Queues, topics and groups of an mqlog log directory.",
                  docs_url="/docs", redoc_url=None,
                  responses=ERROR_RESPONSES)
    app.state.log = log
    app.state.limits = limits = limits or HttpLimits()
    app.state.token = token
    install_error_handlers(app)
    secured = [Depends(check_token)]
    app.include_router(_log_api.router, dependencies=secured)
    app.add_middleware(BodyLimit, limit=limits.max_request_bytes)
    return app
