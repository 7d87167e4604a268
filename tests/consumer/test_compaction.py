"""Compacted topics: the latest value of every key survives at its offset, reads skip gaps.

The property test appends random keyed records (some keyless, some tombstones) to a
topic with tiny segments, then checks what a reader sees against a plain model:
before and after ``Log.compact()``, through a second Log object on the same
directory (another process's view) and after reopening. ``MQLOG_SOAK=1`` runs many
more examples and shrinks a failure to a minimal one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import Record
from mqlog.consumer import TopicPartition
from mqlog.logstore._segment import list_segment_bases

from . import SETTLE_POLL_S

SOAK = os.environ.get("MQLOG_SOAK") == "1"
BASE_MS = 1_700_000_000_000
#: Keeps every tombstone: the property test is about values, the fake-clock test about age.
FOREVER_MS = 10**12
SEGMENT_BYTES = 4096
#: Shrinking a failure costs minutes at ~0.1 s per example: only under MQLOG_SOAK.
PHASES = tuple(Phase) if SOAK else tuple(p for p in Phase if p is not Phase.shrink)


@dataclass(frozen=True)
class Appended:
    """One record as appended: what a reader must see at ``offset`` if it survives."""

    offset: int
    key: bytes | None
    value: bytes

    @property
    def timestamp(self) -> int:
        return BASE_MS + self.offset


def seen(record: Record) -> Appended:
    """A read record as an :class:`Appended`, checking its timestamp on the way."""
    assert record.timestamp == BASE_MS + record.offset, record
    key = None if record.key is None else bytes(record.key)
    return Appended(record.offset, key, bytes(record.value))


def latest_values(records) -> dict[bytes, bytes]:
    """Latest value of each key (b"" for a tombstone), in offset order."""
    latest = {}
    for record in records:
        if record.key is not None:
            latest[record.key] = record.value
    return latest


def read_all(log: mqlog.Log, topic: str = "c") -> list[Appended]:
    return [seen(record) for record in log.iter(topic, 0)]


def active_base(log: mqlog.Log, topic: str = "c") -> int:
    return log.engine.partition(topic, 0).state().active_base_offset


def closed_bases(log: mqlog.Log, topic: str = "c") -> list[int]:
    """Base offsets of the closed segments of ``topic``/0, oldest first."""
    bases = list_segment_bases(os.path.join(log.path, "topics", topic, "0"))
    return [base for base in bases if base < active_base(log, topic)]


def segment_last_offsets(log: mqlog.Log, survivors: list[Appended]) -> set[int]:
    """The offset of the last surviving record of each closed segment."""
    bounds = closed_bases(log)[1:] + [active_base(log)]
    return {max((r.offset for r in survivors if r.offset < bound), default=-1)
            for bound in bounds}


def check_survivors(model: list[Appended], survivors: list[Appended], active: int) -> None:
    """What compaction may have done: dropped only superseded keyed records of closed
    segments, keeping every other record unchanged at its offset."""
    by_offset = {record.offset: record for record in model}
    offsets = [record.offset for record in survivors]
    assert offsets == sorted(set(offsets))
    assert all(by_offset[record.offset] == record for record in survivors), "a record changed"
    latest_offset = {record.key: record.offset for record in model if record.key is not None}
    kept = set(offsets)
    for record in model:
        must_stay = (record.key is None or record.offset >= active
                     or latest_offset[record.key] == record.offset)
        assert not must_stay or record.offset in kept, f"{record} was removed"
    assert latest_values(survivors) == latest_values(model)


def check_fully_compacted(log: mqlog.Log, survivors: list[Appended]) -> None:
    """After a forced compaction no closed segment holds a superseded record, but
    for its last record, kept so that no segment ends in a gap (as Kafka does)."""
    latest_offset = {record.key: record.offset for record in survivors if record.key is not None}
    exempt = segment_last_offsets(log, survivors)
    stale = [record for record in survivors if record.offset < active_base(log)
             and record.offset not in exempt and record.key is not None
             and latest_offset[record.key] != record.offset]
    assert stale == []


def check_reads_from_every_offset(log: mqlog.Log, survivors: list[Appended], end: int,
                                  step: int = 1) -> None:
    """Reading from any offset, in a gap or not, starts at the next survivor."""
    for start in range(0, end + 1, step):
        expected = [record for record in survivors if record.offset >= start][:3]
        assert [seen(r) for r in log.read("c", 0, start, max_records=3)] == expected, start
        first = expected[0].offset if expected else end
        assert log.offset_for_time("c", 0, BASE_MS + start) == first, start


# -- the property -------------------------------------------------------------------------------

#: One appended record: a key among 6 (or None), and a value length (0: tombstone).
record_specs = st.tuples(
    st.one_of(st.none(), st.integers(0, 5)),
    st.one_of(st.just(0), st.integers(1, 300)),
)
appends = st.lists(st.lists(record_specs, min_size=1, max_size=4), min_size=10, max_size=60)


def append_model(log: mqlog.Log, batches) -> list[Appended]:
    """Append ``batches`` of record specs to c/0; return the model of what was appended."""
    model: list[Appended] = []
    for batch in batches:
        records = []
        for key_number, size in batch:
            offset = len(model) + len(records)
            key = None if key_number is None else b"key-%d" % key_number
            if key is None and size == 0:
                size = 1  # a keyless record cannot be a tombstone
            value = (b"%d:" % offset).ljust(size, b"v")[:size] if size else b""
            records.append(Appended(offset, key, value))
        assert log.append("c", 0, [Record(r.value, key=r.key, timestamp=r.timestamp)
                                   for r in records]) == len(model)
        model.extend(records)
    return model


@settings(max_examples=200 if SOAK else 25, deadline=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow])
@given(batches=appends, index_interval=st.sampled_from([64, 4096]),
       dirty_ratio=st.sampled_from([0.0, 0.5, 1.0]))
def test_compaction_keeps_the_latest_value_of_every_key(batches, index_interval, dirty_ratio):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "log")
        with mqlog.open(path, clock=lambda: BASE_MS, durability="none") as log, \
                mqlog.open(path, clock=lambda: BASE_MS) as other:
            log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                             index_interval_bytes=index_interval, delete_retention_ms=FOREVER_MS,
                             min_cleanable_dirty_ratio=dirty_ratio)
            model = append_model(log, batches)
            end = len(model)
            before = read_all(other)  # maps the segments before they are swapped
            check_survivors(model, before, active_base(log))

            log.compact("c")
            after = read_all(log)
            check_survivors(model, after, active_base(log))
            check_fully_compacted(log, after)
            assert read_all(other) == after
            check_reads_from_every_offset(log, after, end)
            check_reads_from_every_offset(other, after, end, step=5)
            assert (log.start_offset("c", 0), log.end_offset("c", 0)) == (0, end)
        with mqlog.open(path, clock=lambda: BASE_MS) as reopened:
            assert read_all(reopened) == after
            assert reopened.compact("c") == 0  # nothing left to clean
            extra = Appended(end, b"key-0", b"new")
            reopened.append("c", 0, [Record(extra.value, key=extra.key,
                                            timestamp=extra.timestamp)])
            survivors = read_all(reopened)
            assert survivors[-1] == extra
            check_survivors(model + [extra], survivors, active_base(reopened))


# -- fixed cases ---------------------------------------------------------------------------------


@pytest.fixture
def log(log_dir, clock):
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                            delete_retention_ms=60_000, min_cleanable_dirty_ratio=1.0)
        yield opened


def fill_segments(log: mqlog.Log, keys: list[bytes], rounds: int) -> None:
    """Append ``rounds`` values of each key, 200 bytes each, rolling several segments."""
    for number in range(rounds):
        log.append("c", 0, [Record(b"%s=%d" % (key, number) + bytes(190), key=key)
                            for key in keys])


def values_by_key(log: mqlog.Log) -> dict[bytes, bytes]:
    return {bytes(r.key): bytes(r.value)[:12].rstrip(b"\0") for r in log.iter("c", 0)}


def test_tombstones_disappear_once_older_than_delete_retention(log, clock):
    fill_segments(log, [b"a", b"b", b"c"], 3)
    first = log.append("c", 0, [Record(b"", key=b"a"), Record(b"", key=b"b")])
    deleted_at = clock()
    clock.advance(1000)
    fill_segments(log, [b"x", b"y"], 10)
    assert active_base(log) > first + 1  # the tombstones are in closed segments

    log.compact("c")
    assert values_by_key(log) == {b"a": b"", b"b": b"", b"c": b"c=2", b"x": b"x=9",
                                  b"y": b"y=9"}
    clock.now_ms = deleted_at + 60_000  # exactly delete_retention_ms old: kept
    log.compact("c")
    assert set(values_by_key(log)) == {b"a", b"b", b"c", b"x", b"y"}
    clock.advance(1)
    assert log.compact("c") >= 1
    assert values_by_key(log) == {b"c": b"c=2", b"x": b"x=9", b"y": b"y=9"}


def test_keyless_records_and_the_active_segment_are_never_removed(log):
    log.append("c", 0, [b"keyless-1"])
    fill_segments(log, [b"k"], 40)
    log.append("c", 0, [b"keyless-2"])
    before_active = [r.offset for r in log.iter("c", 0, active_base(log))]
    log.compact("c")
    records = list(log.iter("c", 0))
    assert [bytes(r.value) for r in records if r.key is None] == [b"keyless-1", b"keyless-2"]
    assert [r.offset for r in records if r.offset >= active_base(log)] == before_active


def test_compaction_runs_by_itself_after_a_roll(log_dir, clock):
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES,
                         min_cleanable_dirty_ratio=0.0)
        fill_segments(log, [b"k"], 60)
        assert log.engine._compactor.wait_idle(timeout_s=60)  # it compacts on its own thread
        survivors = [r.offset for r in log.iter("c", 0)]
        closed = [offset for offset in survivors if offset < active_base(log)]
        bounds = closed_bases(log)[1:] + [active_base(log)]
        assert len(bounds) >= 3
        assert closed == [bound - 1 for bound in bounds]  # each roll compacted: last ones left


def test_a_delete_policy_topic_is_not_compacted(log_dir):
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("d", segment_bytes=SEGMENT_BYTES)
        for _ in range(60):
            log.append("d", 0, [Record(bytes(200), key=b"same")])
        assert log.compact() == 0
        assert [r.offset for r in log.iter("d", 0)] == list(range(60))


def test_iter_with_an_end_stops_before_it_on_a_compacted_partition(log):
    fill_segments(log, [b"a", b"b"], 30)
    log.compact("c")
    survivors = [r.offset for r in log.iter("c", 0)]
    assert survivors[0] > 10  # offsets 0..10 are a gap now
    assert [r.offset for r in log.iter("c", 0, 0, 10)] == []
    middle = survivors[len(survivors) // 2]
    assert [r.offset for r in log.iter("c", 0, 0, middle)] == [
        o for o in survivors if o < middle]


def test_a_consumer_reads_through_the_gaps(log):
    fill_segments(log, [b"a", b"b", b"c"], 20)
    log.compact("c")
    survivors = [r.offset for r in log.iter("c", 0)]
    consumer = log.consumer(auto_offset_reset="earliest", max_poll_records=7)
    tp = TopicPartition("c", 0)
    consumer.assign([tp])
    assert consumer.position(tp) == 0
    offsets = []
    while batch := consumer.poll(timeout=SETTLE_POLL_S):
        offsets += [m.offset for m in batch]
    assert offsets == survivors
    assert consumer.position(tp) == log.end_offset("c", 0)
    consumer.seek(tp, 1)  # inside the gap
    assert consumer.poll(max_records=1)[0].offset == survivors[0]
