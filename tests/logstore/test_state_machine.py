"""A stateful test of the log store against a plain in-memory model.

The model holds, per partition, every record appended, the start offset and
the segments (base offset, bytes, newest timestamp, creation time), predicting
rolls and retention exactly from the documented rules. Hypothesis drives random
appends, reads at valid and invalid offsets, clock moves, retention and
close/reopen, and checks every answer of the log against the model.

Bounded for CI; ``MQLOG_SOAK=1`` runs many more and longer examples.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import msgpack
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import mqlog
from mqlog import OffsetOutOfRangeError, PartitionDescription, Record

SOAK = os.environ.get("MQLOG_SOAK") == "1"
TOPIC = "sm"
PARTITIONS = 2
SEGMENT_BYTES = 4096
START_MS = 1_700_000_000_000
NO_TIMESTAMP = -(2**63)

pytestmark = pytest.mark.soak


@dataclasses.dataclass
class ModelSegment:
    base: int
    size: int = 0
    max_timestamp: int = NO_TIMESTAMP


@dataclasses.dataclass
class ModelPartition:
    """Every record ever appended (offset = index) and the segments still on disk."""

    created_ms: int
    records: list[Record] = dataclasses.field(default_factory=list)
    segments: list[ModelSegment] = dataclasses.field(default_factory=lambda: [ModelSegment(0)])

    @property
    def start(self) -> int:
        return self.segments[0].base

    @property
    def end(self) -> int:
        return len(self.records)


def header_bytes(headers) -> bytes:
    return msgpack.packb(dict(headers), use_bin_type=True) if headers else b""


def record_size(record: Record) -> int:
    """What max_bytes counts: key + headers + value."""
    return len(record.key or b"") + len(header_bytes(record.headers)) + len(record.value)


def stored(item, offset: int, now_ms: int) -> Record:
    """The record a read returns for an appended item."""
    if isinstance(item, Record):
        timestamp = now_ms if item.timestamp is None else item.timestamp
        return Record(item.value, item.key, item.headers, timestamp, offset)
    return Record(item, None, None, now_ms, offset)


#: Small arbitrary values, and large ones so that a few appends fill a segment.
values = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda size, fill: bytes([fill]) * size, st.integers(0, 1500), st.integers(0, 255)),
)
appended_items = st.one_of(
    values,
    st.builds(
        Record,
        values,
        key=st.none() | st.binary(max_size=20),
        headers=st.none() | st.dictionaries(st.text(max_size=5), st.binary(max_size=10),
                                            max_size=2),
        timestamp=st.none() | st.integers(START_MS - 200_000, START_MS + 2_000_000),
    ),
)
retention = st.one_of(
    st.just({}),
    st.builds(lambda n: {"retention_bytes": n}, st.integers(0, 16_000)),
    st.builds(lambda n: {"retention_ms": n}, st.integers(0, 120_000)),
)


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="mqlog-state-machine-")
        self.now_ms = START_MS
        self.log: mqlog.Log | None = None
        self.partitions: list[ModelPartition] = []
        self.config: dict = {}

    def clock(self) -> int:
        return self.now_ms

    def open(self) -> None:
        self.log = mqlog.open(self.directory, clock=self.clock, durability="none")

    @initialize(
        limits=retention,
        index_interval_bytes=st.sampled_from([1, 300, 4096]),
        segment_ms=st.sampled_from([10**10, 30_000]),
    )
    def create(self, limits: dict, index_interval_bytes: int, segment_ms: int) -> None:
        self.config = dict(segment_bytes=SEGMENT_BYTES, segment_ms=segment_ms,
                           index_interval_bytes=index_interval_bytes, **limits)
        self.open()
        self.log.create_topic(TOPIC, partitions=PARTITIONS, **self.config)
        self.partitions = [ModelPartition(created_ms=self.now_ms) for _ in range(PARTITIONS)]

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- the model's rules ---------------------------------------------------------------------

    def apply_retention(self, model: ModelPartition) -> None:
        """Delete the oldest closed segments as the single configured limit says."""
        retention_ms = self.config.get("retention_ms")
        retention_bytes = self.config.get("retention_bytes")
        while len(model.segments) > 1:
            oldest = model.segments[0]
            held = sum(segment.size for segment in model.segments)
            expired = (retention_ms is not None
                       and oldest.max_timestamp < self.now_ms - retention_ms)
            oversized = retention_bytes is not None and held - oldest.size >= retention_bytes
            if not (expired or oversized):
                return
            model.segments.pop(0)

    def model_append(self, model: ModelPartition, items: list) -> int:
        first = model.end
        records = [stored(item, first + i, self.now_ms) for i, item in enumerate(items)]
        length = 48 + 20 * len(records) + sum(record_size(r) for r in records)
        active = model.segments[-1]
        if active.size and (active.size + length > SEGMENT_BYTES
                            or self.now_ms - model.created_ms >= self.config["segment_ms"]):
            active = ModelSegment(first)
            model.segments.append(active)
            model.created_ms = self.now_ms
            self.apply_retention(model)
        active.size += length
        active.max_timestamp = max([active.max_timestamp] + [r.timestamp for r in records])
        model.records.extend(records)
        return first

    def expected_read(self, model: ModelPartition, offset: int, max_records: int,
                      max_bytes: int | None) -> list[Record]:
        out: list[Record] = []
        used = 0
        for record in model.records[offset:offset + max_records]:
            size = record_size(record)
            if out and max_bytes is not None and used + size > max_bytes:
                break
            out.append(record)
            used += size
        return out

    # -- rules ------------------------------------------------------------------------------------

    @rule(partition=st.integers(0, PARTITIONS - 1),
          items=st.lists(appended_items, min_size=1, max_size=5))
    def append(self, partition: int, items: list) -> None:
        expected = self.model_append(self.partitions[partition], items)
        assert self.log.append(TOPIC, partition, items) == expected

    @rule(partition=st.integers(0, PARTITIONS - 1), data=st.data(),
          max_records=st.integers(1, 8), max_bytes=st.none() | st.integers(0, 3000))
    def read(self, partition: int, data: st.DataObject, max_records: int,
             max_bytes: int | None) -> None:
        model = self.partitions[partition]
        offset = data.draw(st.integers(model.start - 2, model.end + 2), label="offset")
        if model.start <= offset <= model.end:
            got = self.log.read(TOPIC, partition, offset, max_records=max_records,
                                max_bytes=max_bytes)
            assert got == self.expected_read(model, offset, max_records, max_bytes)
            return
        with pytest.raises(OffsetOutOfRangeError) as error:
            self.log.read(TOPIC, partition, offset, max_records=max_records)
        assert (error.value.offset, error.value.start_offset, error.value.end_offset) == (
            offset, model.start, model.end
        )

    @rule(partition=st.integers(0, PARTITIONS - 1),
          delta=st.integers(-250_000, 2_100_000))
    def offset_for_time(self, partition: int, delta: int) -> None:
        model = self.partitions[partition]
        target = START_MS + delta
        expected = next(
            (r.offset for r in model.records[model.start:] if r.timestamp >= target), model.end
        )
        assert self.log.offset_for_time(TOPIC, partition, target) == expected

    @rule(ms=st.integers(0, 40_000))
    def advance_clock(self, ms: int) -> None:
        self.now_ms += ms

    @rule()
    def enforce_retention(self) -> None:
        before = sum(len(model.segments) for model in self.partitions)
        for model in self.partitions:
            self.apply_retention(model)
        after = sum(len(model.segments) for model in self.partitions)
        assert self.log.enforce_retention() == before - after

    @precondition(lambda self: self.log is not None)
    @rule()
    def reopen(self) -> None:
        """Close (files trimmed to their valid bytes), open again, apply retention."""
        self.log.close()
        for number, model in enumerate(self.partitions):
            directory = os.path.join(self.directory, "topics", TOPIC, str(number))
            sizes = {name: os.path.getsize(os.path.join(directory, name))
                     for name in os.listdir(directory) if name.endswith(".log")}
            assert sizes == {f"{s.base:020d}.log": s.size for s in model.segments}
        self.open()
        self.enforce_retention()
        for number, model in enumerate(self.partitions):
            records = list(self.log.iter(TOPIC, number, start=model.start))
            assert records == model.records[model.start:]

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def offsets_and_sizes_match(self) -> None:
        if self.log is None:
            return
        description = self.log.describe_topic(TOPIC)
        assert description.partitions == [
            PartitionDescription(number, model.start, model.end,
                                 sum(s.size for s in model.segments), len(model.segments))
            for number, model in enumerate(self.partitions)
        ]


LogMachine.TestCase.settings = settings(
    max_examples=400 if SOAK else 40,
    stateful_step_count=100 if SOAK else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # Shrinking a failure costs minutes of file I/O: in CI the failing program is
    # reported as found (at most 30 steps); a soak run shrinks it.
    phases=list(Phase) if SOAK else [p for p in Phase if p is not Phase.shrink],
)
TestLogMachine = LogMachine.TestCase
