"""A server's own counters: requests and errors per Kafka API and per HTTP route.

One :class:`ServerMetrics` per server process (``mqlog serve``), shared by its
doors: the Kafka listener counts each request it answers, the HTTP app each
request it serves. Its :attr:`~ServerMetrics.registry` holds them, and the
counters of the log's engine (:class:`~mqlog.metrics.EngineCollector`) when
it is given one, so ``exposition(log, server_metrics)`` shows the log's state
and the process's work in one page.

These are process counters: they start at 0 when the server starts (Prometheus'
``rate()`` and ``increase()`` handle the reset). Every method is thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from mqlog.logstore import Engine
from mqlog.metrics._engine import EngineCollector

#: Upper bounds (seconds) of the HTTP latency buckets: a queue receive that long
#: polls waits up to its timeout (seconds), most requests take a few milliseconds.
HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                  10.0, 30.0)


class ServerMetrics:
    """The counters of one server (see the module docstring); ``engine``: also
    expose that engine's counters (records and bytes appended and read, fsync
    durations)."""

    def __init__(self, engine: Engine | None = None) -> None:
        #: What :func:`~mqlog.metrics.exposition` adds to the log's state.
        self.registry = CollectorRegistry()
        self._kafka_requests = Counter(
            "mqlog_kafka_requests", "Kafka protocol requests answered, per API.",
            ["api"], registry=self.registry)
        self._kafka_errors = Counter(
            "mqlog_kafka_request_errors",
            "Kafka protocol responses that carried an error code (at the top level or for "
            "a topic or partition), per API and error; each error counts once a response.",
            ["api", "error"], registry=self.registry)
        self._http_requests = Counter(
            "mqlog_http_requests", "HTTP requests served, per method, route and status.",
            ["method", "route", "status"], registry=self.registry)
        self._http_seconds = Histogram(
            "mqlog_http_request_duration_seconds",
            "Time to serve an HTTP request, per method and route.", ["method", "route"],
            buckets=HTTP_BUCKETS_S, registry=self.registry)
        # API name -> its child counter: labels() costs ~1.5 us, a dict lookup ~50 ns,
        # and the Kafka listener counts every request.
        self._kafka_children: dict[str, Counter] = {}
        if engine is not None:
            self.registry.register(EngineCollector(engine))

    def record_kafka_request(self, api: str, errors: Iterable[str] = ()) -> None:
        """Count one request of Kafka API ``api`` (its name, as ``Produce`` or
        ``ApiVersions``) and each error (a Kafka error name, as
        ``UNKNOWN_TOPIC_OR_PARTITION``) its response carried."""
        child = self._kafka_children.get(api)
        if child is None:
            child = self._kafka_children[api] = self._kafka_requests.labels(api)
        child.inc()
        for error in errors:
            self._kafka_errors.labels(api, error).inc()

    def record_http_request(self, method: str, route: str, status: int,
                            seconds: float) -> None:
        """Count one HTTP request: ``route`` is the route's template (as
        ``/queues/{group}/messages``, never the path itself, whose values would
        make a series each), ``status`` the response's status code, ``seconds``
        the time taken to serve it."""
        self._http_requests.labels(method, route, str(status)).inc()
        self._http_seconds.labels(method, route).observe(seconds)
