"""What routes that wait share: waking long polls on appends, and flushing
appends of durable topics off the event loop.

- the append watch (``append_watch``): the engine's for the running loop,
  shared with the Kafka listener; a long poll reads its counter before
  looking for messages, then awaits :meth:`AppendWatch.changed`. Routes that
  append call :func:`appended` so the polls of this process wake at once;
  appends of other processes (an embedded producer) wake them within the
  watch's poll period, which runs only while someone waits.
- the flushes (``durable``): a route that appended to a topic with
  ``durability="always"`` (with ``flush=False``, in the loop) awaits
  :func:`durable` before answering. It waits on the engine's flush cycles
  for the running loop (:func:`mqlog.logstore.flush_cycles`, shared with the
  Kafka listener): the loop never blocks on the disk, and a burst of requests
  over any number of partitions shares one sync.

Invariant: :func:`durable` returns only once every offset of the partition
below the one given is on stable storage, and raises the flush's error
otherwise.
"""

from __future__ import annotations

from fastapi import FastAPI

from mqlog.logstore import AppendWatch, flush_cycles
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
    await flush_cycles(app.state.log.engine).durable(topic, partition, offset)
