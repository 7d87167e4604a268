"""One scrape: the log's state and a server's counters in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from mqlog.log import Log
from mqlog.metrics._log import LogCollector
from mqlog.metrics._server import ServerMetrics

#: The Content-Type of what :func:`exposition` returns.
CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition(log: Log, server_metrics: ServerMetrics | None = None, *,
               topics: Collection[str] | None = None,
               groups: Collection[str] | None = None) -> bytes:
    """The body of a ``/metrics`` response (:data:`CONTENT_TYPE`): ``log``'s topics
    and groups as they are now (:class:`LogCollector`, ``topics``/``groups``
    narrowing them), then ``server_metrics``' counters if given."""
    page = generate_latest(LogCollector(log, topics=topics, groups=groups))
    if server_metrics is not None:
        page += generate_latest(server_metrics.registry)
    return page
