"""Engine.newest_record (Kafka's ListOffsets MAX_TIMESTAMP) against a simple model:
the first offset holding the largest timestamp among the records still counted."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import Record

T = "t"
BASE = 1_700_000_000_000

batches = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=6), min_size=0,
                   max_size=14)


@settings(max_examples=60, deadline=None)
@given(batches=batches, cut=st.floats(0, 1))
def test_newest_record_matches_a_model(batches: list[list[int]], cut: float) -> None:
    """Batches of records with timestamps that go up and down, over several small
    segments, then a log start offset moved into the middle of one (a batch
    too): the answer is the first counted record with the largest timestamp."""
    with tempfile.TemporaryDirectory() as directory, mqlog.open(directory) as log:
        log.create_topic(T, segment_bytes=4096, index_interval_bytes=100)
        stamps: list[int] = []
        for batch in batches:
            log.append(T, 0, [Record(b"x" * 300, timestamp=BASE + 1000 * step)
                              for step in batch])
            stamps.extend(BASE + 1000 * step for step in batch)
        start = int(cut * len(stamps))
        log.delete_records(T, 0, start)
        counted = stamps[start:]
        expected = None
        if counted:
            newest = max(counted)
            expected = (start + counted.index(newest), newest)
        assert log.engine.newest_record(T, 0) == expected
