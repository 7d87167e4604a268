"""What the console shows at one moment: topics with their rates, consumer
groups and queue groups with their lag per partition.

:func:`take_snapshot` samples the log through :mod:`mqlog.monitor` (the same
figures as ``mqlog stats`` and ``mqlog lag``): sizes, offsets and lag are those
of ``Log.describe_topic`` and ``Log.describe_group`` at the moment of the
sample; rates come from two samples (:func:`mqlog.monitor.topic_stats`,
:func:`mqlog.monitor.lag_rates`), so the first snapshot of a stream has none.
Internal ``__`` topics are left out, as ``mqlog stats`` does by default.
"""

from __future__ import annotations

import pydantic

from mqlog.consumer import check_dead_letter_topic
from mqlog.errors import ConfigError, UnknownTopicError
from mqlog.log import Log
from mqlog.monitor import GroupLag, LagRates, TopicSample, lag_rates, sample_topics, topic_stats

#: Tries at sampling when topics are deleted between listing and describing them.
SAMPLE_TRIES = 3


class ConsolePartition(pydantic.BaseModel):
    partition: int
    start_offset: int
    end_offset: int
    records: int
    size_bytes: int
    segments: int


class ConsoleTopic(pydantic.BaseModel):
    name: str
    partitions: list[ConsolePartition]
    records: int
    size_bytes: int
    segments: int
    #: Records per second appended, and consumed summed over every group; None
    #: in the first snapshot of a stream.
    in_per_s: float | None
    out_per_s: float | None
    oldest_record_age_ms: int | None
    #: Whether it holds dead letters (see ``mqlog.consumer.check_dead_letter_topic``).
    dead_letters: bool


class ConsoleGroupPartition(pydantic.BaseModel):
    topic: str
    partition: int
    #: Consumer group: the committed offset. Queue group: its position.
    committed_offset: int | None
    end_offset: int
    lag: int
    oldest_unconsumed_age_ms: int | None
    member_id: str | None
    #: Queue groups only (None for consumer groups).
    ready: int | None
    in_flight: int | None
    delayed: int | None
    dead_lettered: int | None


class ConsoleGroup(pydantic.BaseModel):
    group: str
    #: "consumer" or "queue".
    kind: str
    state: str
    members: int
    lag: int
    #: Sums over the partitions with rates; None in the first snapshot.
    in_per_s: float | None
    out_per_s: float | None
    drain_s: float | None
    partitions: list[ConsoleGroupPartition]


class ConsoleSnapshot(pydantic.BaseModel):
    """One event of ``/console/events``."""

    #: The log's clock when sampled (ms since the epoch).
    now_ms: int
    topics: list[ConsoleTopic]
    groups: list[ConsoleGroup]


def take_snapshot(log: Log, previous: TopicSample | None
                  ) -> tuple[TopicSample, ConsoleSnapshot]:
    """A sample of ``log`` now, and the snapshot of it with rates since
    ``previous`` (None: no rates). Reads only."""
    sample = _sample(log)
    stats = topic_stats(previous, sample) if previous is not None else topic_stats(sample)
    rates = lag_rates(previous.lag, sample.lag) if previous is not None else None
    topics = []
    for stat in stats:
        description = sample.topics[stat.topic]
        topics.append(ConsoleTopic(
            name=stat.topic, records=stat.records, size_bytes=stat.bytes,
            segments=stat.segments, in_per_s=stat.in_per_s, out_per_s=stat.out_per_s,
            oldest_record_age_ms=stat.oldest_record_age_ms,
            dead_letters=_holds_dead_letters(log, stat.topic),
            partitions=[ConsolePartition(
                partition=p.partition, start_offset=p.start_offset, end_offset=p.end_offset,
                records=p.record_count, size_bytes=p.size_bytes, segments=p.segment_count)
                for p in description.partitions]))
    groups = [_group(group, rates) for group in sample.lag.groups]
    return sample, ConsoleSnapshot(now_ms=sample.now_ms, topics=topics, groups=groups)


def _sample(log: Log) -> TopicSample:
    for _ in range(SAMPLE_TRIES - 1):
        try:
            return sample_topics(log, _shown_topics(log))
        except UnknownTopicError:
            continue  # deleted meanwhile: list again
    return sample_topics(log, _shown_topics(log))


def _shown_topics(log: Log) -> list[str]:
    return [name for name in log.topics() if not name.startswith("__")]


def _holds_dead_letters(log: Log, topic: str) -> bool:
    try:
        return check_dead_letter_topic(log.engine, topic)
    except (ConfigError, UnknownTopicError):
        return False


def _group(group: GroupLag, rates: LagRates | None) -> ConsoleGroup:
    group_rates = rates.of_group(group) if rates is not None else None
    partitions = []
    for p in group.partitions:
        depth = p.depth
        partitions.append(ConsoleGroupPartition(
            topic=p.topic, partition=p.partition, committed_offset=p.committed_offset,
            end_offset=p.end_offset, lag=p.lag,
            oldest_unconsumed_age_ms=p.oldest_unconsumed_age_ms, member_id=p.member_id,
            ready=depth.ready if depth else None, in_flight=depth.in_flight if depth else None,
            delayed=depth.delayed if depth else None,
            dead_lettered=depth.dead_lettered if depth else None))
    return ConsoleGroup(
        group=group.group, kind=group.kind, state=group.state, members=group.members,
        lag=group.total_lag, partitions=partitions,
        in_per_s=group_rates.in_per_s if group_rates else None,
        out_per_s=group_rates.out_per_s if group_rates else None,
        drain_s=group_rates.drain_s if group_rates else None)
