"""mqlog.logstore.verify: verify_log finds each kind of damage and only reads."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import mqlog
from mqlog import Record
from mqlog.logstore import _format as fmt
from mqlog.logstore import verify
from mqlog.logstore._state import StateFile
from mqlog.logstore.dump import dump_segment
from mqlog.logstore.verify import (
    Problem,
    VerifyReport,
    read_state,
    verify_log,
)

from ._helpers import (
    BATCH_BYTES,
    BATCHES,
    RECORDS_PER_BATCH,
    SEGMENT_BASES,
    TOPIC,
    batch_position,
    batch_timestamp,
    flip_byte,
    overwrite,
    partition_dir,
    segment_file,
    set_batch_magic,
    snapshot,
)


def only_problem(report: VerifyReport) -> Problem:
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


def republish(root: Path, **changes) -> None:
    """Publish partition 0's current state with ``changes`` (what a buggy writer might do)."""
    state_file = StateFile(str(partition_dir(root) / "state"))
    try:
        current = state_file.read()
        state_file.publish(current.replace(**changes), current)
    finally:
        state_file.close()


# -- a healthy log --------------------------------------------------------------------------


def test_clean_closed_log_has_no_problems_and_exact_counts(built: Path) -> None:
    report = verify_log(built)
    assert report.problems == []
    assert report.ok is True
    assert report.path == str(built)
    assert report.topics == [TOPIC]
    first, second = report.partitions
    assert (first.topic, first.partition, first.start_offset, first.end_offset) == (
        TOPIC, 0, 0, BATCHES * RECORDS_PER_BATCH)
    assert (first.segments, first.batches, first.records, first.bytes) == (
        3, BATCHES, BATCHES * RECORDS_PER_BATCH, BATCHES * BATCH_BYTES)
    assert (second.segments, second.batches, second.records, second.end_offset) == (1, 1, 1, 1)
    assert (report.segments, report.batches, report.records) == (4, 31, 151)
    assert report.bytes == sum(
        os.path.getsize(path) for path in built.rglob("*.log"))


def test_log_still_open_with_preallocated_segments_is_clean(log_dir: Path, clock) -> None:
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic("t", partitions=1, segment_bytes=1 << 20)
        log.append("t", 0, [b"a", b"b"])
        assert os.path.getsize(log_dir / "topics/t/0/00000000000000000000.log") == 1 << 20
        report = verify_log(log_dir)
    assert report.problems == []
    assert report.records == 2


def test_topic_created_but_never_written_is_clean(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("empty", partitions=3)
    report = verify_log(log_dir)
    assert report.problems == []
    assert [(p.partition, p.records, p.end_offset) for p in report.partitions] == [
        (0, 0, 0), (1, 0, 0), (2, 0, 0)]


def test_missing_directory_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        verify_log(tmp_path / "nope")
    assert caught.value.filename == str(tmp_path / "nope")


def test_directory_that_is_not_a_log_raises(tmp_path: Path) -> None:
    with pytest.raises(mqlog.MqlogError, match=r"is not an mqlog log directory \(no mqlog.json\)"):
        verify_log(tmp_path)


# -- damage in segments ---------------------------------------------------------------------


def test_flipped_byte_is_a_checksum_error_at_that_batch(built: Path) -> None:
    path = segment_file(built, SEGMENT_BASES[1])
    flip_byte(path, batch_position(3) + 100)
    problem = only_problem(verify_log(built))
    assert problem == Problem(
        "error", "bad batch: checksum mismatch", TOPIC, 0, str(path),
        offset=SEGMENT_BASES[1] + 3 * RECORDS_PER_BATCH, position=batch_position(3))
    assert problem.location() == f"{path} position {batch_position(3)} offset 70"


def test_broken_framing_stops_the_segment_and_is_reported_once(built: Path) -> None:
    path = segment_file(built, 0)
    set_batch_magic(path, batch_position(2), 9)
    report = verify_log(built)
    problem = only_problem(report)
    assert (problem.severity, problem.file, problem.position, problem.offset) == (
        "error", str(path), batch_position(2), 10)
    assert problem.description == "broken batch framing: bad magic 9"
    assert report.partitions[0].batches == BATCHES - 9  # 2 of segment 0, then 11 + 8


def test_truncated_closed_segment_is_reported(built: Path) -> None:
    path = segment_file(built, 0)
    os.truncate(path, batch_position(4) + 100)
    problem = only_problem(verify_log(built))
    assert (problem.file, problem.position, problem.offset) == (str(path), batch_position(4), 20)
    assert problem.description == "broken batch framing: truncated batch"


def test_missing_middle_segment_is_an_offset_gap(built: Path) -> None:
    for suffix in (".log", ".index", ".timeindex"):
        os.unlink(segment_file(built, SEGMENT_BASES[1], suffix))
    problem = only_problem(verify_log(built))
    assert problem.file == str(segment_file(built, SEGMENT_BASES[2]))
    assert problem.description == (
        "segment starts at offset 110 but the previous one ends at offset 55")


def test_batch_with_wrong_base_offset_is_reported(built: Path) -> None:
    """Rewrite batch 1 of segment 0 with base offset 6 (and a valid checksum)."""
    path = segment_file(built, 0)
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    position = batch_position(1)
    struct.pack_into("<q", data, position + 16, 6)
    header = fmt.decode_header(data, position, len(data))
    end = position + header.batch_length
    seal = bytearray(data[position : position + fmt.BATCH_HEADER_SIZE])
    fmt.seal(seal, (bytes(data[position + fmt.BATCH_HEADER_SIZE : end]),))
    overwrite(path, position, bytes(seal))
    report = verify_log(built)
    assert [(p.file, p.position, p.description) for p in report.errors] == [
        (str(path), position, "batch has base offset 6, expected 5"),
        (str(path), batch_position(2), "batch has base offset 10, expected 11"),
        (str(segment_file(built, 0, ".index")), position,
         "1 of 10 index entries are bad; first: entry 0 points at a batch with another offset"),
        (str(segment_file(built, 0, ".timeindex")), None,
         "1 of 11 index entries are bad; first: entry 0 does not point at a batch start"),
    ]


def test_zeroed_length_field_hiding_later_batches_is_an_error(built: Path) -> None:
    path = segment_file(built, 0)
    overwrite(path, batch_position(5) + 8, b"\0\0\0\0")
    problem = only_problem(verify_log(built))
    assert (problem.file, problem.offset, problem.position) == (str(path), 25, batch_position(5))
    assert problem.description == (
        "a zero length field ends the data but non-zero bytes follow at position "
        f"{batch_position(5)}: the batches there are unreachable")


def test_untrimmed_closed_segment_is_only_a_warning(built: Path) -> None:
    path = segment_file(built, 0)
    size = os.path.getsize(path)
    os.truncate(path, 4096)
    report = verify_log(built)
    problem = only_problem(report)
    assert report.ok is True
    assert (problem.severity, problem.position) == ("warning", size)
    assert problem.description == (
        f"closed segment was not trimmed: {4096 - size} zero bytes follow its data "
        "(the next open trims it)")


def test_empty_unpublished_newer_segment_is_only_a_warning(built: Path) -> None:
    path = segment_file(built, 150)
    path.touch()
    problem = only_problem(verify_log(built))
    assert (problem.severity, problem.file, problem.offset) == ("warning", str(path), 150)


def test_offset_gaps_left_by_compaction_are_not_damage(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=4096,
                         index_interval_bytes=100)
        for n in range(200):
            log.append("c", 0, [Record(b"%d" % n * 10, key=b"k%d" % (n % 7))])
        log.compact("c")  # what the background compactor has not done yet
        kept = sum(1 for _ in log.iter("c", 0))
    report = verify_log(log_dir)
    assert report.problems == []
    assert report.records == kept < 200


def test_offset_gap_in_a_topic_that_was_never_compacted_is_damage(built: Path) -> None:
    """The same gap as compaction leaves, in a delete-policy topic: records went missing."""
    path = segment_file(built, 0)
    for batch in dump_segment(path, records=False):
        if batch.position == batch_position(1):
            rewritten = bytearray(path.read_bytes())
            struct.pack_into("<q", rewritten, batch.position + 16, 7)  # base offset 5 -> 7
            seal = rewritten[batch.position : batch.position + fmt.BATCH_HEADER_SIZE]
            body = bytes(rewritten[batch.position + fmt.BATCH_HEADER_SIZE :
                                   batch.position + batch.batch_length])
            fmt.seal(seal, (body,))
            overwrite(path, batch.position, bytes(seal))
    descriptions = [p.description for p in verify_log(built).errors]
    assert descriptions[0] == "batch has base offset 7, expected 5"


# -- damage in indexes ----------------------------------------------------------------------


def test_index_entry_not_at_a_batch_start(built: Path) -> None:
    path = segment_file(built, 0, ".index")
    entries = np.fromfile(path, dtype=fmt.OFFSET_INDEX_DTYPE)
    assert entries[0].tolist() == (5, BATCH_BYTES)
    overwrite(path, 4, struct.pack("<I", BATCH_BYTES + 4))
    problem = only_problem(verify_log(built))
    assert (problem.file, problem.offset, problem.position) == (str(path), 5, BATCH_BYTES + 4)
    assert problem.description == (
        "1 of 10 index entries are bad; first: entry 0 does not point at a batch start")


def test_index_entry_with_wrong_offset(built: Path) -> None:
    path = segment_file(built, 0, ".index")
    overwrite(path, 8 * 3, struct.pack("<I", 21))  # entry 3 points at batch 4 (offset 20)
    problem = only_problem(verify_log(built))
    assert problem.description == (
        "1 of 10 index entries are bad; first: entry 3 points at a batch with another offset")


def test_index_entries_out_of_order(built: Path) -> None:
    path = segment_file(built, SEGMENT_BASES[1], ".index")
    overwrite(path, 8 * 2, struct.pack("<II", 5, BATCH_BYTES))  # entry 2 = entry 0
    problem = only_problem(verify_log(built))
    assert problem.description == (
        "1 of 10 index entries are bad; first: entry 2 does not increase on the previous one")


def test_time_index_timestamp_below_earlier_records(built: Path) -> None:
    path = segment_file(built, 0, ".timeindex")
    relative = int(np.fromfile(path, dtype=fmt.TIME_INDEX_DTYPE)[0]["relative_offset"])
    overwrite(path, 0, struct.pack("<qII", 0, relative, fmt.time_check(0, relative)))
    problem = only_problem(verify_log(built))
    assert (problem.file, problem.offset) == (str(path), 5)
    assert problem.description == ("1 of 11 index entries are bad; first: entry 0 has a "
                                   "timestamp below that of a record before it")


def test_time_index_decreasing(built: Path) -> None:
    path = segment_file(built, 0, ".timeindex")
    entry = fmt.TIME_INDEX_DTYPE.itemsize
    overwrite(path, entry * 4, struct.pack("<qI", 1, 0) + struct.pack("<I", fmt.time_check(1, 0)))
    problem = only_problem(verify_log(built))
    assert problem.description == (
        "1 of 11 index entries are bad; first: entry 4 does not increase on the previous one")


def test_time_index_bad_check_word(built: Path) -> None:
    path = segment_file(built, 0, ".timeindex")
    entry = fmt.TIME_INDEX_DTYPE.itemsize
    overwrite(path, entry * 2 + 12, b"\xff")
    problem = only_problem(verify_log(built))
    assert problem.description == (
        "1 of 11 index entries are bad; first: entry 2 has a bad check word")


def test_closed_segment_time_index_may_end_at_the_segment_end(built: Path) -> None:
    entries = np.fromfile(segment_file(built, 0, ".timeindex"), dtype=fmt.TIME_INDEX_DTYPE)
    assert int(entries[-1]["relative_offset"]) == SEGMENT_BASES[1]  # covers the segment
    assert verify_log(built).problems == []


# -- the state file -------------------------------------------------------------------------


def test_state_end_offset_disagreeing_with_data(built: Path) -> None:
    republish(built, end_offset=155)
    problem = only_problem(verify_log(built))
    assert problem.file == str(partition_dir(built) / "state")
    assert problem.description == (
        "state publishes end offset 155 at position 2784 but the active segment's batches "
        "end at offset 150, position 2784")


def test_state_max_timestamp_disagreeing_with_data(built: Path) -> None:
    newest = batch_timestamp(BATCHES - 1)
    republish(built, active_max_timestamp=newest + 5)
    problem = only_problem(verify_log(built))
    assert problem.description == (
        f"state publishes max timestamp {newest + 5} but the active segment's largest "
        f"is {newest}")


def test_state_position_beyond_the_file(built: Path) -> None:
    republish(built, active_position=5000)
    descriptions = [p.description for p in verify_log(built).errors]
    assert descriptions[0] == "state publishes 5000 bytes but the file holds 2784"


def test_state_log_start_before_first_segment(built: Path) -> None:
    for suffix in (".log", ".index", ".timeindex"):
        os.unlink(segment_file(built, 0, suffix))
    problem = only_problem(verify_log(built))
    assert problem.description == (
        "state says the log starts at offset 0 but the first segment starts at offset 55")


def test_missing_state_file(built: Path) -> None:
    os.unlink(partition_dir(built) / "state")
    problem = only_problem(verify_log(built))
    assert (problem.severity, problem.file) == ("error", str(partition_dir(built) / "state"))
    assert problem.description == "state file is missing: the partition's end is not published"


def test_state_file_with_both_slots_damaged(built: Path) -> None:
    path = partition_dir(built) / "state"
    flip_byte(path, 20)
    flip_byte(path, 128 + 20)
    problem = only_problem(verify_log(built))
    assert problem.description == (
        "state file has no valid slot: the partition's end is not published")


def test_unpublished_tail_is_a_warning_and_open_discards_it(log_dir: Path, clock) -> None:
    """A writer that died between writing a batch and publishing it."""
    with mqlog.open(log_dir, clock=clock) as log:
        log.create_topic("t")
        log.append("t", 0, [b"kept"])
        state_file = StateFile(str(log_dir / "topics/t/0/state"))
        before = state_file.read()
        log.append("t", 0, [b"never published"])
        after = state_file.read()
        state_file.publish(before.replace(epoch=after.epoch), after)
        state_file.close()
        report = verify_log(log_dir)
    problem = only_problem(report)
    assert report.ok is True
    assert (problem.severity, problem.offset, problem.position) == (
        "warning", 1, before.active_position)
    assert problem.description.startswith("bytes after the published end (a batch) were written")
    with mqlog.open(log_dir) as log:
        assert [r.value for r in log.read("t", 0, 0)] == [b"kept"]
    assert verify_log(log_dir).problems == []


def test_retention_leftover_below_log_start_is_a_warning(built: Path) -> None:
    republish(built, log_start_offset=SEGMENT_BASES[1])
    report = verify_log(built)
    problem = only_problem(report)
    assert (problem.severity, problem.file, problem.offset) == (
        "warning", str(segment_file(built, 0)), 0)
    assert report.partitions[0].segments == 2


def test_read_state_agrees_with_state_file(built: Path) -> None:
    path = str(partition_dir(built) / "state")
    state_file = StateFile(path)
    try:
        assert read_state(path) == state_file.read()
    finally:
        state_file.close()


# -- metadata -------------------------------------------------------------------------------


def test_unreadable_topic_metadata(built: Path) -> None:
    path = built / "topics" / TOPIC / "topic.json"
    path.write_text("{not json")
    problem = only_problem(verify_log(built))
    assert (problem.topic, problem.file) == (TOPIC, str(path))
    assert problem.description.startswith("cannot read the topic metadata: ")


def test_wrong_layout_version(built: Path) -> None:
    (built / "mqlog.json").write_text('{"layout_version": 7}\n')
    problem = only_problem(verify_log(built))
    assert problem.description == "layout version 7, this mqlog reads 1"


def test_missing_partition_directory(built: Path) -> None:
    for path in partition_dir(built, 1).iterdir():
        path.unlink()
    partition_dir(built, 1).rmdir()
    problem = only_problem(verify_log(built))
    assert (problem.partition, problem.description) == (1, "partition directory is missing")


# -- read only ------------------------------------------------------------------------------


def test_verify_changes_nothing_even_on_a_damaged_log(built: Path) -> None:
    flip_byte(segment_file(built, 0), 100)
    os.unlink(partition_dir(built, 1) / "state")  # StateFile would recreate it
    os.truncate(segment_file(built, SEGMENT_BASES[2]), 1000)
    before = snapshot(built)
    report = verify_log(built)
    assert [p.description for p in report.errors] == [
        "bad batch: checksum mismatch",
        "state publishes 2784 bytes but the file holds 1000",
        "broken batch framing: truncated batch",
        "state file is missing: the partition's end is not published",
    ]
    assert snapshot(built) == before


# -- a log in use ---------------------------------------------------------------------------


def test_partition_is_checked_again_when_its_segments_change(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshots = iter([(1, [0]), (2, [0]), (2, [0]), (2, [0])] + [(2, [0])] * 4)
    monkeypatch.setattr(verify, "_segments_snapshot", lambda directory: next(snapshots))
    report = verify_log(built)
    assert report.problems == []
    assert report.partitions[0].batches == BATCHES  # counted once, from the second attempt


def test_partition_that_never_holds_still_gets_a_warning(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = iter(range(1000))
    monkeypatch.setattr(verify, "_segments_snapshot", lambda directory: (next(calls), []))
    report = verify_log(built)
    assert [(p.severity, p.partition) for p in report.problems] == [("warning", 0), ("warning", 1)]
    assert report.problems[0].description == (
        "the partition's segments changed during each of 5 attempts to check it (it is in "
        "use); what is reported may come from files of different moments")


def test_verify_while_a_writer_appends_reports_no_errors(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("live", segment_bytes=8 << 20)
        stop = threading.Event()

        def append_until_stopped() -> None:
            while not stop.is_set():
                log.append("live", 0, [b"v" * 100] * 50)

        log.append("live", 0, [b"first"])
        writer = threading.Thread(target=append_until_stopped)
        writer.start()
        try:
            reports = [verify_log(log_dir) for _ in range(20)]
            appended_meanwhile = log.end_offset("live", 0) > reports[0].records
        finally:
            stop.set()
            writer.join()
    assert [p for report in reports for p in report.errors] == []
    assert all(report.records >= 1 for report in reports)
    assert appended_meanwhile





def test_build_log_constants_match_the_files(built: Path) -> None:
    """Guard for the constants every test above relies on."""
    sizes = [os.path.getsize(segment_file(built, base)) for base in SEGMENT_BASES]
    assert sizes == [11 * BATCH_BYTES, 11 * BATCH_BYTES, 8 * BATCH_BYTES]
