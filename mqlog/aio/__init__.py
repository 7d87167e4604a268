"""asyncio clients of mqlog: the verbs of the synchronous API, awaited.

    import mqlog.aio

    async with mqlog.aio.open("data") as log:
        await log.create_topic("orders", exist_ok=True)
        producer = log.producer()
        metadata = await producer.send("orders", b"one")
        async with log.consumer("billing", ["orders"],
                                auto_offset_reset="earliest") as consumer:
            async for message in consumer:
                ...
                await consumer.commit()

A waiting ``poll`` or ``receive`` is woken by an append of any process
without a thread of its own: one append watch per event loop per log
(``mqlog.logstore.append_watch``). Calls that may block for milliseconds or
more (fdatasyncs, group joins, commits, closing) run in one small shared
executor (``_blocking``). The public types are abstract (``_api``): a backend
implements them; the embedded one (a log directory, ``_embedded_*``) is the
one :func:`open` gives.
"""

from __future__ import annotations

import os
import re
from typing import Any

from mqlog.aio._api import (
    AsyncConsumer,
    AsyncLog,
    AsyncProducer,
    AsyncQueueConsumer,
    AsyncQueueMessage,
)
from mqlog.aio._embedded_log import EmbeddedLog, Opening
from mqlog.errors import ConfigError

__all__ = [
    "AsyncConsumer",
    "AsyncLog",
    "AsyncProducer",
    "AsyncQueueConsumer",
    "AsyncQueueMessage",
    "EmbeddedLog",
    "Opening",
    "open",
]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def open(path: str | os.PathLike[str], **config: Any) -> Opening:  # noqa: A001 - as mqlog.open
    """Open (creating if missing) the log directory at ``path`` for asyncio: the
    same arguments as :func:`mqlog.open`. ``await`` the result for an
    :class:`AsyncLog`, or ``async with`` it to close the log on the way out.
    Opening (recovery) and closing run in the shared executor.

    A URL (``scheme://...``) raises ConfigError: only log directories have a
    backend here."""
    if isinstance(path, str) and _URL.match(path):
        raise ConfigError(f"no mqlog.aio backend for {path.split('://')[0]}:// URLs; "
                          f"give a log directory")
    return Opening(path, config)
