"""The embedded backend of ``mqlog.aio``: a log directory opened in this process.

An :class:`EmbeddedLog` is a synchronous :class:`~mqlog.Log` (``.log``) and
asyncio clients over the clients it makes, so every rule of the synchronous
API holds unchanged. The Log tracks the synchronous clients and closes them
with itself; the asyncio wrappers own nothing more that needs closing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from mqlog.aio._api import AsyncLog
from mqlog.aio._blocking import run_blocking
from mqlog.aio._embedded_consumer import EmbeddedConsumer
from mqlog.aio._embedded_producer import EmbeddedProducer
from mqlog.aio._embedded_queue import EmbeddedQueueConsumer
from mqlog.consumer import offset_store
from mqlog.log import Log
from mqlog.logstore import TopicDescription, append_watch


class EmbeddedLog(AsyncLog):
    """A log directory open for asyncio; see :func:`mqlog.aio.open`."""

    def __init__(self, log: Log) -> None:
        #: The synchronous Log underneath: storage calls, group administration.
        self.log = log

    def producer(self, **config: Any) -> EmbeddedProducer:
        """A new producer (settings: ``ProducerConfig``); call it in a coroutine."""
        return EmbeddedProducer(self.log.producer(**config), append_watch(self.log.engine))

    def consumer(self, group: str | None = None,
                 topics: Iterable[str] | str | re.Pattern[str] = (),
                 **config: Any) -> EmbeddedConsumer:
        """A new consumer; with ``group`` and ``topics`` a member of that group,
        joining on first use. Settings (``ConsumerConfig``) and topic names are
        checked now."""
        return EmbeddedConsumer(self.log.consumer(group, (), **config), self.log.engine,
                                topics)

    def queue(self, group: str, topics: Iterable[str] | str, *, ack_timeout_s: float = 30.0,
              max_deliveries: int = 5, dead_letter_topic: str | None = None,
              backoff: Callable[[int], float] | None = None) -> EmbeddedQueueConsumer:
        """A worker of queue group ``group`` over ``topics`` (see ``Log.queue``)."""
        return EmbeddedQueueConsumer(self.log.queue(
            group, topics, ack_timeout_s=ack_timeout_s, max_deliveries=max_deliveries,
            dead_letter_topic=dead_letter_topic, backoff=backoff))

    async def create_topic(self, name: str, partitions: int = 1, *, exist_ok: bool = False,
                           **topic_config: Any) -> TopicDescription:
        """Create a topic, in the shared executor (it syncs its files); see
        ``Log.create_topic``."""
        return await run_blocking(self.log.create_topic, name, partitions, exist_ok=exist_ok,
                                  **topic_config)

    async def close(self) -> None:
        """Close the clients made by this log and the log, in the shared executor;
        consumers and workers waiting meanwhile raise LogClosedError. Idempotent."""
        engine = self.log.engine
        if engine.closed:
            return
        watch = append_watch(engine)
        try:
            await run_blocking(self.log.close)
        finally:
            watch.poke()

    def __repr__(self) -> str:
        return f"<mqlog.aio.EmbeddedLog {self.log.path!r}>"


def open_embedded(path: str | os.PathLike[str], config: dict[str, Any]) -> EmbeddedLog:
    """Open the log and its committed-offsets store (which creates its topic on
    first use), so that making a group consumer on the loop later syncs nothing.
    Blocking: run it in the shared executor."""
    log = Log(path, **config)
    try:
        offset_store(log.engine)
    except BaseException:
        log.close()
        raise
    return EmbeddedLog(log)
