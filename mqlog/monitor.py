"""Lag and rates of groups and topics: the figures of ``mqlog lag``, ``mqlog
stats`` and ``mqlog demo``, for any tool that shows them (an HTTP API, metrics).

Nothing here prints. Two functions read a log (:func:`sample_lag`,
:func:`sample_topics`), through the public methods of the session that
``mqlog.open()`` returns (:class:`LogView`); everything else is arithmetic on
their frozen samples, so the same two samples give every tool the same figures.

Definitions (offsets are those of one partition; ``seconds`` is the time
between two samples, on the monotonic clock):

- **Lag** of a consumer group in a partition: the offsets from its position to
  the end, ``max(end_offset - position, 0)`` with ``position =
  max(committed_offset, log_start_offset)``; a partition the group never
  committed counts from the log start offset. It counts offsets, not records:
  in a compacted topic the offsets compaction removed between the position and
  the end still count, so the lag is an upper bound of the records left to
  read (as Kafka reports it). A committed offset past the end has lag 0.
  :func:`partition_lag` is this definition; ``Log.describe_group`` computes it.
- **Lag** of a queue group: the records not finished yet (ready, in flight
  or delayed): the offsets from its position to the end minus those above the
  position already acknowledged or dead-lettered.
- **Done** (:attr:`PartitionLag.done`): ``end_offset - lag``, the offsets below
  the end the group no longer has to read. It only grows while the group
  reads, acknowledges, or retention deletes records it had not read.
- **Rates** between two samples (:func:`rate`): ``in_per_s = max(end_after -
  end_before, 0) / seconds`` (records appended), ``out_per_s = max(done_after -
  done_before, 0) / seconds`` (records consumed), so that when nothing went
  back ``lag_after == lag_before + (in_per_s - out_per_s) * seconds`` exactly.
  Across a reset: a figure that went back (an offset reset to an earlier
  point, a topic deleted and re-created) gives a rate of 0 for that interval,
  never a negative one; a reset forward counts as consumed, as two samples
  cannot tell it from reading. A partition found in only one of the two samples
  has no rate and is left out of every sum.
- **Drain time** (:func:`drain_seconds`): 0 when the lag is 0, ``lag /
  (out_per_s - in_per_s)`` when records go out faster than they come in, else
  None (the lag does not shrink at these rates).
- **Oldest unconsumed age**: ms from the timestamp of the record at the
  group's position to now (``Log.now_ms``); None when the lag is 0.
- **Oldest record age** of a topic: ms from the smallest timestamp among the
  first records of its partitions to now; None when every partition is empty.
- Every total (a group's lag, rates and queue depth; a topic's records, bytes,
  segments and rates) is the sum of its parts as defined above.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from mqlog.errors import UnknownGroupError

if TYPE_CHECKING:
    from mqlog.consumer import GroupDescription
    from mqlog.logstore import Record, TopicDescription

__all__ = [
    "GroupLag",
    "GroupRates",
    "LagRates",
    "LagSample",
    "LogView",
    "PartitionKey",
    "PartitionLag",
    "QueueDepth",
    "Rates",
    "TopicSample",
    "TopicStats",
    "drain_seconds",
    "group_lag",
    "lag_rates",
    "partition_lag",
    "rate",
    "sample_lag",
    "sample_topics",
    "topic_stats",
]

#: (group, topic, partition): one partition as seen by one group.
PartitionKey = tuple[str, str, int]


class LogView(Protocol):
    """What sampling reads of a log: the public methods of ``mqlog.open()``'s session."""

    def list_groups(self) -> list[str]: ...

    def describe_group(self, group: str) -> GroupDescription: ...

    def describe_topic(self, name: str) -> TopicDescription: ...

    def read(self, topic: str, partition: int, offset: int,
             max_records: int = ...) -> list[Record]: ...

    def now_ms(self) -> int: ...


def partition_lag(committed_offset: int | None, log_start_offset: int, end_offset: int) -> int:
    """A consumer group's lag in a partition (see the module docstring): never
    negative, at most ``end_offset - log_start_offset``."""
    position = log_start_offset if committed_offset is None else max(committed_offset,
                                                                      log_start_offset)
    return max(end_offset - position, 0)


def rate(before: int, after: int, seconds: float) -> float:
    """Per second, how much a figure that only grows (an end offset, a done mark) grew
    over ``seconds``; a figure that went back counts 0. ValueError unless
    ``seconds`` > 0."""
    if not seconds > 0:
        raise ValueError(f"a rate needs a time span > 0, not {seconds!r}")
    return max(after - before, 0) / seconds


def drain_seconds(lag: int, in_per_s: float, out_per_s: float) -> float | None:
    """Seconds until the lag reaches 0 at these rates; None if it never does."""
    if lag <= 0:
        return 0.0
    return lag / (out_per_s - in_per_s) if out_per_s > in_per_s else None


# -- groups -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QueueDepth:
    """Records of a queue group by state, in one partition or summed over several."""

    #: May be handed out now.
    ready: int
    #: Held by a worker, not acknowledged yet.
    in_flight: int
    #: Waiting for their time (a delay or a nack's back-off).
    delayed: int
    #: Counted so far: records that expired, and records moved to the dead-letter topic.
    expired: int
    dead_lettered: int

    @classmethod
    def total(cls, parts: Iterable[QueueDepth]) -> QueueDepth:
        """The sum of ``parts`` (all zero for none)."""
        sums = [0, 0, 0, 0, 0]
        for part in parts:
            for index, value in enumerate(dataclasses.astuple(part)):
                sums[index] += value
        return cls(*sums)


@dataclasses.dataclass(frozen=True)
class PartitionLag:
    """One partition of one group at one moment, with the member that owns it."""

    group: str
    topic: str
    partition: int
    #: Consumer group: the committed offset (None: never committed). Queue group:
    #: its position, the first unfinished record.
    committed_offset: int | None
    end_offset: int
    lag: int
    oldest_unconsumed_age_ms: int | None
    #: The member that owns the partition, if a live one does (never for queue
    #: groups, whose workers share every partition), its host and process id.
    member_id: str | None
    host: str | None
    pid: int | None
    #: Queue groups only.
    depth: QueueDepth | None = None

    @property
    def key(self) -> PartitionKey:
        return self.group, self.topic, self.partition

    @property
    def done(self) -> int:
        """``end_offset - lag``: the offsets the group no longer has to read."""
        return self.end_offset - self.lag


@dataclasses.dataclass(frozen=True)
class GroupLag:
    """One group at one moment: its state and every partition it has a position in."""

    group: str
    #: "consumer" or "queue".
    kind: str
    #: "Empty", "Stable" or "Rebalancing" (see ``Log.describe_group``).
    state: str
    generation: int
    #: Live members (queue groups: workers).
    members: int
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def depth(self) -> QueueDepth | None:
        """A queue group's depth summed over its partitions; None for a consumer group."""
        if self.kind != "queue":
            return None
        return QueueDepth.total(p.depth for p in self.partitions if p.depth is not None)


@dataclasses.dataclass(frozen=True)
class LagSample:
    """Groups at one moment (``taken_s``: ``time.monotonic()``)."""

    taken_s: float
    groups: tuple[GroupLag, ...]

    def partitions(self) -> dict[PartitionKey, PartitionLag]:
        """Every partition of every group, by key."""
        return {p.key: p for group in self.groups for p in group.partitions}


def group_lag(description: GroupDescription) -> GroupLag:
    """A group description (``Log.describe_group``) as a :class:`GroupLag`."""
    members = {member.member_id: member for member in description.members}
    partitions = []
    for p in description.partitions:
        member = members.get(p.member_id) if p.member_id else None
        depth = None
        if description.kind == "queue":
            depth = QueueDepth(p.ready or 0, p.in_flight or 0, p.delayed or 0, p.expired or 0,
                               p.dead_lettered or 0)
        partitions.append(PartitionLag(
            description.group, p.topic, p.partition, p.committed_offset, p.end_offset, p.lag,
            p.oldest_unconsumed_age_ms, p.member_id, member.host if member else None,
            member.pid if member else None, depth))
    return GroupLag(description.group, description.kind, description.state,
                    description.generation, len(description.members), tuple(partitions))


def sample_lag(log: LogView, group: str | None = None, *,
               clock: Callable[[], float] = time.monotonic) -> LagSample:
    """``group`` now, or every group (then a group deleted while sampling is left
    out); an unknown ``group`` raises UnknownGroupError."""
    names = [group] if group is not None else log.list_groups()
    groups = []
    for name in names:
        try:
            groups.append(group_lag(log.describe_group(name)))
        except UnknownGroupError:
            if group is not None:
                raise
    return LagSample(clock(), tuple(groups))


@dataclasses.dataclass(frozen=True)
class Rates:
    """Records per second appended (in) and consumed (out)."""

    in_per_s: float
    out_per_s: float


@dataclasses.dataclass(frozen=True)
class GroupRates:
    """A group's rates, summed over its partitions, and its drain time."""

    in_per_s: float
    out_per_s: float
    #: See :func:`drain_seconds`.
    drain_s: float | None


@dataclasses.dataclass(frozen=True)
class LagRates:
    """The rates of every partition found in two lag samples."""

    seconds: float
    partitions: Mapping[PartitionKey, Rates]

    def of_group(self, group: GroupLag) -> GroupRates:
        """The sums over ``group``'s partitions that have rates, and the drain time of
        its total lag."""
        parts = [self.partitions[p.key] for p in group.partitions if p.key in self.partitions]
        in_per_s = sum(r.in_per_s for r in parts)
        out_per_s = sum(r.out_per_s for r in parts)
        return GroupRates(in_per_s, out_per_s,
                          drain_seconds(group.total_lag, in_per_s, out_per_s))


def lag_rates(before: LagSample | None, after: LagSample) -> LagRates | None:
    """The rates between two samples; None without an earlier sample (``before`` is
    None or was not taken before ``after``)."""
    if before is None or after.taken_s <= before.taken_s:
        return None
    seconds = after.taken_s - before.taken_s
    earlier = before.partitions()
    rates = {}
    for key, now in after.partitions().items():
        then = earlier.get(key)
        if then is not None:
            rates[key] = Rates(rate(then.end_offset, now.end_offset, seconds),
                               rate(then.done, now.done, seconds))
    return LagRates(seconds, rates)


# -- topics -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TopicSample:
    """Topics at one moment (``taken_s``: ``time.monotonic()``; ``now_ms``: the log's
    clock), with every group's lag for their out rates."""

    taken_s: float
    now_ms: int
    topics: Mapping[str, TopicDescription]
    #: Per topic, the smallest timestamp among the first records of its partitions
    #: (None: every partition is empty).
    oldest_timestamp_ms: Mapping[str, int | None]
    lag: LagSample


@dataclasses.dataclass(frozen=True)
class TopicStats:
    """One topic's size, and its rates when measured over two samples."""

    topic: str
    partitions: int
    #: ``TopicDescription.record_count``.
    records: int
    bytes: int
    segments: int
    #: Records per second appended, and consumed summed over every group; None
    #: from a single sample.
    in_per_s: float | None
    out_per_s: float | None
    oldest_record_age_ms: int | None


def sample_topics(log: LogView, names: Iterable[str], *,
                  clock: Callable[[], float] = time.monotonic) -> TopicSample:
    """``names`` now: their descriptions, oldest records and every group's lag."""
    topics = {name: log.describe_topic(name) for name in names}
    oldest = {name: _oldest_timestamp(log, description)
              for name, description in topics.items()}
    lag = sample_lag(log, clock=clock)
    return TopicSample(lag.taken_s, log.now_ms(), topics, oldest, lag)


def topic_stats(before: TopicSample, after: TopicSample | None = None) -> list[TopicStats]:
    """The stats of the topics of ``after`` (else ``before``); rates only with
    ``after``, over the topics and partitions found in both."""
    latest = after or before
    rates = lag_rates(before.lag, after.lag) if after is not None else None
    stats = []
    for name, description in latest.topics.items():
        in_rate = out_rate = None
        if rates is not None and name in before.topics:
            ends = {p.partition: p.end_offset for p in before.topics[name].partitions}
            in_rate = sum(rate(ends[p.partition], p.end_offset, rates.seconds)
                          for p in description.partitions if p.partition in ends)
            out_rate = sum(r.out_per_s for (_group, topic, _p), r in rates.partitions.items()
                           if topic == name)
        oldest = latest.oldest_timestamp_ms[name]
        stats.append(TopicStats(
            name, len(description.partitions), description.record_count,
            description.size_bytes, sum(p.segment_count for p in description.partitions),
            in_rate, out_rate, None if oldest is None else max(latest.now_ms - oldest, 0)))
    return stats


def _oldest_timestamp(log: LogView, description: TopicDescription) -> int | None:
    oldest = None
    for p in description.partitions:
        if p.end_offset > p.start_offset:
            first = log.read(description.name, p.partition, p.start_offset, max_records=1)
            stamp = first[0].timestamp if first else None
            if stamp is not None and (oldest is None or stamp < oldest):
                oldest = stamp
    return oldest
