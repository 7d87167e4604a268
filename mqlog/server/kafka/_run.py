"""``run_server``: open a log directory and serve it until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
from collections.abc import Callable

import mqlog
from mqlog.server.auth import ServerSecurity
from mqlog.server.kafka._limits import KafkaLimits
from mqlog.server.kafka._server import KafkaServer, check_bind, format_address, parse_address
from mqlog.server.kafka._settings import KafkaSettings


def run_server(directory: str | os.PathLike[str], kafka: str = "127.0.0.1:9092",
               advertised: str | None = None, *, insecure: bool = False,
               security: ServerSecurity | None = None,
               limits: KafkaLimits | None = None, settings: KafkaSettings | None = None,
               ready: Callable[[str], None] | None = None,
               stop: asyncio.Event | None = None) -> None:
    """Serve the log at ``directory`` (created if missing) over the Kafka protocol
    on ``kafka`` (``HOST:PORT``; port 0 picks a free port) until SIGTERM or
    SIGINT (when called in the main thread) or until ``stop`` is set, then shut
    down gracefully and close the log. ``ready`` is called with the
    ``HOST:PORT`` listened on (the real port) once clients can connect.
    ``advertised``: ``HOST:PORT`` clients are told to connect to. ``security``:
    TLS and logins (``ServerSecurity.from_options``, read before this call)."""
    host, port = parse_address(kafka)
    told = parse_address(advertised) if advertised is not None else None
    check_bind(host, insecure, security)  # bad input: refused before the directory is created
    with mqlog.open(directory) as log:
        server = KafkaServer(log.engine, host, port, advertised=told, insecure=insecure,
                             limits=limits, settings=settings, security=security)
        asyncio.run(_serve(server, ready, stop))


async def _serve(server: KafkaServer, ready: Callable[[str], None] | None,
                 stop: asyncio.Event | None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for number in signals:
            loop.add_signal_handler(number, stop.set)
    try:
        await server.start()
        # Everything loaded so far (the codec's schema classes, about 90,000
        # objects) lives as long as the process: out of the collector's sight,
        # a full collection takes well under a millisecond instead of ~50 ms,
        # which showed as 200 ms outliers in end-to-end latency under load.
        gc.collect()
        gc.freeze()
        if ready is not None:
            ready(format_address(*server.address))
        await stop.wait()
    finally:
        await server.close()  # a repeated signal meanwhile changes nothing
        if main_thread:
            for number in signals:
                loop.remove_signal_handler(number)
