"""``mqlog serve``: network doors to a log directory.

The server is one asyncio process over a log directory that embedded
processes keep using at the same time. It is a client of the storage engine
(:class:`mqlog.logstore.Engine`) and of the consumer-group membership
(:class:`mqlog.consumer.GroupMembership`), like any other client: it reaches
nothing private below it.

``mqlog.server.kafka`` speaks the Kafka wire protocol: :class:`KafkaServer`
(an asyncio server over an open log's engine) and :func:`run_server` (open a
directory and serve it until SIGTERM or Ctrl-C), bounded by
:class:`KafkaLimits` and configured by :class:`KafkaSettings`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqlog.server.kafka import KafkaLimits, KafkaServer, KafkaSettings, run_server

__all__ = ["KafkaLimits", "KafkaServer", "KafkaSettings", "run_server"]


def __getattr__(name: str) -> Any:
    """The Kafka names, imported on first use: the protocol codec takes most of
    a second to import, which ``mqlog.server.auth`` (the ``mqlog users``
    command) does not need."""
    if name in __all__:
        return getattr(importlib.import_module("mqlog.server.kafka"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
