"""A server's lifecycle as handlers see it: shutdown hooks and the stopping flag.

A feature that keeps state across requests (the group coordinator) registers
a hook with :func:`on_shutdown`; a graceful shutdown stops reading requests,
sets :func:`stopping`, awaits every hook (in registration order; one that
raises is logged and the others still run), then waits for the requests in
flight to be answered and closes the connections. Long waits in handlers
(long-poll Fetch, JoinGroup) should end early when ``stopping`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mqlog.server.kafka._context import ServerState

ShutdownHook = Callable[[], Awaitable[None]]

_HOOKS = "shutdown_hooks"
_STOPPING = "stopping"


def on_shutdown(server: ServerState, hook: ShutdownHook) -> None:
    """Have the graceful shutdown of ``server`` await ``hook()``."""
    shutdown_hooks(server).append(hook)


def shutdown_hooks(server: ServerState) -> list[ShutdownHook]:
    """The hooks registered so far, in order (the list itself)."""
    hooks = server.extensions.setdefault(_HOOKS, [])
    assert isinstance(hooks, list)
    return hooks


def stopping(server: ServerState) -> asyncio.Event:
    """Set once the server has begun to shut down."""
    event = server.extensions.setdefault(_STOPPING, asyncio.Event())
    assert isinstance(event, asyncio.Event)
    return event
