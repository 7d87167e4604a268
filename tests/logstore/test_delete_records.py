"""Log.delete_records: the log start offset moved by hand (kafka-delete-records).

Segments of 4096 bytes and records of 1000 bytes, one record per append, as in
test_retention: a segment holds 3 records, offsets 0, 3, 6, ... start segments.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import mqlog
from mqlog import OffsetOutOfRangeError, ReadOnlyError
from mqlog.errors import UnknownPartitionError
from mqlog.logstore import _state
from tests.logstore.test_retention import T, append_each, log_name, segment_logs


def open_log(log_dir: Path, clock, **options) -> mqlog.Log:
    return mqlog.open(log_dir, clock=clock, durability="none", **options)


@pytest.fixture
def filled(log_dir: Path, clock) -> Path:
    """Topic T with 10 records (offsets 0..9, timestamps 1000 + offset) in 4 segments."""
    with open_log(log_dir, clock) as log:
        log.create_topic(T, segment_bytes=4096)
        for offset in range(10):
            log.append(T, 0, [mqlog.Record(b"r" * 1000, timestamp=1000 + offset)])
    return log_dir


def snapshot(log_dir: Path) -> dict[str, str]:
    """Every file of the log directory and a digest of its bytes."""
    return {str(path.relative_to(log_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(log_dir.rglob("*")) if path.is_file()}


def test_whole_segments_go_and_the_rest_is_hidden(filled: Path, clock) -> None:
    with open_log(filled, clock) as log:
        assert log.delete_records(T, 0, 7) == 7
        assert segment_logs(filled) == [log_name(6), log_name(9)]  # 0 and 3 deleted
        assert log.start_offset(T, 0) == 7
        assert [r.offset for r in log.read(T, 0, 7)] == [7, 8, 9]
        with pytest.raises(OffsetOutOfRangeError) as error:
            log.read(T, 0, 6)
        assert (error.value.start_offset, error.value.end_offset) == (7, 10)
        with pytest.raises(OffsetOutOfRangeError):
            log.read_columns(T, 0, 6)
        assert log.offset_for_time(T, 0, 0) == 7  # record 6 (time 1006) is hidden
        assert log.offset_for_time(T, 0, 1008) == 8
        description = log.describe_topic(T).partitions[0]
        assert (description.start_offset, description.record_count) == (7, 3)


def test_the_new_start_survives_a_reopen_and_a_reboot(
        filled: Path, clock, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_log(filled, clock) as log:
        log.delete_records(T, 0, 4)
    with open_log(filled, clock) as log:
        assert log.start_offset(T, 0) == 4
    monkeypatch.setattr(_state, "BOOT_ID", b"another-boot-id!")  # history not trusted
    with open_log(filled, clock) as log:
        assert log.start_offset(T, 0) == 4
        assert [r.offset for r in log.read(T, 0, 4)] == list(range(4, 10))
    with open_log(filled, clock, read_only=True) as log:
        assert log.start_offset(T, 0) == 4


def test_segment_files_that_come_back_are_removed_again(
        filled: Path, clock, tmp_path: Path) -> None:
    """A power loss may undo unsynced unlinks: the start still holds."""
    saved = tmp_path / "saved"
    shutil.copytree(filled / "topics" / T / "0", saved)
    with open_log(filled, clock) as log:
        log.delete_records(T, 0, 5)
    for name in [log_name(0), log_name(3)]:
        for suffix in (".log", ".index", ".timeindex"):
            stem = name.removesuffix(".log")
            shutil.copy(saved / f"{stem}{suffix}", filled / "topics" / T / "0")
    with open_log(filled, clock) as log:
        assert log.start_offset(T, 0) == 5
        assert [r.offset for r in log.read(T, 0, 5, max_records=1)] == [5]
    assert segment_logs(filled) == [log_name(3), log_name(6), log_name(9)]


def test_the_start_is_synced_before_it_returns(
        filled: Path, clock, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = []
    real = _state.sync_map
    monkeypatch.setattr(_state, "sync_map", lambda *args: (synced.append(1), real(*args)))
    with open_log(filled, clock) as log:
        log.delete_records(T, 0, 2)
        assert synced


def test_both_state_slots_carry_the_new_start(filled: Path, clock) -> None:
    """Only the state file records a start inside a segment: a later publish torn
    by a power loss leaves the other slot as the newest valid one, so that slot
    must carry the new start too (a power-loss simulation found this)."""
    with open_log(filled, clock) as log:
        log.delete_records(T, 0, 4)
        # What the sync made durable: a later (unsynced) publish overwrites one slot.
        data = (filled / "topics" / T / "0" / "state").read_bytes()
    slots = _state.decode_slots(data[:_state.FILE_SIZE])
    assert len(slots.valid) == 2
    assert [slot.log_start_offset for slot in slots.valid] == [4, 4]


def test_up_to_the_end_hides_everything_and_appends_go_on(filled: Path, clock) -> None:
    with open_log(filled, clock) as log:
        assert log.delete_records(T, 0, 10) == 10
        assert log.read(T, 0, 10) == []
        assert log.offset_for_time(T, 0, 0) == 10
        assert log.append(T, 0, [b"next"]) == 10
        assert [r.value for r in log.read(T, 0, 10)] == [b"next"]


def test_at_or_below_the_start_changes_nothing(filled: Path, clock) -> None:
    with open_log(filled, clock) as log:
        log.delete_records(T, 0, 5)
    before = snapshot(filled)
    with open_log(filled, clock) as log:
        assert log.delete_records(T, 0, 5) == 5
        assert log.delete_records(T, 0, 2) == 5
        assert log.delete_records(T, 0, -1) == 5
    assert snapshot(filled) == before


@pytest.mark.parametrize(("partition", "offset", "error"), [
    (0, 11, OffsetOutOfRangeError),
    (0, 10**12, OffsetOutOfRangeError),
    (0, "5", TypeError),
    (0, True, TypeError),
    (1, 0, UnknownPartitionError),
])
def test_bad_input_changes_nothing(filled: Path, clock, partition, offset, error) -> None:
    with open_log(filled, clock) as log:
        assert log.start_offset(T, 0) == 0  # opened (and its active segment preallocated)
        before = snapshot(filled)
        with pytest.raises(error):
            log.delete_records(T, partition, offset)
        assert snapshot(filled) == before
        assert log.start_offset(T, 0) == 0


def test_a_read_only_log_refuses(filled: Path, clock) -> None:
    before = snapshot(filled)
    with open_log(filled, clock, read_only=True) as log, pytest.raises(ReadOnlyError):
        log.delete_records(T, 0, 3)
    assert snapshot(filled) == before


def test_retention_afterwards_never_moves_the_start_back(log_dir: Path, clock) -> None:
    with open_log(log_dir, clock) as log:
        log.create_topic(T, segment_bytes=4096, retention_bytes=5000)
        append_each(log, 7)  # segments 0, 3 and 6; retention keeps the newest ones
        start = log.start_offset(T, 0)
        assert log.delete_records(T, 0, start + 2) == start + 2
        log.enforce_retention(T)
        assert log.start_offset(T, 0) >= start + 2
        append_each(log, 6)  # rolls, retention on roll
        assert log.start_offset(T, 0) >= start + 2
        assert [r.offset for r in log.read(T, 0, log.start_offset(T, 0), max_records=1)] == [
            log.start_offset(T, 0)]


def test_a_consumer_below_the_new_start_resets(filled: Path, clock) -> None:
    with open_log(filled, clock) as log:
        tp = mqlog.TopicPartition(T, 0)
        reader = log.consumer(auto_offset_reset="earliest")
        reader.assign([tp])
        reader.seek(tp, 2)
        log.delete_records(T, 0, 6)
        assert [m.offset for m in reader.poll(max_records=2)] == [6, 7]
