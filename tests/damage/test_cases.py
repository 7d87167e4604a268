"""Named cases of damage: the fault model's examples, each read path around them
(read, read_columns, iter, timestamp_at, offset_for_time, consumers, queues)
and the gap marker repair writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mqlog
from mqlog import ConfigError, CorruptRecordError, Record
from mqlog.consumer import TopicPartition
from mqlog.logstore import _format as fmt
from mqlog.logstore._journal import read_journal
from mqlog.logstore._segment import list_segment_bases, segment_name
from mqlog.logstore.verify import read_state, verify_log

TOPIC = "t"
TP = TopicPartition(TOPIC, 0)
BASE_MS = 1_700_000_000_000


def _write(path: Path, batches: int = 100, **topic_config) -> None:
    """``batches`` batches of two records: offset n has value b"v<n>", timestamp BASE_MS + n."""
    with mqlog.open(path) as log:
        log.create_topic(TOPIC, index_interval_bytes=1000, durability="none", **topic_config)
        for first in range(0, 2 * batches, 2):
            log.append(TOPIC, 0, [Record(b"v%d" % n, timestamp=BASE_MS + n)
                                  for n in (first, first + 1)])


def _batch(path: Path, offset: int) -> tuple[Path, int, int]:
    """(segment file, position, length) of the batch holding ``offset``."""
    directory = path / "topics" / TOPIC / "0"
    base = [b for b in list_segment_bases(str(directory)) if b <= offset][-1]
    file = directory / (segment_name(base) + ".log")
    data = file.read_bytes()
    position = 0
    while True:
        header = fmt.decode_header(data, position, len(data))
        if header.base_offset <= offset < header.next_offset:
            return file, position, header.batch_length
        position += header.batch_length


def _flip(file: Path, position: int, length: int = 4) -> None:
    fd = os.open(file, os.O_RDWR)
    try:
        old = os.pread(fd, length, position)
        os.pwrite(fd, bytes(b ^ 0x5A for b in old), position)
    finally:
        os.close(fd)


def _values(records) -> list[bytes]:
    return [bytes(r.value) for r in records]


@pytest.fixture
def damaged_78(log_dir: Path) -> Path:
    """The fault model's example: 4 bytes flipped in the batch holding offsets 78-79
    of a closed segment; a read at 80 starts at an index entry before the damage."""
    _write(log_dir, segment_bytes=1 << 20)
    file, position, _length = _batch(log_dir, 78)
    _flip(file, position + 60)
    return log_dir


def test_a_read_returns_the_records_before_the_damage(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log:
        assert _values(log.read(TOPIC, 0, 0, max_records=500)) == [b"v%d" % n for n in range(78)]
        columns = log.read_columns(TOPIC, 0, 0)
        assert (len(columns), columns.next_offset) == (78, 78)


@pytest.mark.parametrize("offset", [78, 79])
def test_a_read_starting_in_damage_names_the_range_and_the_next_offset(
        damaged_78: Path, offset: int) -> None:
    with mqlog.open(damaged_78) as log:
        for read in (log.read, log.read_columns):
            with pytest.raises(CorruptRecordError) as caught:
                read(TOPIC, 0, offset)
            error = caught.value
            assert (error.topic, error.partition, error.offset) == (TOPIC, 0, offset)
            assert (error.damaged_start, error.damaged_end, error.next_offset) == (78, 79, 80)
            assert error.file.endswith(segment_name(0) + ".log")
            assert "78..79" in str(error) and "80" in str(error)


def test_intact_offsets_after_the_damage_are_read(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log:
        assert _values(log.read(TOPIC, 0, 80, max_records=3)) == [b"v80", b"v81", b"v82"]
        assert _values(log.read(TOPIC, 0, 81, max_records=500)) == [
            b"v%d" % n for n in range(81, 200)]
        with log.consumer(group="g") as consumer:
            consumer.assign([TP])
            consumer.seek(TP, 80)
            assert _values(consumer.poll(max_records=2)) == [b"v80", b"v81"]


def test_iter_raises_after_the_intact_records_or_skips(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log:
        seen = []
        with pytest.raises(CorruptRecordError) as caught:
            for record in log.iter(TOPIC, 0):
                seen.append(record.offset)
        assert seen == list(range(78)) and caught.value.next_offset == 80
        told = []
        offsets = [r.offset for r in log.iter(TOPIC, 0, on_corrupt=told.append)]
        assert offsets == [*range(78), *range(80, 200)]
        assert [(e.damaged_start, e.next_offset) for e in told] == [(78, 80)]
        assert [r.offset for r in log.iter(TOPIC, 0, 70, 90, on_corrupt="skip")] == [
            *range(70, 78), *range(80, 90)]
        with pytest.raises(ValueError):
            list(log.iter(TOPIC, 0, on_corrupt="ignore"))


def test_times_around_damage(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log:
        assert log.engine.partition(TOPIC, 0).timestamp_at(78) is None  # unknown: damaged
        assert log.engine.partition(TOPIC, 0).timestamp_at(80) == BASE_MS + 80
        assert log.engine.partition(TOPIC, 0).timestamp_at(77) == BASE_MS + 77
        # A damaged record may be the first late enough: its range starts the answer.
        assert log.offset_for_time(TOPIC, 0, BASE_MS + 78) == 78
        assert log.offset_for_time(TOPIC, 0, BASE_MS + 80) == 78
        assert log.offset_for_time(TOPIC, 0, BASE_MS + 81) == 81
        assert log.offset_for_time(TOPIC, 0, BASE_MS + 77) == 77


def test_consumer_raises_by_default_and_stays_put(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log, log.consumer() as consumer:
        consumer.assign([TP])
        consumer.seek(TP, 70)
        assert len(consumer.poll(max_records=500)) == 8
        for _ in range(2):
            with pytest.raises(CorruptRecordError):
                consumer.poll()
            assert consumer.position(TP) == 78
        consumer.seek(TP, 80)
        assert consumer.poll(max_records=1)[0].offset == 80


def test_consumer_skips_when_asked_and_counts(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log, log.consumer(group="g", on_corrupt="skip") as consumer:
        consumer.assign([TP])
        consumer.seek(TP, 0)
        offsets = []
        while records := consumer.poll_columns(max_records=50):
            offsets += [int(o) for columns in records for o in columns.offsets]
        assert offsets == [*range(78), *range(80, 200)]
        assert (consumer.skipped_corrupt, list(consumer.skipped_ranges)) == (2, [(TP, 78, 79)])
        consumer.commit()
        assert consumer.committed(TP) == 200


def test_on_corrupt_must_be_raise_or_skip(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log, pytest.raises(ConfigError):
        log.consumer(on_corrupt="ignore")


def test_queue_archives_damaged_records_and_delivers_the_rest(damaged_78: Path) -> None:
    with mqlog.open(damaged_78) as log:
        worker = log.queue("workers", TOPIC)
        delivered = []
        for _ in range(20):  # never loops on the damage
            messages = worker.receive(max_messages=30)
            if not messages:
                break
            worker.ack_many(messages)
            delivered += [m.offset for m in messages]
        worker.close()
        assert delivered == [*range(78), *range(80, 200)]
        [row] = log.describe_queue("workers")
        assert (row.position, row.corrupt, row.lag) == (200, 2, 0)


def test_a_closed_segment_cut_mid_batch_hides_nothing_else(log_dir: Path) -> None:
    """Recovery finds the closed segment cut short and records the offsets it lost
    as a gap: reads step over them, the records on both sides stay readable."""
    _write(log_dir, batches=200, segment_bytes=4096)
    directory = log_dir / "topics" / TOPIC / "0"
    bases = list_segment_bases(str(directory))
    file, position, length = _batch(log_dir, bases[2] - 1)  # the last batch of segment 1
    first_cut = bases[2] - 2
    os.truncate(file, position + length // 2)
    with mqlog.open(log_dir) as log:
        intact = [n for n in range(400) if not first_cut <= n < bases[2]]
        assert [r.offset for r in log.read(TOPIC, 0, bases[1], max_records=10_000)] == [
            n for n in intact if n >= bases[1]]
        assert log.read(TOPIC, 0, first_cut + 1, max_records=1)[0].offset == bases[2]
        told = []
        offsets = [r.offset for r in log.iter(TOPIC, 0, on_corrupt=told.append)]
        assert offsets == intact
        assert told == []
    assert verify_log(str(log_dir)).ok


def test_damage_reaching_into_the_next_segment_names_the_first_readable_offset(
        log_dir: Path) -> None:
    _write(log_dir, batches=200, segment_bytes=4096)
    bases = list_segment_bases(str(log_dir / "topics" / TOPIC / "0"))
    for offset in (bases[2] - 1, bases[2]):  # the last batch of one segment, the first of the next
        file, position, _length = _batch(log_dir, offset)
        _flip(file, position + 20)
    with mqlog.open(log_dir) as log:
        with pytest.raises(CorruptRecordError) as caught:
            log.read(TOPIC, 0, bases[2] - 2)
        assert (caught.value.damaged_start, caught.value.next_offset) == (
            bases[2] - 2, bases[2] + 2)
        assert log.read(TOPIC, 0, bases[2] + 2, max_records=1)[0].offset == bases[2] + 2


def test_a_damaged_index_entry_naming_a_damaged_batch_is_passed_over(log_dir: Path) -> None:
    _write(log_dir, batches=200, segment_bytes=4096)  # segment 0 is closed
    directory = log_dir / "topics" / TOPIC / "0"
    with mqlog.open(log_dir) as log:
        entries = log.engine.partition(TOPIC, 0)._refresh(log.engine.partition(TOPIC, 0).state())
        index = entries.segments[0].index.entries.copy()
    relative, position = (int(v) for v in index[2])
    file, batch_position, _length = _batch(log_dir, relative)
    assert batch_position == position
    _flip(file, position + 30)  # the batch the third index entry names
    _flip(directory / (segment_name(0) + ".index"), 8 * 3, 8)  # and the fourth entry
    with mqlog.open(log_dir) as log:
        later = relative + 10
        assert log.read(TOPIC, 0, later, max_records=1)[0].offset == later
        with pytest.raises(CorruptRecordError) as caught:
            log.read(TOPIC, 0, relative)
        assert (caught.value.damaged_start, caught.value.next_offset) == (relative, relative + 2)


def test_gap_marker_layout() -> None:
    marker = fmt.gap_batch(100, 7, BASE_MS)
    header = fmt.decode_header(marker, 0, len(marker))
    fmt.verify_batch(marker, 0, header)
    assert (len(marker), header.base_offset, header.next_offset, header.attributes,
            header.first_timestamp, header.max_timestamp) == (
        48, 100, 107, fmt.ATTR_GAP, BASE_MS, -(2**63))
    assert fmt.is_gap(header)
    longer = bytearray(marker + bytes(20))
    longer[8:12] = (68).to_bytes(4, "little")
    with pytest.raises(fmt.BatchError):
        fmt.decode_header(longer, 0, len(longer))


def test_a_damaged_commit_record_does_not_stop_the_group(log_dir: Path) -> None:
    _write(log_dir, batches=10)
    with mqlog.open(log_dir) as log, log.consumer("g") as consumer:
        consumer.assign([TP])
        for offset in (5, 7, 9):  # batches over the index interval: each gets an entry
            consumer.commit({TP: offset}, metadata="m" * 5000)
    root = log_dir / "topics" / "__consumer_offsets"
    [log_file] = [p / (segment_name(0) + ".log") for p in root.iterdir()
                  if (p / "state").exists() and read_state(str(p / "state")).end_offset]
    data = log_file.read_bytes()
    first = fmt.decode_header(data, 0, len(data))
    _flip(log_file, first.batch_length + 60)  # the second commit (before the last entry)
    with mqlog.open(log_dir) as log, log.consumer("g") as consumer:
        assert consumer.committed(TP) == 9


def test_damage_in_the_active_segment_past_its_last_index_entry_is_not_cut(
        log_dir: Path) -> None:
    """Recovery re-verifies the active segment from its last index entry; in the
    same boot, a batch there that fails its checks while intact batches follow
    is damage, not a torn append: it is journaled and left for reads to report,
    and the acknowledged records after it stay."""
    with mqlog.open(log_dir) as log:
        log.create_topic(TOPIC, index_interval_bytes=1 << 20, durability="none")
        for first in range(0, 200, 2):
            log.append(TOPIC, 0, [Record(b"v%d" % n, timestamp=BASE_MS + n)
                                  for n in (first, first + 1)])
    file, position, _length = _batch(log_dir, 20)
    _flip(file, position + 60)
    with mqlog.open(log_dir) as log:
        assert log.end_offset(TOPIC, 0) == 200
        assert _values(log.read(TOPIC, 0, 0, max_records=500)) == [
            b"v%d" % n for n in range(20)]
        with pytest.raises(CorruptRecordError) as caught:
            log.read(TOPIC, 0, 20)
        assert (caught.value.damaged_start, caught.value.next_offset) == (20, 22)
        assert _values(log.read(TOPIC, 0, 22, max_records=500)) == [
            b"v%d" % n for n in range(22, 200)]
        assert log.append(TOPIC, 0, [b"next"]) == 200
    [event] = [e for e in read_journal(str(log_dir)) if e.action == "damage"]
    assert (event.first_offset, event.end_offset) == (20, 22)
