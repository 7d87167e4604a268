"""``mqlog.open(path, read_only=True)``: reading a log while writing nothing at all.

A log is built with segments retention would delete, a compacted topic, a
consumer group (and a dead member's file that a writable look would remove), a
queue group with dead letters; then it is read in every way through a read-only
Log, and the directory -- every file's bytes and mtime, every directory's
entries and mtime -- must be exactly as before. Writes raise ReadOnlyError and
change nothing. Recovery happens in memory: a torn tail or a state from another
boot is read as recovery would leave it, without being repaired on disk.

Real read-only media (a read-only bind mount) and another user's log are in
``tests/cli/test_read_only_cli.py``.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

import mqlog
from mqlog import ReadOnlyError, UnknownTopicError
from mqlog.logstore._state import FILE_SIZE, SLOT_SIZE, StateFile
from mqlog.logstore.layout import NOTIFY_FILE, STATE_FILE
from tests.conftest import FakeClock
from tests.logstore._read_only_log import build, tree


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The log of :func:`build`, built once, and the clock's time after it."""
    path = tmp_path_factory.mktemp("read-only") / "log"
    clock = FakeClock()
    build(path, clock)
    return path, clock()


@pytest.fixture
def built(template: tuple[Path, int], log_dir: Path, clock) -> Path:
    """A fresh copy of the template log; ``clock`` set to when it was built."""
    shutil.copytree(template[0], log_dir)
    clock.now_ms = template[1]
    return log_dir


def read_everything(log: mqlog.Log) -> dict:
    """What a reader can learn, through every reading call."""
    seen: dict = {"topics": log.topics(), "groups": log.list_groups()}
    for name in seen["topics"]:
        description = log.describe_topic(name)
        seen[name] = description
        for p in description.partitions:
            records = list(log.iter(name, p.partition, p.start_offset))
            seen[name, p.partition] = [(r.offset, r.key, r.value) for r in records]
            if records:
                columns = log.read_columns(name, p.partition, p.start_offset)
                assert len(columns) == min(len(records), 10_000)
                seen[name, p.partition, "time"] = log.offset_for_time(
                    name, p.partition, records[len(records) // 2].timestamp)
    for group in seen["groups"]:
        seen[group] = log.describe_group(group)
    seen["queue"] = log.describe_queue("q")
    return seen


def test_a_read_only_log_reads_everything_and_changes_nothing(built: Path, clock) -> None:
    before = tree(built)
    with mqlog.open(built, read_only=True, clock=clock) as log:
        seen = read_everything(log)
    assert tree(built) == before
    events = seen["events"].partitions
    assert [p.start_offset for p in events] == [0, 0]  # retention was not applied
    assert seen["events", 0][0] == (0, None, b"event-0000" * 8)
    assert [r[2] for r in seen["events", 1]] == [b"event-%04d" % n * 8 for n in range(1, 300, 2)]
    latest = {b"k%d" % (n % 7): b"v%d" % n for n in range(200)}
    assert {r[1]: r[2] for r in seen["keys", 0]} == latest
    assert seen["groups"] == ["g", "q"]
    assert sum(p.committed_offset for p in seen["g"].partitions) == 300
    assert [m.member_id for m in seen["g"].members] == []
    [queue] = seen["queue"]
    assert (queue.position, queue.dead_lettered) == (5, 2)
    assert [r[2] for r in seen["jobs.dlq", 0]] == [b"job-3", b"job-4"]
    # The same reads through a writable Log: the same records, but the directory changes
    # (retention deletes segments, the dead member's file goes): the check above can fail.
    with mqlog.open(built, clock=clock) as log:
        assert seen["keys", 0] == read_everything(log)["keys", 0]
    assert tree(built) != before


WRITES = {
    "append": lambda log: log.append("events", 0, [b"x"]),
    "create_topic": lambda log: log.create_topic("new"),
    "alter_topic": lambda log: log.alter_topic("events", retention_ms=1),
    "delete_topic": lambda log: log.delete_topic("events"),
    "producer": lambda log: log.producer(),
    "consumer group": lambda log: log.consumer("g2", ["events"]),
    "queue": lambda log: log.queue("q", "jobs"),
    "responder": lambda log: log.responder("jobs", lambda request: b""),
    "request": lambda log: log.request("jobs", b"?", timeout=0.1),
    "enforce_retention": lambda log: log.enforce_retention(),
    "compact": lambda log: log.compact("keys"),
    "flush": lambda log: log.flush(),
    "reset_offsets": lambda log: log.reset_offsets("g", "events", to="earliest"),
    "alter_offsets": lambda log: log.alter_offsets("g", {("events", 0): 0}),
    "delete_offsets": lambda log: log.delete_offsets("g", "events"),
    "delete_group": lambda log: log.delete_group("g"),
    "redrive": lambda log: log.redrive("jobs.dlq"),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_raises_read_only_error_and_changes_nothing(built: Path, clock,
                                                                 write) -> None:
    before = tree(built)
    with mqlog.open(built, read_only=True, clock=clock) as log:
        log.read("events", 0, 0)  # the partition open: writes must still be refused
        with pytest.raises(ReadOnlyError, match="read-only"):
            write(log)
    assert tree(built) == before


def test_a_dry_run_reset_reads_only(built: Path, clock) -> None:
    before = tree(built)
    with mqlog.open(built, read_only=True, clock=clock) as log:
        plan = log.reset_offsets("g", "events", to="earliest", dry_run=True)
    assert sorted(new for _current, new in plan.values()) == [0, 0]
    assert tree(built) == before


def test_a_consumer_without_a_group_reads_from_a_read_only_log(built: Path, clock) -> None:
    before = tree(built)
    with mqlog.open(built, read_only=True, clock=clock) as log:
        consumer = log.consumer(auto_offset_reset="earliest")
        consumer.assign([mqlog.TopicPartition("events", 0)])
        assert len(consumer.poll(max_records=1000)) == 150
        consumer.close()
    assert tree(built) == before


def test_a_missing_directory_or_layout_file_is_an_error_that_creates_nothing(
        tmp_path: Path) -> None:
    with pytest.raises(mqlog.MqlogError, match="does not exist"):
        mqlog.open(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(mqlog.MqlogError, match="not a log directory"):
        mqlog.open(tmp_path, read_only=True)
    assert os.listdir(tmp_path) == ["nothing"] or os.listdir(tmp_path) == []


def test_a_topic_never_written_reads_as_empty(log_dir: Path) -> None:
    with mqlog.open(log_dir) as log:
        log.create_topic("fresh")
        log.alter_topic("fresh", partitions=2)  # partition 1: opened by nobody, no files
    assert os.listdir(log_dir / "topics" / "fresh" / "1") == []
    before = tree(log_dir)
    with mqlog.open(log_dir, read_only=True) as log:
        assert log.read("fresh", 1, 0) == []
        assert (log.start_offset("fresh", 1), log.end_offset("fresh", 1)) == (0, 0)
        assert log.offset_for_time("fresh", 1, 0) == 0
        assert log.describe_topic("fresh").partitions[1].segment_count == 0
        assert log.list_groups() == []
    assert tree(log_dir) == before


# -- recovery in memory --------------------------------------------------------------------


def _written(log_dir: Path, count: int) -> list[bytes]:
    values = [b"value-%03d" % n for n in range(count)]
    with mqlog.open(log_dir) as log:
        log.create_topic("t", segment_bytes=1 << 20, index_interval_bytes=64)
        for value in values:
            log.append("t", 0, [value])
    return values


def _state_path(log_dir: Path) -> Path:
    return log_dir / "topics" / "t" / "0" / STATE_FILE


def _as_from_another_boot(log_dir: Path) -> None:
    """Rewrite both state slots as written in another boot of the machine (checksums
    kept valid), the state a power loss leaves: recovery must re-read the segment."""
    path = _state_path(log_dir)
    data = bytearray(path.read_bytes())
    import xxhash

    for start in (0, SLOT_SIZE):
        data[start + 88:start + 104] = b"\x01" * 16
        struct.pack_into("<Q", data, start, xxhash.xxh3_64_intdigest(
            bytes(data[start + 8:start + SLOT_SIZE])))
    path.write_bytes(bytes(data))


def _append_garbage_after_the_end(log_dir: Path) -> None:
    segment = log_dir / "topics" / "t" / "0" / f"{0:020d}.log"
    state = StateFile(str(_state_path(log_dir)))
    try:
        position = state.read().active_position
    finally:
        state.close()
    fd = os.open(segment, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\x17" * 200, position)  # a torn batch past the published end
    finally:
        os.close(fd)


@pytest.mark.parametrize("damage", ["another boot", "no state", "torn tail + another boot"])
def test_recovery_happens_in_memory(log_dir: Path, damage: str) -> None:
    values = _written(log_dir, 50)
    if damage == "no state":
        _state_path(log_dir).unlink()
    else:
        if "torn" in damage:
            _append_garbage_after_the_end(log_dir)
        _as_from_another_boot(log_dir)
    before = tree(log_dir)
    with mqlog.open(log_dir, read_only=True) as log:
        assert [r.value for r in log.read("t", 0, 0, max_records=100)] == values
        assert log.end_offset("t", 0) == 50
        assert log.read("t", 0, 50) == []
        with pytest.raises(mqlog.OffsetOutOfRangeError):
            log.read("t", 0, 51)
    assert tree(log_dir) == before
    with mqlog.open(log_dir) as log:  # a writer recovers on disk to the same end
        assert log.end_offset("t", 0) == 50
        assert [r.value for r in log.read("t", 0, 0, max_records=100)] == values


def test_a_read_only_reader_follows_a_writer_that_recovers_and_appends(log_dir: Path) -> None:
    values = _written(log_dir, 20)
    _append_garbage_after_the_end(log_dir)
    _as_from_another_boot(log_dir)
    with mqlog.open(log_dir, read_only=True) as reader:
        assert reader.end_offset("t", 0) == 20
        with mqlog.open(log_dir) as writer:  # recovers (zeroing the torn tail), appends
            writer.append("t", 0, [b"after-%d" % n for n in range(5)])
            assert reader.end_offset("t", 0) == 25
            records = reader.read("t", 0, 0, max_records=100)
            assert [r.value for r in records] == values + [b"after-%d" % n for n in range(5)]
            writer.alter_topic("t", segment_bytes=4096)
            for _roll in range(3):
                writer.append("t", 0, [b"x" * 3000])
                writer.append("t", 0, [b"y" * 3000])
            assert reader.end_offset("t", 0) == 31
            assert [r.value for r in reader.read("t", 0, 25, 100)] == [b"x" * 3000,
                                                                       b"y" * 3000] * 3


def test_a_read_only_tail_sees_appends_of_another_process(log_dir: Path) -> None:
    _written(log_dir, 3)
    with mqlog.open(log_dir, read_only=True) as reader, mqlog.open(log_dir) as writer:
        seen = reader.append_counter()
        writer.append("t", 0, [b"new"])
        reader.wait_for_append(seen, 1.0)
        assert reader.append_counter() != seen
        assert [r.value for r in reader.read("t", 0, 3)] == [b"new"]


def test_a_read_only_log_opened_before_any_writer_sees_the_counters_once_one_exists(
        log_dir: Path) -> None:
    """A log whose counters file no writer had created yet (here: removed, as a
    directory written by no process since it was built would have it) reads
    them as 0 until a writer creates it; from then on its topic changes are
    seen: a read-only handle of a topic deleted and created again answers the
    new topic, and a tail wakes on appends."""
    _written(log_dir, 3)
    (log_dir / NOTIFY_FILE).unlink()
    with mqlog.open(log_dir, read_only=True) as reader:
        assert reader.end_offset("t", 0) == 3  # the handle is open
        seen = reader.append_counter()
        with mqlog.open(log_dir) as writer:  # creates the counters file
            writer.delete_topic("t")
            writer.create_topic("t")
            writer.append("t", 0, [b"new"])
            assert reader.end_offset("t", 0) == 1
            assert reader.append_counter() != seen
            with pytest.raises(UnknownTopicError, match="was deleted"):  # told once
                reader.read("t", 0, 0)
            assert [r.value for r in reader.read("t", 0, 0)] == [b"new"]


def test_a_state_file_being_created_reads_as_no_state(tmp_path: Path) -> None:
    path = tmp_path / "state"
    state = StateFile(str(path), read_only=True)
    assert state.read() is None and not path.exists()
    path.write_bytes(bytes(FILE_SIZE // 2))  # a creator between open and ftruncate
    assert state.read() is None
    writer = StateFile(str(path))
    try:
        assert state.read() is None  # both slots still empty
    finally:
        writer.close()
        state.close()
