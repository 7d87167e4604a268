"""Damaged batches never hide intact ones: reads, columns, iteration, consumers
and repair around bytes flipped at random positions of closed and active
segments (a hypothesis test) and a few cases named in the fault model.

For every damage: every intact batch reads back exactly by its offsets; a read
from offset 0 returns exactly the records before the first damaged batch; a read
that starts in damage raises CorruptRecordError naming the damaged range and the
next readable offset; a consumer with on_corrupt="skip" gets every intact record
once; repair keeps every intact record's offset and bytes, moves the damaged
bytes to the quarantine file, and verify passes afterwards.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mqlog import CorruptRecordError
from mqlog.consumer import TopicPartition
from mqlog.logstore.layout import QUARANTINE_INFIX
from mqlog.logstore.repair import repair_log, repair_open_log
from mqlog.logstore.verify import verify_log

from ._lab import TOPIC, Lab, runs, seen

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
_cases = itertools.count()
#: Shrinking re-runs whole cases (~0.2 s each): only under MQLOG_SOAK.
PHASES = tuple(Phase) if SOAK else tuple(p for p in Phase if p is not Phase.shrink)


def _flips() -> st.SearchStrategy:
    """1..4 damaged spots: (batch index as a fraction, byte within it as a
    fraction, xor mask, bytes flipped)."""
    spot = st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True),
                     st.integers(1, 255), st.integers(1, 4))
    return st.lists(spot, min_size=1, max_size=4)


def _damage(lab: Lab, flips) -> set[int]:
    """Apply ``flips``; the indexes of the batches whose bytes changed (two flips
    of one byte may cancel out)."""
    touched = set()
    for batch_fraction, byte_fraction, xor, length in flips:
        index = int(batch_fraction * len(lab.batches))
        batch = lab.batches[index]
        lab.flip(batch, int(byte_fraction * (batch.end - batch.position)), xor, length)
        touched.add(index)
    lab.forget_verified()
    return {index for index in touched if lab.changed(lab.batches[index])}


def _check_reads(lab: Lab, damaged: set[int]) -> None:
    log, batches = lab.log, lab.batches
    intact = [b for i, b in enumerate(batches) if i not in damaged]
    first_damaged = batches[min(damaged)].base_offset
    if first_damaged:
        back = log.read(TOPIC, 0, 0, max_records=10_000)
        assert [seen(r) for r in back] == lab.records(0, first_damaged)
        assert log.read_columns(TOPIC, 0, 0).next_offset == first_damaged
    for index, batch in enumerate(batches):
        if index in damaged:
            continue
        back = log.read(TOPIC, 0, batch.base_offset, max_records=batch.count)
        assert [seen(r) for r in back] == lab.records(batch.base_offset, batch.next_offset)
        later = [i for i in damaged if i > index]
        stop = batches[min(later)].base_offset if later else lab.end_offset
        back = log.read(TOPIC, 0, batch.next_offset - 1, max_records=10_000)
        assert [seen(r) for r in back] == lab.records(batch.next_offset - 1, stop)
    for run in runs(batches, damaged):
        following = [b.base_offset for b in intact if b.base_offset > batches[run[0]].base_offset]
        next_offset = following[0] if following else lab.end_offset
        for index in run:
            for offset in (batches[index].base_offset, batches[index].next_offset - 1):
                with pytest.raises(CorruptRecordError) as caught:
                    log.read(TOPIC, 0, offset)
                error = caught.value
                assert (error.offset, error.damaged_start, error.damaged_end,
                        error.next_offset) == (offset, batches[run[0]].base_offset,
                                               next_offset - 1, next_offset), error
                assert error.file == str(lab.file(batches[index].segment))
                with pytest.raises(CorruptRecordError):
                    log.read_columns(TOPIC, 0, offset)
    consumer = log.consumer(on_corrupt="skip")
    consumer.assign([TopicPartition(TOPIC, 0)])
    consumer.seek(TopicPartition(TOPIC, 0), 0)
    got = []
    while batch := consumer.poll(max_records=37):
        got += [seen(m) for m in batch]
    consumer.close()
    wanted = [r for b in intact for r in lab.records(b.base_offset, b.next_offset)]
    assert got == wanted
    assert consumer.skipped_corrupt == sum(batches[i].count for i in damaged)


def _check_repair(lab: Lab, damaged: set[int]) -> None:
    batches = lab.batches
    before = {base: lab.file(base).read_bytes() for base in lab.bases}
    quarantined = {}
    for run in runs(batches, damaged):
        first, last = batches[run[0]], batches[run[-1]]
        quarantined.setdefault(first.segment, b"")
        quarantined[first.segment] += before[first.segment][first.position:last.end]
    planned = repair_log(lab.path)
    assert planned.damaged and not planned.executed
    assert {base: lab.file(base).read_bytes() for base in lab.bases} == before  # a dry run
    report = repair_open_log(lab.log.engine, [TOPIC])
    assert sorted((r.first_offset, r.next_offset) for r in report.ranges) == sorted(
        (r.first_offset, r.next_offset) for r in planned.ranges)
    for base, data in quarantined.items():
        [quarantine] = [p for p in report.quarantine_files
                        if os.path.basename(p).startswith(lab.file(base).name + QUARANTINE_INFIX)]
        assert Path(quarantine).read_bytes() == data
    verified = verify_log(lab.path)
    assert verified.ok, verified.errors
    for index, batch in enumerate(batches):  # intact batches are copied byte for byte
        if index not in damaged:
            data = before[batch.segment][batch.position:batch.end]
            assert data in lab.file(batch.segment).read_bytes()
    intact = [r for i, b in enumerate(batches) if i not in damaged
              for r in lab.records(b.base_offset, b.next_offset)]
    assert [seen(r) for r in lab.log.iter(TOPIC, 0)] == intact
    lab.close()
    lab.log = __import__("mqlog").open(lab.path)  # a new process's view, recovery included
    assert [seen(r) for r in lab.log.iter(TOPIC, 0)] == intact
    assert lab.log.end_offset(TOPIC, 0) == lab.end_offset
    assert lab.log.append(TOPIC, 0, [b"after"]) == lab.end_offset  # offsets never reused


@settings(max_examples=300 if SOAK else 12, deadline=None, phases=PHASES,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_flips())
def test_flipped_bytes_never_hide_intact_batches(pristine, tmp_path: Path, flips) -> None:
    lab = Lab(pristine, tmp_path / f"case{next(_cases)}")
    try:
        damaged = _damage(lab, flips)
        if not damaged:
            return
        _check_reads(lab, damaged)
        _check_repair(lab, damaged)
    finally:
        lab.close()
