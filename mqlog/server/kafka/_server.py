"""The Kafka listener: accept connections, serve each, shut down gracefully.

:class:`KafkaServer` serves one open log (its :class:`~mqlog.logstore.Engine`)
on one asyncio event loop; embedded processes keep using the log directory
at the same time. Graceful shutdown (:meth:`KafkaServer.close`): stop
accepting, stop reading requests on every connection, set the stopping
flag and await the shutdown hooks (``_lifecycle``: the group coordinator
tells its groups), wait up to ``shutdown_timeout_s`` for the requests in
flight to be answered, then close the connections.

Security (``security``, a :class:`~mqlog.server.auth.ServerSecurity`): with
a TLS context the listener speaks TLS; with users every connection logs in
(SASL PLAIN or SCRAM-SHA-256, see ``_sasl``) before anything but ApiVersions
is answered, and only then are SaslHandshake and SaslAuthenticate served and
advertised. A non-loopback address is served only to clients that
authenticate (users, or TLS client certificates) unless ``insecure=True``: a
log directory must not be opened to a network by accident.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from mqlog.errors import ConfigError
from mqlog.logstore import Engine
from mqlog.metrics import ServerMetrics
from mqlog.server._address import format_address, is_loopback
from mqlog.server.auth import ServerSecurity
from mqlog.server.kafka._apis import EXTENSION as APIS
from mqlog.server.kafka._apis import ApiTable
from mqlog.server.kafka._connection import Connection
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._handlers import default_table
from mqlog.server.kafka._lifecycle import shutdown_hooks, stopping
from mqlog.server.kafka._limits import KafkaLimits, install_limits
from mqlog.server.kafka._sasl import SaslSession
from mqlog.server.kafka._sasl import register as register_sasl
from mqlog.server.kafka._settings import KafkaSettings, install_settings
from mqlog.server.kafka._topic_ids import cluster_id_for

_log = logging.getLogger("mqlog.server.kafka")

#: Kafka's port, the default of ``--kafka``.
DEFAULT_PORT = 9092


def check_bind(host: str, insecure: bool, security: ServerSecurity | None = None) -> None:
    """ConfigError unless ``host`` is loopback, or every client authenticates
    (``security.authenticates``: users, or TLS client certificates), or
    ``insecure`` allows anyone. TLS alone does not do: anyone can connect."""
    if is_loopback(host) or insecure or (security is not None and security.authenticates):
        return
    if security is not None and security.ssl_context is not None:
        raise ConfigError(
            f"{host} is not a loopback address: serving it needs authentication "
            f"(--users FILE or --tls-client-ca) or --insecure; TLS alone lets anyone "
            f"connect")
    raise ConfigError(
        f"{host} is not a loopback address: serving it needs authentication "
        f"(--users FILE) or --insecure (insecure=True)")


class KafkaServer:
    """A Kafka-protocol server over an open log.

    ``host``/``port``: where to listen (port 0: a free port, see
    :attr:`address`). ``advertised``: the (host, port) clients are told to
    connect to (Metadata, FindCoordinator); by default the address listened
    on. ``security``: TLS and logins (see the module docstring; default
    none). ``insecure``: allow a non-loopback ``host`` without
    authentication. ``table``: the APIs to serve (default: every API
    implemented, ``_handlers.default_table``; the SASL APIs are added to it
    when ``security`` has users). ``metrics``: where requests are counted
    (default: new :class:`~mqlog.metrics.ServerMetrics` over ``engine``; pass
    the HTTP door's to count both in one ``/metrics``), then
    ``self.state.metrics``. The server does not close the engine."""

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 advertised: tuple[str, int] | None = None, insecure: bool = False,
                 limits: KafkaLimits | None = None, settings: KafkaSettings | None = None,
                 table: ApiTable | None = None,
                 security: ServerSecurity | None = None,
                 metrics: ServerMetrics | None = None) -> None:
        check_bind(host, insecure, security)
        self.engine = engine
        self.host = host
        self.port = port
        self.advertised = advertised
        self.limits = limits or KafkaLimits()
        self.table = table or default_table()
        self.security = security or ServerSecurity()
        if self.security.users is not None:
            register_sasl(self.table)
        self.state = ServerState(engine, "", 0, cluster_id_for(engine.path))
        if metrics is not None:
            self.state.metrics = metrics
        self.state.extensions[APIS] = self.table
        install_settings(self.state, settings or KafkaSettings())
        install_limits(self.state, self.limits)
        self._listener: asyncio.Server | None = None
        self._connections: dict[Connection, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on, the real port when 0 was asked for."""
        if self._listener is None:
            raise RuntimeError("the server is not started")
        name = self._listener.sockets[0].getsockname()
        return name[0], name[1]

    async def start(self) -> None:
        """Bind and start accepting connections."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_UNSPEC
        self._listener = await asyncio.start_server(self._accept, self.host, self.port,
                                                    family=family, reuse_address=True,
                                                    ssl=self.security.ssl_context)
        host, port = self.address
        advertised = self.advertised or (host, port)
        if advertised[0] in ("0.0.0.0", "::"):
            advertised = (socket.gethostname(), advertised[1])
        self.state.host, self.state.port = advertised[0], advertised[1] or port
        stopping(self.state)  # created on this loop
        _log.info("listening on kafka://%s (advertised %s; clients' security.protocol: %s)",
                  format_address(host, port), format_address(self.state.host, self.state.port),
                  self.security.kafka_security_protocol)

    async def close(self) -> None:
        """Shut down gracefully (see the module docstring); idempotent."""
        if self._closing or self._listener is None:
            return
        self._closing = True
        self._listener.close()
        stopping(self.state).set()
        for connection in list(self._connections):
            connection.stop_reading()
        for hook in shutdown_hooks(self.state):
            try:
                await hook()
            except Exception:
                _log.exception("a shutdown hook failed")
        tasks = list(self._connections.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.limits.shutdown_timeout_s)
            for connection, task in list(self._connections.items()):
                if task in late:
                    _log.warning("closing connection from %s with requests unanswered after"
                                 " %gs", connection.peer, self.limits.shutdown_timeout_s)
                    connection.abort()
                    task.cancel()
        await self._listener.wait_closed()

    async def __aenter__(self) -> KafkaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        users = self.security.users
        connection = Connection(self.state, self.table, self.limits, reader, writer,
                                SaslSession(users) if users is not None else None)
        if self._closing:
            writer.close()
            return
        if len(self._connections) >= self.limits.max_connections:
            _log.warning("refusing connection from %s: %d connections open (max_connections)",
                         connection.peer, len(self._connections))
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        try:
            await connection.serve()
        finally:
            del self._connections[connection]
