"""The HTTP door to a log directory (``mqlog serve --http``).

An ASGI app (FastAPI) served by uvicorn inside the server's event loop,
beside the Kafka listener when both are asked for. Modules: ``_app`` (the app
and what every route shares), ``_errors`` (mqlog errors as JSON with a stable
code), ``_auth`` (the bearer token), ``_limits`` (named bounds), ``_server``
(the listener), and one module per group of routes.
"""

from mqlog.server.http._app import build_app
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._server import HttpServer

__all__ = ["HttpLimits", "HttpServer", "build_app"]
