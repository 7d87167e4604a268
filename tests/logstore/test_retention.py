"""Retention: the pure deletion rule, and retention by time and by size on a real log.

Every end-to-end test uses segments of 4096 bytes and records of 1000 bytes,
one record per append: a batch is 48 + 20 + 1000 = 1068 bytes, so a segment
holds 3 records (3204 bytes) and offsets 0, 3, 6, ... start segments.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import OffsetOutOfRangeError
from mqlog.logstore import _topic
from mqlog.logstore._retention import SegmentFacts, segments_to_delete

VALUE = b"r" * 1000
BATCH = 1068
SEGMENT = 3 * BATCH
T = "events"


# -- the pure rule ---------------------------------------------------------------------------


def facts(*pairs: tuple[int, int]) -> list[SegmentFacts]:
    """Closed segments from (size_bytes, max_timestamp) pairs, base offsets 0, 10, 20..."""
    return [SegmentFacts(10 * i, size, ts) for i, (size, ts) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("closed", "active", "now", "retention_ms", "retention_bytes", "expected"),
    [
        (facts((100, 1), (100, 2)), 50, 1000, None, None, 0),
        ([], 10**9, 10**9, 0, 0, 0),  # the active segment alone is never deleted
        # by time: strictly older than now - retention_ms, oldest first only
        (facts((100, 899), (100, 900), (100, 901)), 0, 1000, 100, None, 1),
        (facts((100, 899), (100, 900)), 0, 1000, 99, None, 2),
        (facts((100, 950), (100, 1)), 0, 1000, 100, None, 0),  # stops at the first young one
        (facts((100, 1), (100, 2)), 0, 1000, 0, None, 2),
        # by size: delete while what remains still holds >= retention_bytes
        (facts((100, 0), (100, 0), (100, 0)), 50, 0, None, 250, 1),
        (facts((100, 0), (100, 0), (100, 0)), 50, 0, None, 150, 2),
        (facts((100, 0), (100, 0), (100, 0)), 50, 0, None, 149, 2),
        (facts((100, 0), (100, 0), (100, 0)), 50, 0, None, 50, 3),
        (facts((100, 0), (100, 0), (100, 0)), 50, 0, None, 351, 0),
        (facts((100, 0), (100, 0)), 0, 0, None, 0, 2),
        (facts((300, 0), (10, 0), (10, 0)), 0, 0, None, 15, 1),
        # both: time first, then size counts only what time left
        (facts((100, 1), (100, 2000), (100, 2000)), 100, 1000, 100, 200, 2),
        (facts((100, 1), (100, 2000), (100, 2000)), 100, 1000, 100, 10**6, 1),
        # one call reaches a fixpoint: a segment that expired behind one deleted for
        # size is now the oldest and expired, so it goes too (a second call would
        # otherwise delete more)
        (facts((1, 1), (1, 0)), 0, 1, 0, 1, 2),
    ],
)
def test_segments_to_delete(closed: list[SegmentFacts], active: int, now: int,
                            retention_ms: int | None, retention_bytes: int | None,
                            expected: int) -> None:
    assert segments_to_delete(closed, active, now, retention_ms, retention_bytes) == expected


def reference_count(closed: list[SegmentFacts], active: int, now: int,
                    retention_ms: int | None, retention_bytes: int | None) -> int:
    """The rule stated one segment at a time: delete the oldest while it may go."""
    remaining = list(closed)
    while remaining:
        oldest = remaining[0]
        expired = retention_ms is not None and oldest.max_timestamp < now - retention_ms
        held = active + sum(s.size_bytes for s in remaining)
        oversized = retention_bytes is not None and held - oldest.size_bytes >= retention_bytes
        if not (expired or oversized):
            break
        remaining.pop(0)
    return len(closed) - len(remaining)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 10_000)), max_size=8),
    active=st.integers(0, 5000),
    now=st.integers(0, 20_000),
    retention_ms=st.none() | st.integers(0, 20_000),
    retention_bytes=st.none() | st.integers(0, 40_000),
)
def test_segments_to_delete_matches_the_rule(pairs, active, now, retention_ms,
                                             retention_bytes) -> None:
    closed = facts(*pairs)
    assert segments_to_delete(closed, active, now, retention_ms, retention_bytes) == (
        reference_count(closed, active, now, retention_ms, retention_bytes)
    )


# -- on a real log ---------------------------------------------------------------------------


def open_log(log_dir: Path, clock, **config) -> mqlog.Log:
    """A log with topic T of 4096-byte segments and the given retention settings."""
    log = mqlog.open(log_dir, clock=clock, durability="none")
    log.create_topic(T, segment_bytes=4096, **config)
    return log


def append_each(log: mqlog.Log, count: int, topic: str = T, partition: int = 0) -> None:
    """Append ``count`` 1000-byte records, one batch each."""
    for _ in range(count):
        log.append(topic, partition, [VALUE])


def segment_logs(log_dir: Path, topic: str = T, partition: int = 0) -> list[str]:
    """Names of the segment data files of a partition, sorted."""
    return sorted(p.name for p in (log_dir / "topics" / topic / str(partition)).glob("*.log"))


def log_name(base: int) -> str:
    """The data file name of the segment starting at ``base``."""
    return f"{base:020d}.log"


def assert_below_start_raises(log: mqlog.Log, start: int, end: int) -> None:
    """Reading just below the start fails with the valid range; reading at it works."""
    with pytest.raises(OffsetOutOfRangeError) as error:
        log.read(T, 0, start - 1)
    assert (error.value.offset, error.value.start_offset, error.value.end_offset) == (
        start - 1, start, end
    )
    assert str(error.value) == (
        f"offset {start - 1} is out of range for {T}/0: valid offsets are {start}..{end}"
    )
    assert [r.offset for r in log.read(T, 0, start, max_records=1)] == [start]


def test_by_bytes_on_roll(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock, retention_bytes=5000) as log:
        append_each(log, 9)  # segments 0, 3, 6: a roll sees an empty active segment
        assert log.start_offset(T, 0) == 0
        assert segment_logs(log_dir) == [log_name(0), log_name(3), log_name(6)]
        append_each(log, 1)  # rolls to 9: 3 x 3204 held, 6408 >= 5000 without segment 0
        assert log.start_offset(T, 0) == 3
        assert segment_logs(log_dir) == [log_name(3), log_name(6), log_name(9)]
        assert not list((log_dir / "topics" / T / "0").glob(f"{0:020d}.*"))
        assert_below_start_raises(log, 3, 10)
        partition = log.describe_topic(T).partitions[0]
        assert (partition.start_offset, partition.end_offset) == (3, 10)
        assert (partition.size_bytes, partition.segment_count) == (2 * SEGMENT + BATCH, 3)


def test_by_bytes_on_enforce_retention(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock) as log:
        append_each(log, 11)  # segments 0, 3, 6, 9 (2 records)
        assert log.enforce_retention() == 0  # no limits set
        log.alter_topic(T, retention_bytes=5000)
        assert log.enforce_retention(T) == 2  # 3 x 3204 + 2136 held; 5340 remain
        assert log.start_offset(T, 0) == 6
        assert segment_logs(log_dir) == [log_name(6), log_name(9)]
        assert_below_start_raises(log, 6, 11)
        assert log.enforce_retention(T) == 0


def test_by_time_on_roll(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock, retention_ms=60_000) as log:
        append_each(log, 3)
        clock.advance(30_000)
        append_each(log, 3)  # segment 3, newest record 30 s younger
        clock.advance(30_001)  # segment 0 is now 60.001 s old, segment 3 30.001 s
        append_each(log, 1)  # rolls to 6
        assert log.start_offset(T, 0) == 3
        assert segment_logs(log_dir) == [log_name(3), log_name(6)]
        assert_below_start_raises(log, 3, 7)


def test_by_time_on_enforce_retention(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock, retention_ms=60_000) as log:
        append_each(log, 7)  # segments 0, 3, 6
        clock.advance(60_000)
        assert log.enforce_retention(T) == 0  # exactly retention_ms old is kept
        clock.advance(1)
        assert log.enforce_retention(T) == 2
        assert log.start_offset(T, 0) == 6
        assert log.end_offset(T, 0) == 7
        assert segment_logs(log_dir) == [log_name(6)]  # expired too, but active
        assert_below_start_raises(log, 6, 7)


def test_time_retention_uses_the_newest_record_of_a_segment(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock, retention_ms=1000) as log:
        log.append(T, 0, [mqlog.Record(VALUE, timestamp=0)])
        log.append(T, 0, [mqlog.Record(VALUE, timestamp=clock.now_ms + 10_000)])
        append_each(log, 2)  # rolls: segment 0 holds a record from the future
        clock.advance(5000)
        assert log.enforce_retention(T) == 0
        clock.advance(6001)
        assert log.enforce_retention(T) == 1
        assert log.start_offset(T, 0) == 3


@pytest.mark.parametrize("limit", [{"retention_ms": 0}, {"retention_bytes": 0}])
def test_the_active_segment_is_never_deleted(log_dir: Path, clock, limit: dict) -> None:
    with open_log(log_dir, clock, **limit) as log:
        append_each(log, 8)
        clock.advance(1)
        log.enforce_retention(T)
        assert log.start_offset(T, 0) == 6
        assert segment_logs(log_dir) == [log_name(6)]
        assert [r.offset for r in log.read(T, 0, 6)] == [6, 7]
        append_each(log, 1)
        assert log.end_offset(T, 0) == 9


def test_enforce_retention_counts_every_topic_and_partition(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic("a", partitions=2, segment_bytes=4096)
        log.create_topic("b", segment_bytes=4096)
        log.create_topic("c", segment_bytes=4096)  # keeps everything
        for topic, partition, count in (("a", 0, 4), ("a", 1, 7), ("b", 0, 10), ("c", 0, 7)):
            append_each(log, count, topic, partition)
        assert log.enforce_retention() == 0  # no limits yet
        log.alter_topic("a", retention_bytes=0)
        log.alter_topic("b", retention_bytes=0)
        assert log.enforce_retention() == 1 + 2 + 3
        assert [log.start_offset(*tp) for tp in (("a", 0), ("a", 1), ("b", 0), ("c", 0))] == [
            3, 6, 9, 0
        ]


def test_retention_runs_when_a_partition_is_opened(log_dir: Path, clock) -> None:
    """docs/concepts.md: retention runs on roll, on open and on enforce_retention()."""
    with open_log(log_dir, clock, retention_ms=60_000) as log:
        append_each(log, 7)
    clock.advance(60_001)
    with mqlog.open(log_dir, clock=clock) as log:
        assert log.start_offset(T, 0) == 6
        assert segment_logs(log_dir) == [log_name(6)]


def test_retention_altered_while_closed_applies_on_open(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock) as log:
        append_each(log, 10)
        log.alter_topic(T, retention_bytes=BATCH)
    with mqlog.open(log_dir, clock=clock) as log:
        assert log.start_offset(T, 0) == 9


def test_retention_by_another_log_object(log_dir: Path, clock,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Log whose view of the segments is stale still reports what it deleted."""
    monkeypatch.setattr(_topic, "CONFIG_RECHECK_S", 0.0)  # see alter_topic at once
    with open_log(log_dir, clock) as first, mqlog.open(log_dir, clock=clock) as second:
        assert first.end_offset(T, 0) == 0  # opens the partition in `first`
        append_each(second, 10)  # `first` has not looked since: segments 0, 3, 6, 9
        second.alter_topic(T, retention_bytes=2 * SEGMENT)
        assert first.enforce_retention(T) == 1
        assert first.start_offset(T, 0) == 3
        assert second.start_offset(T, 0) == 3
        with pytest.raises(OffsetOutOfRangeError) as error:
            second.read(T, 0, 0)
        assert (error.value.start_offset, error.value.end_offset) == (3, 10)
        assert [r.offset for r in second.read(T, 0, 3)] == list(range(3, 10))
