"""The named limits of a Kafka server, with their defaults and the reasons.

Every queue and size a client can grow on the server is bounded here; the
table in docs/server.md lists the same fields.
"""

from __future__ import annotations

import dataclasses

from mqlog.errors import ConfigError
from mqlog.server.kafka._context import ServerState

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class KafkaLimits:
    """Bounds on what clients may make the server hold.

    ``max_request_bytes``: the largest request frame (size prefix excluded),
    100 MiB as Kafka's ``socket.request.max.bytes``; a larger size closes the
    connection before a byte of the body is read, so a bad size prefix never
    allocates. ``max_connections``: open client connections at once; one more
    is accepted and closed at once with a logged line (Kafka's
    ``max.connections`` is unbounded by default; an idle connection here costs
    a task and about 9 KiB, so 10,000 hold about 90 MiB; ``run_server`` raises
    the process's open-files limit to fit them).
    ``max_in_flight_per_connection``: requests read from one connection and not
    yet answered; past it the server stops reading that connection
    until the oldest is answered (Kafka reads one at a time; Java clients send
    at most 5 by default, ``max.in.flight.requests.per.connection``).
    ``max_waiting_per_connection``: requests of one connection that are
    handled and wait only for a flush (a Produce to a ``durability="always"``
    topic); each holds a few hundred bytes (its per-partition offsets, not
    its records), and past it the server stops reading that connection until
    the oldest is answered. librdkafka keeps up to 1,000,000 requests in
    flight, one per record with ``linger.ms=0``: 1,024 of them let a
    producer append several fdatasyncs' worth of records while a flush runs,
    so the next flush covers them all (group commit) instead of queueing
    them 32 at a time.
    ``idle_timeout_s``: a connection with no request for this long and nothing
    in flight is closed, as Kafka's ``connections.max.idle.ms`` (10 minutes).
    ``shutdown_timeout_s``: how long a graceful shutdown waits for in-flight
    requests to be answered before it cancels them (a long-poll Fetch or a
    JoinGroup waits for less than this; Kafka's
    ``controlled.shutdown`` waits 30 s by default too).
    """

    max_request_bytes: int = 100 * MiB
    max_connections: int = 10_000
    max_in_flight_per_connection: int = 32
    max_waiting_per_connection: int = 1024
    idle_timeout_s: float = 600.0
    shutdown_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_connections", "max_in_flight_per_connection",
                     "max_waiting_per_connection"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, not {value!r}")
        for name in ("idle_timeout_s", "shutdown_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a number > 0, not {value!r}")


_EXTENSION = "limits"


def install_limits(server: ServerState, limits: KafkaLimits) -> None:
    """Keep ``limits`` on ``server`` for the handlers that report them."""
    server.extensions[_EXTENSION] = limits


def limits_of(server: ServerState) -> KafkaLimits:
    """The limits of ``server`` (the defaults if none were installed)."""
    found = server.extensions.get(_EXTENSION)
    return found if isinstance(found, KafkaLimits) else KafkaLimits()
