"""mqlog.monitor: lag, rates, drain time and topic stats, by their definitions
(arithmetic on hand-made and generated samples) and on real logs (fake clocks:
every figure is exact)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mqlog
from mqlog import Record
from mqlog.errors import UnknownGroupError
from mqlog.monitor import (
    GroupLag,
    LagSample,
    PartitionLag,
    QueueDepth,
    Rates,
    TopicStats,
    drain_seconds,
    lag_rates,
    partition_lag,
    rate,
    sample_lag,
    sample_topics,
    topic_stats,
)

offsets = st.integers(min_value=0, max_value=10**12)
spans = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


def row(partition: int, end: int, lag: int, group: str = "g", topic: str = "t",
        committed: int | None = None, depth: QueueDepth | None = None) -> PartitionLag:
    return PartitionLag(group, topic, partition, committed, end, lag, None, None, None, None,
                        depth)


def sample(taken_s: float, *rows: PartitionLag, kind: str = "consumer") -> LagSample:
    groups = []
    for name, members in itertools.groupby(sorted(rows, key=lambda r: r.group),
                                           key=lambda r: r.group):
        groups.append(GroupLag(name, kind, "Empty", 0, 0, tuple(members)))
    return LagSample(taken_s, tuple(groups))


# -- lag of a partition ---------------------------------------------------------------------


@pytest.mark.parametrize(("committed", "start", "end", "lag"), [
    (None, 0, 10, 10),    # never committed: from the log start
    (None, 4, 10, 6),
    (3, 0, 10, 7),
    (2, 5, 10, 5),        # committed before the log start (retention passed it)
    (10, 0, 10, 0),
    (12, 0, 10, 0),       # committed past the end
    (0, 0, 0, 0),
])
def test_partition_lag(committed: int | None, start: int, end: int, lag: int) -> None:
    assert partition_lag(committed, start, end) == lag


@given(st.none() | offsets, offsets, offsets)
def test_partition_lag_is_between_zero_and_the_partition(committed, start, extra) -> None:
    end = start + extra
    lag = partition_lag(committed, start, end)
    assert 0 <= lag <= end - start
    if committed is not None:
        assert lag <= partition_lag(None, start, end)
        assert partition_lag(committed + 1, start, end) <= lag  # committing never adds lag


# -- rates and drain ------------------------------------------------------------------------


def test_rate_counts_a_figure_that_went_back_as_zero() -> None:
    assert rate(100, 150, 2.0) == 25.0
    assert rate(150, 100, 2.0) == 0.0
    for seconds in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            rate(0, 1, seconds)


@given(offsets, offsets, spans)
def test_rate_is_never_negative(before, after, seconds) -> None:
    value = rate(before, after, seconds)
    assert value >= 0
    assert value * seconds == pytest.approx(max(after - before, 0))


@pytest.mark.parametrize(("lag", "in_per_s", "out_per_s", "drain"), [
    (0, 10.0, 0.0, 0.0), (100, 0.0, 10.0, 10.0), (100, 5.0, 15.0, 10.0), (100, 10.0, 10.0, None),
    (100, 20.0, 10.0, None)])
def test_drain_seconds(lag, in_per_s, out_per_s, drain) -> None:
    assert drain_seconds(lag, in_per_s, out_per_s) == drain


def test_rates_between_two_samples() -> None:
    before = sample(10.0, row(0, 100, 40), row(1, 50, 0), row(2, 30, 30), row(0, 100, 0, "h"))
    after = sample(12.0, row(0, 120, 20), row(1, 50, 0), row(3, 5, 5), row(0, 90, 90, "h"))
    rates = lag_rates(before, after)
    assert rates is not None and rates.seconds == 2.0
    assert rates.partitions == {
        ("g", "t", 0): Rates(10.0, 20.0),  # 20 appended, done 60 -> 100
        ("g", "t", 1): Rates(0.0, 0.0),
        # t/2 is gone and t/3 is new: no rates; h's topic was re-created: no negative rates
        ("h", "t", 0): Rates(0.0, 0.0),
    }
    group = {g.group: g for g in after.groups}["g"]
    summed = rates.of_group(group)
    assert (summed.in_per_s, summed.out_per_s) == (10.0, 20.0)
    assert summed.drain_s == 25 / 10.0  # lag 20 + 5, shrinking by 10/s


def test_an_offset_reset_back_counts_no_consumption() -> None:
    before = sample(0.0, row(0, 100, 10, committed=90))
    after = sample(1.0, row(0, 100, 100, committed=0))
    rates = lag_rates(before, after)
    assert rates is not None and rates.partitions[("g", "t", 0)] == Rates(0.0, 0.0)


def test_no_rates_without_an_earlier_sample() -> None:
    now = sample(5.0, row(0, 10, 0))
    assert lag_rates(None, now) is None
    assert lag_rates(now, now) is None
    assert lag_rates(sample(6.0), now) is None


parts = st.lists(st.tuples(offsets, offsets, offsets, offsets), min_size=0, max_size=8)


@given(parts, spans)
def test_sums_are_the_sums_of_the_parts_and_lag_moves_by_in_minus_out(parts, seconds) -> None:
    """Each generated partition grows (end and done never go back): then the group's
    rates are the sums of its partitions' and lag_after = lag_before + (in - out) * s."""
    before_rows, after_rows = [], []
    for number, (end, lag, appended, consumed) in enumerate(parts):
        lag = min(lag, end)
        consumed = min(consumed, lag + appended)
        before_rows.append(row(number, end, lag))
        after_rows.append(row(number, end + appended, lag + appended - consumed))
    before, after = sample(0.0, *before_rows), sample(seconds, *after_rows)
    rates = lag_rates(before, after)
    assert rates is not None
    for then, now in zip(before_rows, after_rows):
        measured = rates.partitions[now.key]
        assert measured.in_per_s >= 0 and measured.out_per_s >= 0 and now.lag >= 0
        assert now.lag == pytest.approx(
            then.lag + (measured.in_per_s - measured.out_per_s) * seconds, abs=1e-3)
    for group_after in after.groups:
        summed = rates.of_group(group_after)
        assert summed.in_per_s == pytest.approx(
            sum(rates.partitions[p.key].in_per_s for p in group_after.partitions))
        assert summed.out_per_s == pytest.approx(
            sum(rates.partitions[p.key].out_per_s for p in group_after.partitions))
        assert group_after.total_lag == sum(p.lag for p in group_after.partitions) >= 0
        assert summed.drain_s is None or summed.drain_s >= 0


@given(st.lists(st.tuples(offsets, offsets), max_size=6),
       st.lists(st.tuples(offsets, offsets, offsets, offsets), max_size=6), spans)
def test_rates_are_never_negative_whatever_the_samples(befores, afters, seconds) -> None:
    """Offsets may go back arbitrarily (resets, re-created topics)."""
    before = sample(0.0, *(row(n, end, min(lag, end)) for n, (end, lag) in enumerate(befores)))
    after = sample(seconds, *(row(n, end, min(lag, end))
                              for n, (end, lag, _a, _b) in enumerate(afters)))
    rates = lag_rates(before, after)
    assert rates is not None
    assert set(rates.partitions) == {("g", "t", n) for n in range(min(len(befores),
                                                                      len(afters)))}
    for measured in rates.partitions.values():
        assert measured.in_per_s >= 0 and measured.out_per_s >= 0


@given(st.lists(st.tuples(*(st.integers(0, 10**6),) * 5), max_size=6))
def test_queue_depth_is_the_sum_of_the_partitions(depths) -> None:
    rows = [row(n, 0, 0, depth=QueueDepth(*d)) for n, d in enumerate(depths)]
    group = GroupLag("q", "queue", "Empty", 0, 0, tuple(rows))
    assert group.depth == QueueDepth(*(sum(column) for column in zip(*depths, (0,) * 5)))
    assert GroupLag("g", "consumer", "Empty", 0, 0, ()).depth is None


# -- on a log -------------------------------------------------------------------------------


@pytest.fixture
def log(log_dir, clock):
    """Topic t: 10 records in partition 0, 4 in partition 1, stamped by the fake clock,
    which then moves on 5 s."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t", partitions=2)
        opened.append("t", 0, [b"r"] * 10)
        clock.advance(1000)
        opened.append("t", 1, [b"r"] * 4)
        clock.advance(5000)
        yield opened


def test_sample_lag_of_a_consumer_and_a_queue_group(log) -> None:
    log.reset_offsets("billing", "t", to=3)
    worker = log.queue("work", "t", ack_timeout_s=30, max_deliveries=3)
    taken = worker.receive(max_messages=3)
    taken[0].ack()
    lag = sample_lag(log, clock=lambda: 7.0)
    assert lag.taken_s == 7.0
    billing, work = lag.groups
    assert (billing.group, billing.kind, billing.state, billing.members) == (
        "billing", "consumer", "Empty", 0)
    assert [(p.partition, p.committed_offset, p.end_offset, p.lag,
             p.oldest_unconsumed_age_ms) for p in billing.partitions] == [
        (0, 3, 10, 7, 6000), (1, 3, 4, 1, 5000)]
    assert billing.total_lag == 8 and billing.depth is None
    for p, description in zip(billing.partitions, log.describe_group("billing").partitions):
        assert p.lag == description.lag == partition_lag(
            description.committed_offset, log.start_offset("t", p.partition), p.end_offset)
    assert (work.kind, work.state, work.members) == ("queue", "Stable", 1)
    served = {p.partition: p for p in work.partitions}
    assert served[0].depth == QueueDepth(ready=7, in_flight=2, delayed=0, expired=0,
                                         dead_lettered=0)
    assert served[0].done == 1 and work.depth == QueueDepth.total(
        p.depth for p in work.partitions if p.depth)
    worker.close()


def test_sample_lag_of_an_unknown_group_raises(log) -> None:
    with pytest.raises(UnknownGroupError):
        sample_lag(log, "nope")
    assert sample_lag(log).groups == ()


def test_topic_stats_over_two_samples(log, clock) -> None:
    log.reset_offsets("billing", "t", to="earliest")
    first = sample_topics(log, ["t"], clock=lambda: 100.0)
    (alone,) = topic_stats(first)
    assert alone == TopicStats("t", 2, 14, alone.bytes, 2, None, None, 6000)
    assert alone.bytes > 0
    log.append("t", 1, [b"x"] * 50)
    log.reset_offsets("billing", "t", [0], to=8)
    clock.advance(2000)
    second = sample_topics(log, ["t"], clock=lambda: 102.0)
    (stats,) = topic_stats(first, second)
    assert (stats.records, stats.in_per_s, stats.out_per_s) == (64, 25.0, 4.0)
    assert stats.oldest_record_age_ms == 8000


def test_oldest_record_age_of_an_empty_topic_is_none(log) -> None:
    log.create_topic("empty")
    log.append("t", 0, [Record(b"old", timestamp=log.now_ms() - 60_000)])
    stats = {s.topic: s for s in topic_stats(sample_topics(log, ["empty", "t"]))}
    assert stats["empty"].oldest_record_age_ms is None
    assert stats["t"].oldest_record_age_ms == 6000  # the first record is still the oldest


def test_the_public_names() -> None:
    import mqlog.monitor

    assert mqlog.monitor.__all__ == sorted(mqlog.monitor.__all__)
    for name in mqlog.monitor.__all__:
        assert getattr(mqlog.monitor, name) is not None
