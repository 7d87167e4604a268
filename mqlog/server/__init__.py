"""``mqlog serve``: network doors to a log directory.

The server is one asyncio process over a log directory that embedded
processes keep using at the same time. It is a client of the storage engine
(:class:`mqlog.logstore.Engine`), of the consumer-group membership
(:class:`mqlog.consumer.GroupMembership`) and of :class:`mqlog.Log`, like any
other client: it reaches nothing private below it.

- ``mqlog.server.kafka`` speaks the Kafka wire protocol: :class:`KafkaServer`
  (an asyncio server over an open log's engine), bounded by
  :class:`KafkaLimits` and configured by :class:`KafkaSettings`.
- ``mqlog.server.http`` serves the HTTP API (queues, topics, groups, metrics,
  the web console): :class:`HttpServer` over the app :func:`build_app` makes,
  bounded by :class:`HttpLimits`.
- :func:`run_server` opens a directory and serves it through either door or
  both until SIGTERM or Ctrl-C; :func:`read_http_token` reads the HTTP
  bearer token from a file or the environment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqlog.server._http_token import read_http_token
    from mqlog.server._run import run_server
    from mqlog.server.http import HttpLimits, HttpServer, build_app
    from mqlog.server.kafka import KafkaLimits, KafkaServer, KafkaSettings

__all__ = ["HttpLimits", "HttpServer", "KafkaLimits", "KafkaServer", "KafkaSettings",
           "build_app", "read_http_token", "run_server"]

_HOMES = {"HttpLimits": "mqlog.server.http", "HttpServer": "mqlog.server.http",
          "build_app": "mqlog.server.http", "KafkaLimits": "mqlog.server.kafka",
          "KafkaServer": "mqlog.server.kafka", "KafkaSettings": "mqlog.server.kafka",
          "read_http_token": "mqlog.server._http_token", "run_server": "mqlog.server._run"}


def __getattr__(name: str) -> Any:
    """Each door's names, imported on first use: the Kafka codec takes most of a
    second to import, which ``mqlog.server.auth`` (the ``mqlog users``
    command) and an HTTP-only server do not need."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
