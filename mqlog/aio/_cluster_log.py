"""The Kafka backend of ``mqlog.aio``: ``mqlog.aio.open("kafka://host:port?...")``.

A :class:`ClusterLog` is a synchronous :class:`mqlog.cluster.ClusterLog`
(``.log``: the same URL, options and errors as ``mqlog.open``) and asyncio
clients over the clients it makes, so the records, offsets, groups and errors
are those of the synchronous cluster API (confluent-kafka, librdkafka); only
where each call runs differs (see ``_cluster_producer`` and
``_cluster_consumer``). Queue groups raise UnsupportedError, as there.

Closing closes the asyncio consumers first (each after its wait in flight, so
that no librdkafka consumer is closed while a pool thread polls it), then the
producers, then the synchronous log.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from mqlog.aio._api import AsyncLog
from mqlog.aio._blocking import run_blocking
from mqlog.aio._cluster_consumer import ClusterConsumer
from mqlog.aio._cluster_producer import ClusterProducer
from mqlog.cluster import open_cluster
from mqlog.cluster._log import ClusterLog as SyncClusterLog
from mqlog.errors import IllegalStateError, UnsupportedError
from mqlog.logstore import TopicDescription


class ClusterLog(AsyncLog):
    """A Kafka cluster open for asyncio; see :func:`mqlog.aio.open`."""

    def __init__(self, log: SyncClusterLog) -> None:
        #: The synchronous cluster log underneath: topics, groups, reads by offset.
        self.log = log
        self._consumers: weakref.WeakSet[ClusterConsumer] = weakref.WeakSet()
        self._producers: weakref.WeakSet[ClusterProducer] = weakref.WeakSet()

    def producer(self, **config: Any) -> ClusterProducer:
        """A new producer (settings: ``ProducerConfig``); call it in a coroutine."""
        producer = ClusterProducer(self.log.producer(**config))
        self._producers.add(producer)
        return producer

    def consumer(self, group: str | None = None,
                 topics: Iterable[str] | str | re.Pattern[str] = (),
                 **config: Any) -> ClusterConsumer:
        """A new consumer; with ``group`` and ``topics`` a member of that group,
        joining on first use (topic names are checked then, against the
        cluster's metadata). Settings (``ConsumerConfig``) are checked now."""
        if topics and group is None:
            raise IllegalStateError("subscribe needs a group: consumer(group=...)")
        consumer = ClusterConsumer(self.log.consumer(group, (), **config), topics)
        self._consumers.add(consumer)
        return consumer

    def queue(self, group: str, topics: Iterable[str] | str, *, ack_timeout_s: float = 30.0,
              max_deliveries: int = 5, dead_letter_topic: str | None = None,
              backoff: Callable[[int], float] | None = None) -> NoReturn:
        """UnsupportedError, as ``ClusterLog.queue``: a Kafka cluster has no queue groups."""
        raise UnsupportedError("queue", "queue groups are mqlog's own; a Kafka cluster has "
                                        "none (see docs/cluster.md)")

    async def create_topic(self, name: str, partitions: int = 1, *, exist_ok: bool = False,
                           **topic_config: Any) -> TopicDescription:
        """Create a topic, in the shared executor (see ``ClusterLog.create_topic``)."""
        return await run_blocking(self.log.create_topic, name, partitions, exist_ok=exist_ok,
                                  **topic_config)

    async def close(self) -> None:
        """Close the consumers made by this log (leaving their groups), its
        producers (flushing them; sends still waiting for a partition count
        raise LogClosedError), then the log; polls waiting meanwhile raise
        LogClosedError. Idempotent."""
        for consumer in list(self._consumers):
            await consumer.close()
        for producer in list(self._producers):
            await producer.close()
        await run_blocking(self.log.close)

    def __repr__(self) -> str:
        return f"<mqlog.aio.ClusterLog {self.log.url!r}>"


def open_cluster_log(url: str, config: dict[str, Any]) -> ClusterLog:
    """Connect to the cluster of ``url`` (the arguments of ``mqlog.open``).
    Blocking: run it in the shared executor."""
    return ClusterLog(open_cluster(url, **config))
