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
implements them. :func:`open` gives the embedded one for a log directory
(``_embedded_*``) and the Kafka one for a ``kafka://`` URL (``_cluster_*``:
the synchronous ``mqlog.cluster`` clients, with waits for records in the
shared executor, one in flight per consumer, since librdkafka wakes nothing
else).
"""

from __future__ import annotations

import importlib.util
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
from mqlog.aio._embedded_log import EmbeddedLog, open_embedded
from mqlog.aio._opening import Opening
from mqlog.cluster import INSTALL_HINT, is_cluster_url
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


def open(path: str | os.PathLike[str], **config: Any) -> Opening[AsyncLog]:  # noqa: A001 - as mqlog.open
    """Open (creating if missing) the log directory at ``path``, or connect to
    the Kafka cluster of a ``kafka://`` URL, for asyncio: the same arguments as
    :func:`mqlog.open`. ``await`` the result for an :class:`AsyncLog`, or
    ``async with`` it to close the log on the way out. Opening (recovery, or
    connecting) and closing run in the shared executor.

    A directory gives an :class:`EmbeddedLog`; a ``kafka://`` URL a
    ``ClusterLog`` over :class:`mqlog.cluster.ClusterLog` (confluent-kafka,
    the extra ``mqlog[kafka]``: ConfigError without it), whose queue groups
    raise UnsupportedError. Other URLs raise ConfigError."""
    if is_cluster_url(path):
        url = str(path)
        if importlib.util.find_spec("confluent_kafka") is None:
            raise ConfigError(f"{url!r} needs confluent-kafka, the Kafka client: "
                              f"{INSTALL_HINT}")
        from mqlog.aio._cluster_log import open_cluster_log

        return Opening(lambda: open_cluster_log(url, config))
    if isinstance(path, str) and _URL.match(path):
        raise ConfigError(f"no mqlog.aio backend for {path.split('://')[0]}:// URLs; "
                          f"give a log directory or a kafka:// URL")
    return Opening(lambda: open_embedded(path, config))
