"""Flushes of durable partitions for the Produce handler, one at a time per
partition, shared by every produce waiting on it.

A produce to a topic with ``durability="always"`` appends at once and then
waits until its offsets are on disk. Waiting through a worker thread per
request cost a thread handoff per record when producers send one record per
request (``linger.ms=0``), and the engine's group commit alone could not
make up for it: requests queued for threads. Here each partition has at most
one flush running; a request whose offsets it covers waits for it, the
others wait for the next one, which starts when the running one ends and
covers every offset asked for by then. So a burst of requests costs one
thread handoff and one fdatasync per flush, not per request.

Invariant: :meth:`Flushes.durable` returns only once every offset below the
one it was given is on stable storage (``Engine.make_durable`` covered it),
and raises the flush's error otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses

from mqlog.server.kafka._context import ServerState

#: Where a server keeps its flushes in ``ServerState.extensions``.
EXTENSION = "flushes"


@dataclasses.dataclass
class _PartitionFlushes:
    wanted: int = 0  # the highest offset asked for
    done: int = 0  # every offset below it is durable
    running: asyncio.Future[None] | None = None


class Flushes:
    """The durable partitions' flushes of one server."""

    def __init__(self, server: ServerState) -> None:
        self._server = server
        self._partitions: dict[tuple[str, int], _PartitionFlushes] = {}

    async def durable(self, topic: str, partition: int, offset: int) -> None:
        """Return once every offset of the partition below ``offset`` is on disk."""
        state = self._partitions.setdefault((topic, partition), _PartitionFlushes())
        state.wanted = max(state.wanted, offset)
        while state.done < offset:
            if state.running is None:
                state.running = asyncio.ensure_future(self._flush(topic, partition, state))
            await asyncio.shield(state.running)

    async def _flush(self, topic: str, partition: int, state: _PartitionFlushes) -> None:
        target = state.wanted
        try:
            await asyncio.to_thread(self._server.engine.make_durable, topic, partition, target)
            state.done = max(state.done, target)
        finally:
            state.running = None


def flushes(server: ServerState) -> Flushes:
    """The server's flushes, made on first use."""
    found = server.extensions.get(EXTENSION)
    if found is None:
        found = server.extensions[EXTENSION] = Flushes(server)
    return found
