"""OffsetMap: runs, their translation of committed offsets, checkpoint deltas."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mqlog.mirror import OffsetMap


def test_a_dense_copy_is_one_run_and_translates_by_a_shift() -> None:
    offset_map = OffsetMap(source_next=10, destination_next=100)
    for source in range(10, 20):
        offset_map.add(source, source + 90)
    assert offset_map.runs == [(10, 100, 10)]
    assert offset_map.translate(0) == 100  # before the copy began: its first record
    assert offset_map.translate(15) == 105
    assert offset_map.translate(20) == 110  # caught up: the destination's next offset
    assert offset_map.translate(21) is None  # record 20 is not copied yet


def test_gaps_on_either_side_start_new_runs() -> None:
    offset_map = OffsetMap(0, 0)
    for source, destination in [(0, 0), (1, 1), (5, 2), (6, 3), (7, 9)]:
        offset_map.add(source, destination)
    assert offset_map.runs == [(0, 0, 2), (5, 2, 2), (7, 9, 1)]
    assert [offset_map.translate(c) for c in range(9)] == [0, 1, 2, 2, 2, 2, 3, 9, 10]


def test_runs_after_gives_what_a_checkpoint_adds() -> None:
    offset_map = OffsetMap(0, 0)
    for source, destination in [(0, 0), (1, 1), (2, 2)]:
        offset_map.add(source, destination)
    assert offset_map.runs_after(0) == [(0, 0, 3)]
    assert offset_map.runs_after(2) == [(2, 2, 1)]
    offset_map.add(5, 3)
    assert offset_map.runs_after(2) == [(2, 2, 1), (5, 3, 1)]
    assert offset_map.runs_after(4) == []


def test_skipped_source_records_move_the_next_offset_only() -> None:
    offset_map = OffsetMap(0, 7)
    offset_map.skip_to(30)
    assert offset_map.translate(12) == 7
    offset_map.add(30, 7)
    assert offset_map.translate(12) == 7 and offset_map.translate(31) == 8


@given(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=40),
       st.integers(0, 5), st.integers(0, 5))
def test_translation_matches_the_first_mirrored_record_at_or_after(
        steps: list[tuple[int, int]], source_start: int, destination_start: int) -> None:
    """Against a plain model: the destination offset of the first copied record whose
    source offset is >= c, for every c up to where the copy stands."""
    offset_map = OffsetMap(source_start, destination_start)
    copied = []
    source, destination = source_start - 1, destination_start - 1
    for source_step, destination_step in steps:
        source += source_step
        destination += destination_step
        offset_map.add(source, destination)
        copied.append((source, destination))
    in_one_call = OffsetMap(source_start, destination_start)
    in_one_call.add_all(copied)
    assert in_one_call.runs == offset_map.runs
    rebuilt = OffsetMap(source_start, destination_start)  # as a reload from checkpoints
    for run in offset_map.runs:
        rebuilt.add_run(*run)
    for c in range(source + 2):
        expected = next((d for s, d in copied if s >= c), destination + 1)
        assert offset_map.translate(c) == expected, c
        assert rebuilt.translate(c) == expected, c
    assert offset_map.translate(source + 2) is None
