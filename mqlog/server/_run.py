"""``run_server``: open a log directory and serve it until SIGTERM or Ctrl-C.

One process, one event loop (uvloop), one open log, and up to two listeners over it:
the Kafka protocol (:class:`~mqlog.server.kafka.KafkaServer`) and HTTP
(:class:`~mqlog.server.http.HttpServer`). Both start before ``ready`` is
called for each; on the stop signal both close (requests in flight answered)
before the log is closed. Each door's package is imported only when asked
for: the Kafka codec takes most of a second to import.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import uvloop

import mqlog
from mqlog.errors import ConfigError
from mqlog.metrics import ServerMetrics
from mqlog.server._address import check_http_bind, format_address, parse_address

if TYPE_CHECKING:
    from mqlog.server.auth import ServerSecurity
    from mqlog.server.http import HttpLimits
    from mqlog.server.kafka import KafkaLimits, KafkaSettings

_log = logging.getLogger("mqlog.server")

#: Descriptors the server needs besides its connections: the log's segment,
#: index and state files, the listeners, the flush cycle's.
FILES_BESIDE_CONNECTIONS = 1024


class _Listener(Protocol):
    @property
    def address(self) -> tuple[str, int]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def run_server(directory: str | os.PathLike[str], kafka: str | None = "127.0.0.1:9092",
               advertised: str | None = None, *, http: str | None = None,
               http_token: str | None = None, http_limits: HttpLimits | None = None,
               insecure: bool = False, security: ServerSecurity | None = None,
               limits: KafkaLimits | None = None, settings: KafkaSettings | None = None,
               ready: Callable[[str], None] | None = None,
               stop: asyncio.Event | None = None) -> None:
    """Serve the log at ``directory`` (created if missing) until SIGTERM or SIGINT
    (when called in the main thread) or until ``stop`` is set, then shut down
    gracefully and close the log.

    ``kafka``: ``HOST:PORT`` of the Kafka protocol (None: no Kafka listener);
    ``http``: ``HOST:PORT`` of the HTTP API (None: none). Port 0 picks a free
    port. ``ready`` is called with each listener's URL (``kafka://HOST:PORT``,
    ``http://HOST:PORT``, the real port) once clients can connect to it.
    ``advertised``: ``HOST:PORT`` Kafka clients are told to connect to.
    ``security``: TLS and logins of the Kafka listener
    (``ServerSecurity.from_options``); ``http_token``: the bearer token of the
    HTTP API. A non-loopback address needs authentication or ``insecure``.
    """
    if kafka is None and http is None:
        raise ConfigError("nothing to serve: give a Kafka address, an HTTP address or both")
    kafka_address = parse_address(kafka) if kafka is not None else None
    http_address = parse_address(http) if http is not None else None
    told = parse_address(advertised) if advertised is not None else None
    # Bad input is refused before the directory is created.
    if http_address is not None:
        check_http_bind(http_address[0], insecure, http_token)
    if kafka_address is not None:
        from mqlog.server.kafka import KafkaLimits
        from mqlog.server.kafka._server import check_bind

        check_bind(kafka_address[0], insecure, security)
        allow_open_files((limits or KafkaLimits()).max_connections + FILES_BESIDE_CONNECTIONS)
    with mqlog.open(directory) as log:
        metrics = ServerMetrics(log.engine)  # both doors count into one /metrics page
        listeners: list[tuple[str, _Listener]] = []
        if kafka_address is not None:
            from mqlog.server.kafka import KafkaServer

            listeners.append(("kafka", KafkaServer(
                log.engine, *kafka_address, advertised=told, insecure=insecure,
                limits=limits, settings=settings, security=security, metrics=metrics)))
        if http_address is not None:
            from mqlog.server.http import HttpServer, build_app

            app = build_app(log, token=http_token, limits=http_limits, metrics=metrics)
            listeners.append(("http", HttpServer(app, *http_address)))
        # uvloop: the loop, its sockets and transports in C rather than in
        # asyncio's Python (a third of an HTTP request's CPU was the loop's own).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(listeners, ready, stop))


def allow_open_files(wanted: int) -> int:
    """Raise this process's soft limit of open files towards ``wanted`` (never
    above the hard limit, never down), as servers do: the common soft limit of
    1,024 would refuse connections far below ``max_connections``, each
    ``accept`` failing with EMFILE. Logs a warning when the hard limit is lower
    than ``wanted``; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (OSError, ValueError) as error:  # a sandbox may refuse any change
            _log.warning("could not raise the open files limit from %d to %d: %s",
                         soft, ceiling, error)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        _log.warning("open files are limited to %d (hard limit, ulimit -Hn): fewer "
                     "connections than max_connections allows can be open at once", hard)
    return soft


async def _serve(listeners: Sequence[tuple[str, _Listener]],
                 ready: Callable[[str], None] | None, stop: asyncio.Event | None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for number in signals:
            loop.add_signal_handler(number, stop.set)
    started: list[_Listener] = []
    try:
        for _, listener in listeners:
            await listener.start()
            started.append(listener)
        # Everything loaded so far (the Kafka codec's schema classes, about
        # 90,000 objects) lives as long as the process: out of the collector's
        # sight, a full collection takes well under a millisecond instead of
        # ~50 ms, which showed as 200 ms outliers in end-to-end latency under load.
        gc.collect()
        gc.freeze()
        if ready is not None:
            for scheme, listener in listeners:
                ready(f"{scheme}://{format_address(*listener.address)}")
        await stop.wait()
    finally:
        # A repeated signal meanwhile changes nothing.
        await asyncio.gather(*(listener.close() for listener in started))
        if main_thread:
            for number in signals:
                loop.remove_signal_handler(number)
