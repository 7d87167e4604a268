"""Prometheus metrics of a log and of the server over it.

``exposition(log, server_metrics)`` is the whole ``/metrics`` page, in the
Prometheus text format (``CONTENT_TYPE``), built afresh at each call:

* :class:`LogCollector`: the log's topics and groups as they are now (offsets,
  sizes, lag, oldest unconsumed age, queue depth), read through the public
  methods of the Log and :mod:`mqlog.monitor`'s definitions;
* :class:`ServerMetrics`: a server's requests and errors per Kafka API and
  per HTTP route, and (:class:`EngineCollector`) the records and bytes its
  engine appended and read and the durations of its flushes.

The collectors are prometheus_client collectors: a program that exposes its
own metrics can register them in its registry instead. docs/metrics.md lists
every metric with its labels.
"""

from mqlog.metrics._engine import EngineCollector
from mqlog.metrics._exposition import CONTENT_TYPE, exposition
from mqlog.metrics._log import LogCollector
from mqlog.metrics._server import ServerMetrics

__all__ = ["CONTENT_TYPE", "EngineCollector", "LogCollector", "ServerMetrics", "exposition"]
