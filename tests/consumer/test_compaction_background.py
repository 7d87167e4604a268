"""Compaction off the append and commit paths, with a bounded key map.

The log's compactor thread does the work after a roll; the appending (or
committing) thread only hands it the partition. A partition with more distinct
keys than ``KEYS_MAX`` is compacted in several passes, never holding more
keys, and reads the same latest value of every key as a fully mapped run.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import Record
from mqlog.consumer import TopicPartition, offset_store
from mqlog.consumer._offsets import OFFSETS_TOPIC
from mqlog.logstore import _compaction
from mqlog.logstore._compaction import KeyOffsetMap
from mqlog.logstore.verify import verify_log

from .test_compaction import (
    BASE_MS,
    FOREVER_MS,
    PHASES,
    SEGMENT_BYTES,
    SOAK,
    active_base,
    append_model,
    appends,
    check_fully_compacted,
    check_survivors,
    latest_values,
    read_all,
)

#: Longest the tests wait for the compactor thread to go idle (it normally takes ms).
IDLE_TIMEOUT_S = 60


@pytest.fixture
def compaction_threads(monkeypatch) -> list[int]:
    """The ident of the thread of every compaction run."""
    threads: list[int] = []
    real = _compaction.compact

    def recording(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(_compaction, "compact", recording)
    return threads


def test_appends_that_roll_never_compact_on_the_appending_thread(log_dir, compaction_threads):
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                         min_cleanable_dirty_ratio=0.0)
        for number in range(100):
            log.append("c", 0, [Record(b"%d" % number + bytes(200), key=b"k")])
        assert log.engine._compactor.wait_idle(IDLE_TIMEOUT_S)
        assert compaction_threads and threading.get_ident() not in compaction_threads
        closed = [r.offset for r in log.iter("c", 0) if r.offset < active_base(log)]
        assert len(closed) < 30  # compacted (one record kept per closed segment)


def test_commits_never_compact_on_the_committing_thread(log_dir, compaction_threads):
    with mqlog.open(log_dir) as log:
        store = offset_store(log.engine)
        log.alter_topic(OFFSETS_TOPIC, segment_bytes=SEGMENT_BYTES,
                        min_cleanable_dirty_ratio=0.0)
        tp = TopicPartition("t", 0)
        for number in range(150):
            store.commit("g", {tp: number})
        assert log.engine._compactor.wait_idle(IDLE_TIMEOUT_S)
        assert compaction_threads and threading.get_ident() not in compaction_threads
        assert store.committed("g", tp).offset == 149


def test_log_compact_runs_on_the_calling_thread(log_dir, compaction_threads):
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                         min_cleanable_dirty_ratio=1.0)
        log.compact("c")
        assert compaction_threads == [threading.get_ident()]


def test_closing_the_log_stops_the_compactor(log_dir):
    log = mqlog.open(log_dir, durability="none")
    log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES)
    for number in range(60):
        log.append("c", 0, [Record(bytes(200), key=b"k%d" % (number % 3))])
    thread = log.engine._compactor._thread
    assert thread is not None
    log.close()
    assert not thread.is_alive()
    assert not [name for name in os.listdir(log_dir / "topics" / "c" / "0")
                if name.endswith(".cleaned")]


# -- the bounded map -----------------------------------------------------------------------


def test_key_offset_map_keeps_the_latest_offset_of_at_most_capacity_keys():
    rng = random.Random(7)
    for capacity in (1, 2, 5, 50):
        latest = KeyOffsetMap(capacity)
        model: dict[bytes, int] = {}
        offset = 0
        full = False
        while not full:
            keys = [b"%d" % rng.randrange(3 * capacity) for _ in range(rng.randint(1, 20))]
            digests = [_compaction.digest(key) for key in keys]
            offsets = list(range(offset, offset + len(keys)))
            offset += len(keys)
            taken = latest.add(digests, offsets)
            for key, key_offset in zip(keys[:taken], offsets[:taken]):
                model[key] = key_offset
            assert len(model) <= capacity
            full = taken < len(keys)
            if full:  # the first key not taken is a new one and there is no room
                assert keys[taken] not in model and len(model) == capacity
            assert len(latest) == len(model)
        probe = list(model) + [b"absent"]
        found = latest.latest([_compaction.digest(key) for key in probe]).tolist()
        assert found == [model[key] for key in model] + [-1]


@pytest.fixture
def peak_keys(monkeypatch) -> list[int]:
    """The largest number of keys any KeyOffsetMap held, once per map."""
    peaks: list[int] = []
    real_add = KeyOffsetMap.add

    def add(self, digests, offsets):
        taken = real_add(self, digests, offsets)
        peaks.append(len(self))
        return taken

    monkeypatch.setattr(KeyOffsetMap, "add", add)
    return peaks


def test_more_keys_than_the_limit_compacts_in_several_passes(log_dir, monkeypatch, peak_keys):
    monkeypatch.setattr(_compaction, "KEYS_MAX", 7)
    with mqlog.open(log_dir, clock=lambda: BASE_MS, durability="none") as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                         delete_retention_ms=FOREVER_MS, min_cleanable_dirty_ratio=1.0)
        rng = random.Random(3)
        batches = [[(rng.randrange(20), rng.choice([0, 50, 120])) for _ in range(3)]
                   for _ in range(60)]
        log.engine._compactor.stop()  # only the forced run below
        model = append_model(log, batches)
        partition = log.engine.partition("c", 0)
        result = partition.compact(force=True)
        assert result is not None and result.passes > 1
        assert max(peak_keys) <= 7
        after = read_all(log)
        check_survivors(model, after, active_base(log))
        check_fully_compacted(log, after)
    with mqlog.open(log_dir, clock=lambda: BASE_MS) as reopened:
        assert read_all(reopened) == after


@settings(max_examples=60 if SOAK else 8, deadline=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(batches=appends, keys_max=st.sampled_from([1, 2, 3, 5]))
def test_a_bounded_map_reads_the_same_as_an_unbounded_one(batches, keys_max, monkeypatch):
    with tempfile.TemporaryDirectory() as directory:
        results = []
        for limit in (keys_max, 10**6):
            monkeypatch.setattr(_compaction, "KEYS_MAX", limit)
            path = os.path.join(directory, str(limit))
            with mqlog.open(path, clock=lambda: BASE_MS, durability="none") as log:
                log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                                 delete_retention_ms=FOREVER_MS,
                                 min_cleanable_dirty_ratio=1.0)
                model = append_model(log, batches)
                log.engine._compactor.stop()  # only the forced run below
                log.compact("c")
                after = read_all(log)
                check_survivors(model, after, active_base(log))
                check_fully_compacted(log, after)
                results.append(latest_values(after))
        assert results[0] == results[1] == latest_values(model)


# -- leftovers of a cleaner that died ----------------------------------------------------------


def cleaned_copy_left_behind(log_dir, swapped: bool) -> tuple[list, list]:
    """A partition whose first segment has a cleaned copy (only the last record of
    each key) that a dead cleaner left, swapped in (data renamed) or not; returns
    the records before and what the copy holds."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                         min_cleanable_dirty_ratio=1.0, index_interval_bytes=256)
        log.engine._compactor.stop()
        for number in range(60):
            log.append("c", 0, [Record(b"%d" % number + bytes(200), key=b"k%d" % (number % 3),
                                       timestamp=BASE_MS + number)])
        partition = log.engine.partition("c", 0)
        second = partition._refresh(partition.state()).bases.tolist()[1]
        before = [(r.offset, bytes(r.value)) for r in log.iter("c", 0)]
        first_segment = [r for r in log.iter("c", 0, 0, second)]
        survivors = {bytes(r.key): r for r in first_segment}.values()
        kept = sorted(survivors, key=lambda r: r.offset)
        stem = os.path.join(partition.directory, "0" * 20)
        _compaction._write_cleaned(stem, 0, second, kept, 256)
    if swapped:
        os.replace(stem + ".log.cleaned", stem + ".log")
    return before, [(r.offset, bytes(r.value)) for r in kept]


def cleaned_names(log_dir) -> list[str]:
    return sorted(n for n in os.listdir(log_dir / "topics" / "c" / "0") if ".cleaned" in n)


def test_a_copy_never_swapped_in_is_deleted_on_open(log_dir):
    before, _ = cleaned_copy_left_behind(log_dir, swapped=False)
    assert len(cleaned_names(log_dir)) == 3
    with mqlog.open(log_dir) as log:
        assert [(r.offset, bytes(r.value)) for r in log.iter("c", 0)] == before
        assert cleaned_names(log_dir) == []
    assert verify_log(log_dir).problems == []


def test_a_swap_that_stopped_after_the_data_is_finished_on_open(log_dir):
    before, kept = cleaned_copy_left_behind(log_dir, swapped=True)
    assert cleaned_names(log_dir) == ["00000000000000000000.index.cleaned",
                                      "00000000000000000000.timeindex.cleaned"]
    with mqlog.open(log_dir) as log:
        after = [(r.offset, bytes(r.value)) for r in log.iter("c", 0)]
        assert after == kept + [item for item in before if item[0] > kept[-1][0]]
        assert cleaned_names(log_dir) == []
        for offset, value in kept:  # the renamed index finds every record
            assert bytes(log.read("c", 0, offset, max_records=1)[0].value) == value
    assert verify_log(log_dir).problems == []


def test_leftovers_of_a_live_cleaner_are_left_alone(log_dir):
    cleaned_copy_left_behind(log_dir, swapped=False)
    lock = os.open(log_dir / "topics" / "c" / "0" / "cleaner.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with mqlog.open(log_dir) as log:
            log.read("c", 0, 0)
            assert len(cleaned_names(log_dir)) == 3
    finally:
        os.close(lock)
    with mqlog.open(log_dir) as log:
        log.read("c", 0, 0)
        assert cleaned_names(log_dir) == []
