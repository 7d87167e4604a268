"""The share-state file of one partition (``mqlog.consumer._share_state``), directly.

The file layout is checked against an independent parser (``read_share_file``):
a 64-byte header (magic, version, capacity, start, window_end) followed by a
ring of 32-byte entries, the entry of offset ``o`` at slot ``o % capacity``.
The operations are checked one by one: acquire windows, finish advancing
``start``, release (nack) and undeliver, extend, release_owners and the
lock-free ``ack_fast``.
"""

from __future__ import annotations

import pytest

from mqlog.consumer._share_state import (
    ACKED,
    ARCHIVED,
    DELIVERIES_MAX,
    Acquired,
    ShareState,
    window_end_of,
)
from tests.queue._children import ACQUIRED, AVAILABLE, read_share_file

CAPACITY = 8
NOW = 1_700_000_000_000
LOCK_MS = 1_000
A, B = 11, 22  # member ids


@pytest.fixture
def state(tmp_path):
    """A fresh state with room for 8 records in flight, starting at offset 5."""
    opened = ShareState(str(tmp_path / "q" / "t" / "0"), CAPACITY, 5)
    yield opened
    opened.close()


def take(state: ShareState, member: int, limit: int, now: int = NOW, log_end: int = 100,
         log_start: int = 0) -> Acquired:
    return state.acquire(member, now, LOCK_MS, limit, log_start, log_end)


# -- layout ---------------------------------------------------------------------------------------


def test_new_file_has_the_documented_header_and_zeroed_entries(state):
    parsed = read_share_file(state.path)
    assert (parsed.magic, parsed.version, parsed.capacity) == (b"MQLSHARE", 1, CAPACITY)
    assert (parsed.start, parsed.window_end) == (5, 5)
    assert parsed.entries.tolist() == [(0, 0, 0, 0, 0, 0, 0)] * CAPACITY
    assert state.bounds() == (5, 5)


def test_acquired_entry_bytes_match_the_layout(state):
    take(state, A, 2)
    parsed = read_share_file(state.path)
    assert (parsed.start, parsed.window_end) == (5, 7)
    # offset 5 -> slot 5, offset 6 -> slot 6: state, deliveries, reserved, owner, time, first, last
    assert parsed.entries[5].tolist() == (ACQUIRED, 1, 0, A, NOW + LOCK_MS, NOW, NOW)
    assert parsed.entries[6].tolist() == (ACQUIRED, 1, 0, A, NOW + LOCK_MS, NOW, NOW)
    assert parsed.entries[7].tolist() == (0, 0, 0, 0, 0, 0, 0)


def test_offsets_wrap_around_the_ring(state):
    got = take(state, A, 8)
    assert got.offsets == [5, 6, 7, 8, 9, 10, 11, 12]
    state.finish(A, [5, 6, 7], ACKED)
    again = take(state, B, 8)
    assert again.offsets == [13, 14, 15]  # slots 5, 6, 7 again: the window is full at 16
    parsed = read_share_file(state.path)
    assert (parsed.start, parsed.window_end) == (8, 16)
    assert [parsed.entry(o)["owner"] for o in (13, 14, 15)] == [B, B, B]
    assert parsed.entry(8)["owner"] == A


def test_reopening_keeps_the_file_and_ignores_the_new_arguments(state, tmp_path):
    take(state, A, 3)
    state.finish(A, [5], ACKED)
    again = ShareState(state.path, 64, 0)
    try:
        assert again.capacity == CAPACITY
        assert again.bounds() == (6, 8)
        assert again.entries[6].tolist() == (ACQUIRED, 1, 0, A, NOW + LOCK_MS, NOW, NOW)
    finally:
        again.close()


def test_a_file_that_is_not_a_share_state_is_refused(tmp_path):
    path = tmp_path / "bogus"
    path.write_bytes(b"NOTSHARE" + bytes(56 + 32 * CAPACITY))
    with pytest.raises(ValueError, match="is not a version 1 queue state file"):
        ShareState(str(path), CAPACITY, 0)


def test_window_end_of_reads_the_header_and_nothing_else(state, tmp_path):
    """What the end floor reads of every queue group's state: ``window_end``, or
    None for no file, a file being created (short) or not a share state."""
    take(state, A, 3, log_end=7)
    assert window_end_of(state.path) == 7
    assert window_end_of(str(tmp_path / "missing")) is None
    assert window_end_of(str(tmp_path / "missing" / "0")) is None
    short = tmp_path / "short"
    short.write_bytes(b"MQLSHARE\x01")
    assert window_end_of(str(short)) is None
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"NOTSHARE" + bytes(56))
    assert window_end_of(str(bogus)) is None


# -- acquire ---------------------------------------------------------------------------------------


def test_acquire_hands_out_new_records_up_to_the_limit_and_the_log_end(state):
    assert take(state, A, 3, log_end=7) == Acquired([5, 6], [1, 1], [NOW, NOW], [0, 0], 0)
    assert take(state, A, 3, log_end=7) == Acquired([], [], [], [], 0)
    assert state.bounds() == (5, 7)


def test_acquire_never_opens_more_than_capacity_records(state):
    assert len(take(state, A, 100).offsets) == CAPACITY
    assert state.bounds() == (5, 5 + CAPACITY)
    assert take(state, B, 100).offsets == []


def test_acquire_skips_held_records_until_their_deadline_has_passed(state):
    take(state, A, 2)
    assert take(state, B, 10, now=NOW + LOCK_MS, log_end=7).offsets == []
    late = take(state, B, 10, now=NOW + LOCK_MS + 1, log_end=7)
    assert late == Acquired([5, 6], [2, 2], [NOW, NOW], [NOW, NOW], 2)
    entry = read_share_file(state.path).entry(5)
    assert (entry["owner"], entry["time"], entry["first_ms"], entry["last_ms"]) == (
        B, NOW + 2 * LOCK_MS + 1, NOW, NOW + LOCK_MS + 1)


def test_acquire_takes_ready_records_before_new_ones(state):
    take(state, A, 3)
    state.release(A, [6], NOW)
    got = take(state, B, 2)
    assert got.offsets == [6, 8]
    assert got.deliveries == [2, 1]


def test_acquire_jumps_over_records_deleted_from_the_log(state):
    take(state, A, 3)
    got = take(state, B, 2, log_start=7)
    assert got.offsets == [8, 9]
    assert state.bounds() == (7, 10)


def test_deliveries_saturate_at_the_byte_limit(state):
    for step in range(DELIVERIES_MAX + 5):
        got = take(state, A, 1, now=NOW + step * (LOCK_MS + 1), log_end=6)
    assert got.deliveries == [DELIVERIES_MAX]


def test_a_last_attempt_is_handed_out_alone(state):
    take(state, A, 4)  # offsets 5-8, first delivery
    state.release(A, [5], NOW, undeliver=True)  # as if never delivered: not a last attempt
    state.release(A, [6, 8], NOW)  # delivered once: with last_delivery=2 the next is the last
    got = state.acquire(B, NOW, LOCK_MS, 10, 0, 100, last_delivery=2)
    assert (got.offsets, got.deliveries, got.stopped) == ([5], [1], True)  # stops before 6
    got = state.acquire(B, NOW, LOCK_MS, 10, 0, 100, last_delivery=2, alone_ok=False)
    assert (got.offsets, got.stopped) == ([], True)  # the caller already holds records
    got = state.acquire(B, NOW, LOCK_MS, 10, 0, 100, last_delivery=2)
    assert (got.offsets, got.deliveries, got.stopped) == ([6], [2], True)
    got = state.acquire(B, NOW, LOCK_MS, 10, 0, 100, last_delivery=2)
    assert (got.offsets, got.deliveries, got.stopped) == ([8], [2], True)
    got = state.acquire(B, NOW, LOCK_MS, 3, 0, 100, last_delivery=2)
    assert (got.offsets, got.deliveries, got.stopped) == ([9, 10, 11], [1, 1, 1], False)


def test_first_deliveries_and_later_attempts_are_not_held_back(state):
    take(state, A, 2)
    state.release(A, [5, 6], NOW)
    got = state.acquire(B, NOW, LOCK_MS, 4, 0, 100, last_delivery=3)  # second of three
    assert (got.offsets, got.deliveries, got.stopped) == ([5, 6, 7, 8], [2, 2, 1, 1], False)
    got = state.acquire(B, NOW, LOCK_MS, 1, 0, 100, last_delivery=1)  # no redelivery at all
    assert (got.offsets, got.deliveries, got.stopped) == ([9], [1], False)


# -- finish ----------------------------------------------------------------------------------------


def test_finish_advances_start_over_finished_records_only(state):
    take(state, A, 4)
    assert state.finish(A, [6, 7], ACKED) == []
    assert state.bounds() == (5, 9)
    assert state.finish(A, [5], ARCHIVED) == []
    assert state.bounds() == (8, 9)
    parsed = read_share_file(state.path)
    assert [parsed.entry(o)["state"] for o in (5, 6, 7, 8)] == [ARCHIVED, ACKED, ACKED, ACQUIRED]


def test_finish_reports_records_held_by_another_member(state):
    take(state, A, 2)
    take(state, B, 2, now=NOW + LOCK_MS + 1)  # A's lock ran out: B holds both now
    assert state.finish(A, [5, 6], ACKED) == [5, 6]
    assert read_share_file(state.path).entry(5)["state"] == ACQUIRED


def test_finish_is_harmless_for_finished_records(state):
    take(state, A, 2)
    state.finish(A, [5, 6], ACKED)
    assert state.finish(A, [5, 6], ACKED) == []
    assert state.finish(B, [5], ARCHIVED) == []
    assert state.bounds() == (7, 7)


def test_finish_reports_offsets_beyond_the_window(state):
    assert state.finish(A, [50], ACKED) == [50]


# -- release, extend, release_owners ---------------------------------------------------------------


def test_release_makes_a_record_available_from_its_not_before_time(state):
    take(state, A, 1)
    assert state.release(A, [5], NOW + 500) == []
    assert read_share_file(state.path).entry(5).tolist() == (
        AVAILABLE, 1, 0, A, NOW + 500, NOW, NOW)
    assert take(state, B, 1, now=NOW + 499, log_end=6).offsets == []
    assert take(state, B, 1, now=NOW + 500, log_end=6) == Acquired([5], [2], [NOW], [NOW], 0)


def test_release_with_undeliver_does_not_count_the_delivery(state):
    take(state, A, 1)
    state.release(A, [5], 0, undeliver=True)
    assert read_share_file(state.path).entry(5)["deliveries"] == 0
    assert take(state, B, 1, log_end=6).deliveries == [1]


def test_release_and_extend_report_records_not_held(state):
    take(state, A, 1)
    assert state.release(B, [5], 0) == [5]
    assert state.extend(B, [5], NOW) == [5]
    assert state.release(A, [4, 9], 0) == [4, 9]  # below start, beyond the window
    state.finish(A, [5], ACKED)
    assert state.extend(A, [5], NOW) == [5]


def test_extend_moves_the_deadline(state):
    take(state, A, 1)
    assert state.extend(A, [5], NOW + 10 * LOCK_MS) == []
    assert read_share_file(state.path).entry(5)["time"] == NOW + 10 * LOCK_MS
    assert take(state, B, 1, now=NOW + 5 * LOCK_MS, log_end=6).offsets == []
    assert take(state, B, 1, now=NOW + 10 * LOCK_MS + 1, log_end=6).offsets == [5]


def test_release_owners_frees_only_the_dead_members_records(state):
    take(state, A, 2)
    take(state, B, 1)
    assert state.owners() == {A, B}
    assert state.release_owners(set()) == 0
    assert state.release_owners({A}) == 2
    assert state.owners() == {B}
    parsed = read_share_file(state.path)
    assert [parsed.entry(o)["state"] for o in (5, 6, 7)] == [AVAILABLE, AVAILABLE, ACQUIRED]
    assert [parsed.entry(o)["time"] for o in (5, 6)] == [0, 0]
    assert take(state, B, 5, log_end=8) == Acquired([5, 6], [2, 2], [NOW, NOW], [NOW, NOW], 0)


# -- ack_fast --------------------------------------------------------------------------------------


def test_ack_fast_marks_a_held_record_acked_without_moving_start(state):
    take(state, A, 2)
    assert state.ack_fast(A, 5, NOW + 100, margin_ms=250) is True
    parsed = read_share_file(state.path)
    assert parsed.entry(5)["state"] == ACKED
    assert parsed.start == 5  # moved by the next locked operation
    state.finish(A, [], ACKED)
    assert state.bounds() == (6, 7)


@pytest.mark.parametrize("now", [NOW + LOCK_MS - 250, NOW + LOCK_MS, NOW + LOCK_MS + 1])
def test_ack_fast_refuses_near_or_past_the_deadline(state, now):
    take(state, A, 1)
    assert state.ack_fast(A, 5, now, margin_ms=250) is False
    assert read_share_file(state.path).entry(5)["state"] == ACQUIRED


def test_ack_fast_accepts_just_before_the_margin(state):
    take(state, A, 1)
    assert state.ack_fast(A, 5, NOW + LOCK_MS - 251, margin_ms=250) is True


def test_ack_fast_refuses_other_members_and_offsets_outside_the_window(state):
    take(state, A, 8)
    assert state.ack_fast(B, 5, NOW, margin_ms=0) is False
    state.finish(A, [5], ACKED)
    # offset 13 shares slot 5 with the finished offset 5, but is not in the window
    assert state.ack_fast(A, 13, NOW, margin_ms=0) is False
    assert state.ack_fast(A, 5, NOW, margin_ms=0) is False


def test_counts_summarise_the_window(state):
    take(state, A, 4)
    state.finish(A, [5], ACKED)
    state.release(A, [6], NOW + 100)
    state.release(A, [7], NOW)
    assert state.counts(NOW) == {"position": 6, "window_end": 9, "in_flight": 1, "ready": 1,
                                 "delayed": 1, "finished": 0}


def test_counts_start_at_the_first_unfinished_record_after_lock_free_acks(state):
    take(state, A, 4)  # 5-8
    for offset in (5, 6, 8):
        assert state.ack_fast(A, offset, NOW, 0)
    assert state.bounds() == (5, 9)  # lock-free acks do not move start
    assert state.counts(NOW) == {"position": 7, "window_end": 9, "in_flight": 1, "ready": 0,
                                 "delayed": 0, "finished": 1}


# -- durability --------------------------------------------------------------------------------


def test_a_durable_state_flushes_every_change_before_returning(tmp_path, monkeypatch):
    synced: list[str] = []
    durable = ShareState(str(tmp_path / "q" / "t" / "1"), CAPACITY, 0, durable=True)
    plain = ShareState(str(tmp_path / "q" / "t" / "2"), CAPACITY, 0)
    try:
        for state, name in ((durable, "durable"), (plain, "plain")):
            monkeypatch.setattr(state, "_sync", lambda name=name: synced.append(name))
            state.acquire(A, NOW, LOCK_MS, 3, 0, 10)
            assert state.ack_fast(A, 0, NOW, 0)
            state.finish(A, [1], ACKED)
            state.release(A, [2], NOW)
            state.count("expired", 1)
        assert synced == ["durable"] * 5
        assert durable.bounds() == plain.bounds() == (2, 3)
    finally:
        durable.close()
        plain.close()
