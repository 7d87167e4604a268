"""The state of a log as Prometheus metrics, read afresh at each scrape.

:class:`LogCollector` is a custom collector (prometheus_client's practice for
exporters): it keeps no metric objects in step with the log; each
``collect()`` describes the topics and groups as they are now, through the
public methods of the Log (``describe_topic``, ``list_groups``,
``describe_group``), and the figures are :mod:`mqlog.monitor`'s (lag, queue
depth, oldest unconsumed age: defined there, not here).

Names follow kafka_exporter's where it has the metric, so that dashboards and
alerts written for it work unchanged; the others are ``mqlog_``, in base units
(seconds, bytes). docs/metrics.md lists them all.

A topic or group deleted while a scrape runs is left out of that scrape; any
other failure to describe one (a damaged topic) is logged and leaves only it
out: a scrape never fails because of one topic or group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mqlog.errors import (
    MqlogError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from mqlog.log import Log
from mqlog.logstore import TopicDescription
from mqlog.monitor import GroupLag, group_lag

_log = logging.getLogger("mqlog.metrics")
T = TypeVar("T")

#: The labels of a group's metrics (kafka_exporter's name for a group, used for
#: queue groups too: ``kind`` in ``mqlog_consumergroup_info`` tells them apart).
GROUP = "consumergroup"


class _TopicFamilies:
    """The per-topic and per-partition families of one scrape."""

    def __init__(self) -> None:
        self.partitions = GaugeMetricFamily(
            "kafka_topic_partitions", "Partitions of the topic.", labels=["topic"])
        self.current_offset = GaugeMetricFamily(
            "kafka_topic_partition_current_offset",
            "End offset of the partition: the offset the next record appended gets.",
            labels=["topic", "partition"])
        self.oldest_offset = GaugeMetricFamily(
            "kafka_topic_partition_oldest_offset",
            "Log start offset of the partition: its first offset still kept.",
            labels=["topic", "partition"])
        self.size = GaugeMetricFamily(
            "mqlog_topic_partition_size_bytes", "Bytes on disk of the partition's segments.",
            labels=["topic", "partition"])
        self.segments = GaugeMetricFamily(
            "mqlog_topic_partition_segments", "Segments of the partition.",
            labels=["topic", "partition"])

    def add(self, topic: TopicDescription) -> None:
        self.partitions.add_metric([topic.name], len(topic.partitions))
        for p in topic.partitions:
            labels = [topic.name, str(p.partition)]
            self.current_offset.add_metric(labels, p.end_offset)
            self.oldest_offset.add_metric(labels, p.start_offset)
            self.size.add_metric(labels, p.size_bytes)
            self.segments.add_metric(labels, p.segment_count)

    def __iter__(self) -> Iterator[Metric]:
        return iter((self.partitions, self.current_offset, self.oldest_offset, self.size,
                     self.segments))


class _GroupFamilies:
    """The per-group and per-partition families of one scrape (both kinds of group)."""

    def __init__(self) -> None:
        partition = [GROUP, "topic", "partition"]
        self.info = GaugeMetricFamily(
            "mqlog_consumergroup_info",
            "1 per group: its kind (consumer or queue) and state (Empty, Stable, "
            "Rebalancing).", labels=[GROUP, "kind", "state"])
        self.members = GaugeMetricFamily(
            "kafka_consumergroup_members", "Live members of the group (queue groups: workers).",
            labels=[GROUP])
        self.current_offset = GaugeMetricFamily(
            "kafka_consumergroup_current_offset",
            "Committed offset of the group in the partition (queue groups: the first "
            "unfinished record); absent where it never committed.", labels=partition)
        self.current_offset_sum = GaugeMetricFamily(
            "kafka_consumergroup_current_offset_sum",
            "Sum of the group's committed offsets in the topic's partitions.",
            labels=[GROUP, "topic"])
        self.lag = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "Offsets from the group's position to the end of the partition (queue groups: "
            "records not finished); see mqlog.monitor.", labels=partition)
        self.lag_sum = GaugeMetricFamily(
            "kafka_consumergroup_lag_sum", "Lag of the group summed over the topic's partitions.",
            labels=[GROUP, "topic"])
        self.oldest_age = GaugeMetricFamily(
            "mqlog_consumergroup_oldest_unconsumed_age_seconds",
            "Age of the record at the group's position, the oldest it has not consumed; "
            "absent when its lag is 0.", labels=partition)
        self.ready = GaugeMetricFamily(
            "mqlog_queue_ready_records", "Records of the queue group that may be handed out now.",
            labels=partition)
        self.in_flight = GaugeMetricFamily(
            "mqlog_queue_in_flight_records",
            "Records of the queue group held by a worker, not acknowledged yet.",
            labels=partition)
        self.delayed = GaugeMetricFamily(
            "mqlog_queue_delayed_records",
            "Records of the queue group waiting for their time (a delay or a nack's back-off).",
            labels=partition)
        self.dead_lettered = CounterMetricFamily(
            "mqlog_queue_dead_lettered_records",
            "Records of the queue group moved to its dead-letter topic.", labels=partition)
        self.expired = CounterMetricFamily(
            "mqlog_queue_expired_records",
            "Records of the queue group that expired before being finished.", labels=partition)

    def add(self, group: GroupLag) -> None:
        name = group.group
        self.info.add_metric([name, group.kind, group.state], 1)
        self.members.add_metric([name], group.members)
        offset_sums: dict[str, int] = {}
        lag_sums: dict[str, int] = {}
        for p in group.partitions:
            labels = [name, p.topic, str(p.partition)]
            lag_sums[p.topic] = lag_sums.get(p.topic, 0) + p.lag
            self.lag.add_metric(labels, p.lag)
            if p.committed_offset is not None:
                offset_sums[p.topic] = offset_sums.get(p.topic, 0) + p.committed_offset
                self.current_offset.add_metric(labels, p.committed_offset)
            if p.oldest_unconsumed_age_ms is not None:
                self.oldest_age.add_metric(labels, p.oldest_unconsumed_age_ms / 1000)
            if p.depth is not None:
                self.ready.add_metric(labels, p.depth.ready)
                self.in_flight.add_metric(labels, p.depth.in_flight)
                self.delayed.add_metric(labels, p.depth.delayed)
                self.dead_lettered.add_metric(labels, p.depth.dead_lettered)
                self.expired.add_metric(labels, p.depth.expired)
        for topic, total in offset_sums.items():
            self.current_offset_sum.add_metric([name, topic], total)
        for topic, total in lag_sums.items():
            self.lag_sum.add_metric([name, topic], total)

    def __iter__(self) -> Iterator[Metric]:
        return iter((self.info, self.members, self.current_offset, self.current_offset_sum,
                     self.lag, self.lag_sum, self.oldest_age, self.ready, self.in_flight,
                     self.delayed, self.dead_lettered, self.expired))


class LogCollector:
    """A prometheus_client collector of ``log``'s topics and groups (see the module
    docstring). ``topics`` / ``groups``: only these (default: every one, internal
    topics included); a name that does not exist is left out, as a deleted one."""

    def __init__(self, log: Log, *, topics: Collection[str] | None = None,
                 groups: Collection[str] | None = None) -> None:
        self.log = log
        self.topics = None if topics is None else sorted(set(topics))
        self.groups = None if groups is None else sorted(set(groups))

    def describe(self) -> list[Metric]:
        """The families :meth:`collect` yields, without samples (what a registry
        checks names with, without scraping the log)."""
        return [*_TopicFamilies(), *_GroupFamilies()]

    def collect(self) -> Iterator[Metric]:
        """Every family, built from the log's state now."""
        log = self.log
        topics = _TopicFamilies()
        for name in self.topics if self.topics is not None else log.topics():
            description = _described(f"topic {name!r}", log.describe_topic, name)
            if description is not None:
                topics.add(description)
        yield from topics
        groups = _GroupFamilies()
        for name in self.groups if self.groups is not None else sorted(log.list_groups()):
            # Describing a group whose topic is being deleted may raise UnknownTopicError.
            group = _described(f"group {name!r}", log.describe_group, name)
            if group is not None:
                groups.add(group_lag(group))
        yield from groups


#: What describing a topic or group raises when it was deleted during the scrape.
_GONE = (UnknownTopicError, UnknownPartitionError, UnknownGroupError)


def _described(what: str, describe: Callable[[str], T], name: str) -> T | None:
    """``describe(name)``; None when it was deleted meanwhile, or could not be
    described (logged)."""
    try:
        return describe(name)
    except _GONE:
        return None
    except (MqlogError, OSError):
        _log.warning("metrics: %s left out of this scrape", what, exc_info=True)
        return None
