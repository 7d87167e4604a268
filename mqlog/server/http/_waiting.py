"""What routes that wait share: waking long polls on appends, and flushing
appends of durable topics off the event loop.

- the append watch (``append_watch``): the engine's for the running loop,
  shared with the Kafka listener; a long poll reads its counter before
  looking for messages, then awaits :meth:`AppendWatch.changed`. Routes that
  append call :func:`appended` so the polls of this process wake at once;
  appends of other processes (an embedded producer) wake them within the
  watch's poll period, which runs only while someone waits.
- the flushes (``durable``, kept on ``app.state``, made on first use in the
  running loop): a route that appended to a topic with
  ``durability="always"`` (with ``flush=False``, in the loop) awaits
  :func:`durable` before answering. Each partition has at most one flush
  running in a worker thread; every request whose offsets it covers waits for
  it, the others for the next one, which covers every offset asked for by
  then. So the loop never blocks on fsync, and a burst of requests shares one
  fdatasync per flush.

Invariant: :func:`durable` returns only once every offset of the partition
below the one given is on stable storage (``Engine.make_durable``), and
raises the flush's error otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses

from fastapi import FastAPI

from mqlog.logstore import AppendWatch, Engine
from mqlog.logstore import append_watch as engine_watch


def append_watch(app: FastAPI) -> AppendWatch:
    """The app's append watch: the engine's for the running loop
    (:func:`mqlog.logstore.append_watch`, shared with the Kafka listener)."""
    return engine_watch(app.state.log.engine)


def appended(app: FastAPI) -> None:
    """Wake the long polls of this process now: a route just appended."""
    append_watch(app).poke()


async def durable(app: FastAPI, topic: str, partition: int, offset: int) -> None:
    """Return once every record of ``topic``/``partition`` below ``offset`` is on disk."""
    flushes: Flushes | None = getattr(app.state, "flushes", None)
    if flushes is None:
        flushes = app.state.flushes = Flushes(app.state.log.engine)
    await flushes.durable(topic, partition, offset)


@dataclasses.dataclass
class _PartitionFlushes:
    wanted: int = 0  # the highest offset asked for
    done: int = 0  # every offset below it is durable
    running: asyncio.Future[None] | None = None


class Flushes:
    """The flushes of durable partitions, one at a time per partition (see the module)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._partitions: dict[tuple[str, int], _PartitionFlushes] = {}

    async def durable(self, topic: str, partition: int, offset: int) -> None:
        state = self._partitions.setdefault((topic, partition), _PartitionFlushes())
        state.wanted = max(state.wanted, offset)
        while state.done < offset:
            if state.running is None:
                state.running = asyncio.ensure_future(self._flush(topic, partition, state))
            await asyncio.shield(state.running)

    async def _flush(self, topic: str, partition: int, state: _PartitionFlushes) -> None:
        target = state.wanted
        try:
            await asyncio.to_thread(self._engine.make_durable, topic, partition, target)
            state.done = max(state.done, target)
        finally:
            state.running = None
