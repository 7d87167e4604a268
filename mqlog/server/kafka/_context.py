"""What every Kafka API handler gets: the server's shared state.

A handler is ``async def handle(server: ServerState, request: Request) ->
response``, where ``request.body`` is the decoded kio request entity and the
response is an instance of ``response_type(request.api_key,
request.api_version)`` (build it with :func:`~mqlog.server.kafka._codec.build`,
which drops the fields a version does not have). A handler may also be a
plain ``def`` of the same signature: the connection then calls it in its
reader, without a task, as soon as its turn comes, which saves a task and
two event loop turns per request on the hot path (Produce, Fetch); such a
handler never waits: what must wait it returns as a :class:`Later`.
Handlers run on the server's event loop: anything that may block for long
(a flush under ``durability="always"``, waiting for appends) goes through
``asyncio.to_thread`` or an awaitable; short file operations run inline.
A handler answers every error a client can cause with a Kafka error code in
its response; an exception escaping a handler is a server bug, logged, and
closes only that connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from mqlog.logstore import Engine
from mqlog.metrics import ServerMetrics
from mqlog.server.kafka._codec import Entity, Request

#: The broker id this server reports: one broker, the leader of every partition
#: and the coordinator of every group.
NODE_ID = 0


@dataclasses.dataclass
class ServerState:
    """Shared by every connection of one server.

    ``host``/``port``: the advertised address clients are told to connect to
    (Metadata, FindCoordinator). ``cluster_id``: stable for a log directory.
    ``extensions``: per-feature state owned by the modules that create it
    (the group coordinator keeps its groups there under ``"groups"``).
    ``metrics``: the server's request counters and its engine's counters
    (``/metrics``); each request answered is counted there (``_request_metrics``).
    """

    engine: Engine
    host: str
    port: int
    cluster_id: str
    node_id: int = NODE_ID
    extensions: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: ServerMetrics = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.metrics = ServerMetrics(self.engine)


class Later:
    """What a handler returns when its response is not ready but the part of the
    request that must happen in request order is done: the connection starts
    the requests behind it and writes ``future``'s response (still in request
    order) once it resolves. Produce returns one while its appends, already
    made, are being flushed, so that pipelined produces share flushes; Fetch
    while it waits for records.

    ``waiting``: while the future runs, the request holds nothing but small
    state (a Produce's per-partition offsets) and its response is as small,
    so the connection counts it against ``max_waiting_per_connection``
    instead of ``max_in_flight_per_connection`` and forgets its request body
    (``KafkaLimits``). A Fetch's Later is not waiting: its response may be
    large."""

    __slots__ = ("future", "waiting")

    def __init__(self, future: asyncio.Future[Entity], *, waiting: bool = False) -> None:
        self.future = future
        self.waiting = waiting


#: A handler: ``async def`` (its response awaited), or a plain function.
Handler = Callable[[ServerState, Request], "Awaitable[Entity] | Entity"]

#: The address (host) of the client whose connection is being served: each
#: connection sets it in its own context, so a handler sees its request's client.
CLIENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar(
    "mqlog_kafka_client_address", default="")
