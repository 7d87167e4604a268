"""Columnar reads (``Log.read_columns``) against ``Log.read``: the same records,
fields and limits, on plain, keyed, headed and compacted partitions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import OffsetOutOfRangeError, Record, RecordColumns

T = "t"

records = st.builds(
    Record,
    st.binary(max_size=40),
    key=st.one_of(st.none(), st.binary(max_size=8)),
    headers=st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b"]),
                                                   st.binary(max_size=4), max_size=2)),
)
batches = st.lists(st.lists(records, min_size=1, max_size=12), min_size=1, max_size=12)


def as_tuples(items) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.headers, r.value) for r in items]


def check_same(log: mqlog.Log, topic: str, offset: int, max_records: int,
               max_bytes: int | None) -> RecordColumns:
    expected = log.read(topic, 0, offset, max_records, max_bytes)
    columns = log.read_columns(topic, 0, offset, max_records, max_bytes)
    assert len(columns) == len(expected)
    assert as_tuples(columns) == as_tuples(expected)
    assert columns.offsets.tolist() == [r.offset for r in expected]
    assert columns.timestamps.tolist() == [r.timestamp for r in expected]
    assert columns.values() == [r.value for r in expected]
    assert [columns.key(i) for i in range(len(columns))] == [r.key for r in expected]
    assert columns.next_offset == (expected[-1].offset + 1 if expected else None)
    return columns


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches, data=st.data())
def test_columns_hold_what_read_returns(batches, data) -> None:
    with tempfile.TemporaryDirectory() as directory, mqlog.open(
            directory, durability="none") as log:
        log.create_topic(T, segment_bytes=4096, index_interval_bytes=64)
        for batch in batches:
            log.append(T, 0, batch)
        end = log.end_offset(T, 0)
        offset = data.draw(st.integers(0, end), label="offset")
        max_records = data.draw(st.integers(1, end + 2), label="max_records")
        max_bytes = data.draw(st.one_of(st.none(), st.integers(0, 400)), label="max_bytes")
        check_same(log, T, offset, max_records, max_bytes)
        # Reading everything in steps, as a replay does, visits every offset once.
        seen, position = [], 0
        while position < end:
            columns = log.read_columns(T, 0, position, max_records)
            seen += columns.offsets.tolist()
            position = columns.next_offset
        assert seen == list(range(end))


def test_compacted_partitions_skip_what_compaction_removed(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T, cleanup_policy="compact", segment_bytes=4096,
                         min_cleanable_dirty_ratio=0.01)
        for round_ in range(40):
            log.append(T, 0, [Record(b"v%d-%d" % (round_, k), key=b"k%d" % k)
                              for k in range(5)])
        log.compact(T)  # what the rolls during the appends left
        columns = check_same(log, T, 0, 10_000, None)
        assert len(columns) < 200  # older values of each key are gone
        assert np.all(np.diff(columns.offsets) > 0)
        assert columns.value(len(columns) - 1) == b"v39-4"


def test_empty_reads_and_bad_arguments(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic(T)
        empty = log.read_columns(T, 0, 0)
        assert (len(empty), empty.next_offset, empty.payload, list(empty)) == (0, None, b"", [])
        assert repr(empty) == "RecordColumns('t', 0, 0 records, offsets empty, 0 payload bytes)"
        log.append(T, 0, [b"abc", Record(b"d", key=b"k", headers={"h": b"1"})])
        both = log.read_columns(T, 0, 0)
        assert repr(both) == "RecordColumns('t', 0, 2 records, offsets 0..1, 11 payload bytes)"
        assert (both.headers(0), both.headers(1), both.key(0), both.key(1)) == (
            {}, {"h": b"1"}, None, b"k")
        with pytest.raises(OffsetOutOfRangeError):
            log.read_columns(T, 0, 3)
        with pytest.raises(ValueError, match="max_records must be a positive int, not 0"):
            log.read_columns(T, 0, 0, 0)
        with pytest.raises(TypeError, match="max_records must be a positive int"):
            log.read_columns(T, 0, 0, True)
