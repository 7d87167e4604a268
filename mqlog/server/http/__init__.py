"""The HTTP door to a log directory (``mqlog serve --http``).

An ASGI app (FastAPI) served by uvicorn inside the server's event loop,
beside the Kafka listener when both are asked for (docs/http.md). Modules:

- the app: ``_app`` (building it; what every route shares), ``_server`` (the
  listener), ``_errors`` (mqlog errors as JSON with a stable code), ``_auth``
  (the bearer token), ``_limits`` (named bounds), ``_body_limit`` and
  ``_request_metrics`` (ASGI middleware), ``_payloads`` (bytes in JSON),
  ``_waiting`` (long polls and flushes);
- the routes: ``_queue_api`` (queues with receipt handles) and its
  ``_queue_fast_lane``, ``_log_api``/``_produce_api``/``_read_api`` (topics
  and records), ``_groups_api``, ``_dead_letters_api``, ``_metrics_api``
  (``/metrics``), ``_console`` with ``_console_events`` and
  ``_console_snapshot`` (the web console in ``console/``).
"""

from mqlog.server.http._app import build_app
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._server import HttpServer

__all__ = ["HttpLimits", "HttpServer", "build_app"]
