"""Recovery never loses what it need not and never hands an offset out twice.

* A damaged state file (any single flipped bit of either slot) is never trusted
  over the batches on disk: every acknowledged ``durability="always"`` record
  survives, in this boot and after "another boot" (the boot id monkeypatched).
* External truncation of the active or of a closed segment, and a consumer
  group's commit beyond the recovered end, leave a recorded gap: the end never
  goes back, the offsets are never reused, reads skip the gap.
* Junk index files of closed segments are rebuilt (identical to the originals)
  and ``verify`` passes afterwards.
* Every such recovery logs a warning and appends a line to ``recovery.jsonl``;
  a second open finds nothing left to do.

``MQLOG_SOAK=1`` flips all 2,048 bits of the state file; the default run flips a
spread sample of them.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import pytest

import mqlog
from mqlog.logstore import _format as fmt
from mqlog.logstore import _state
from mqlog.logstore._journal import JOURNAL_FILE, read_journal
from mqlog.logstore._producers import ProducerBatch
from mqlog.logstore._segment import list_segment_bases, segment_name
from mqlog.logstore._state import FILE_SIZE, SLOT_SIZE, PartitionState, StateFile, decode_slots
from mqlog.logstore.dump import dump_segment
from mqlog.logstore.verify import verify_log
from tests._directory import restore_files

SOAK = os.environ.get("MQLOG_SOAK") == "1"
TOPIC = "t"
#: The state file's bits flipped one at a time: all 2,048 when soaking, else a
#: fixed sample of them per boot variant.
STATE_BITS = range(FILE_SIZE * 8)
STATE_BITS_SAMPLE = 96
OTHER_BOOT = b"\x42" * 16
#: A process id no process has (above the kernel's limit): its temporary files are stale.
DEAD_PID = 2**22 + 1


class Pristine:
    """A closed log and a copy of its partition's files, to damage and restore."""

    def __init__(self, path: Path, batches: int, batch_records: int, **config) -> None:
        self.path = path
        self.expected: list[bytes] = []
        with mqlog.open(path) as log:
            log.create_topic(TOPIC, **config)
            for number in range(batches):
                values = [f"{number}.{i}".encode() for i in range(batch_records)]
                assert log.append(TOPIC, 0, values) == len(self.expected)
                self.expected.extend(values)
        self.directory = path / "topics" / TOPIC / "0"
        self.files = {p.name: p.read_bytes() for p in self.directory.iterdir()}
        self.bases = list_segment_bases(str(self.directory))

    def restore(self) -> None:
        restore_files(self.directory, self.files)
        (self.path / JOURNAL_FILE).unlink(missing_ok=True)

    def file(self, base: int, suffix: str) -> Path:
        return self.directory / (segment_name(base) + suffix)

    def batches(self, base: int) -> list[tuple[int, int, int]]:
        """(position, base offset, record count) of each batch of a pristine segment."""
        data = self.files[segment_name(base) + ".log"]
        out, position = [], 0
        while position < len(data):
            header = fmt.decode_header(data, position, len(data))
            out.append((position, header.base_offset, header.record_count))
            position += header.batch_length
        return out


def read_everything(log: mqlog.Log) -> list[tuple[int, bytes]]:
    return [(r.offset, r.value) for r in log.iter(TOPIC, 0)]


# -- the state file ---------------------------------------------------------------------------


def test_state_slots_tell_an_intact_file_from_a_damaged_one(tmp_path: Path) -> None:
    def state(end: int) -> PartitionState:
        return PartitionState(0, end, 0, end * 10, -1, 0, 0, 0, 0, 1)

    path = tmp_path / "state"
    file = StateFile(str(path))
    try:
        assert decode_slots(path.read_bytes()) == ((), False)  # never published
        first = file.publish(state(5), None)
        assert decode_slots(path.read_bytes()) == ((first,), False)
        second = file.publish(state(7), first)
        assert decode_slots(path.read_bytes()) == ((first, second), False)
        data = path.read_bytes()
        swapped = data[SLOT_SIZE:] + data[:SLOT_SIZE]  # each slot where the other belongs
        assert decode_slots(swapped).damaged
        assert decode_slots(data[:SLOT_SIZE] + bytes(SLOT_SIZE)).damaged  # seq 2 alone
        flipped = bytearray(data)
        flipped[SLOT_SIZE + 30] ^= 1
        assert decode_slots(bytes(flipped)) == ((second,), True)
        third = file.publish(state(9), file.publish(state(8), second))
        stale = path.read_bytes()[:SLOT_SIZE] + data[SLOT_SIZE:]  # slot 1 two publishes old
        assert decode_slots(stale).damaged and decode_slots(stale).newest == third
    finally:
        file.close()


@pytest.fixture(scope="module")
def always_log(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """Acknowledged durability="always" batches over a few segments; the state's
    newest slot publishes the last batch, the older one the end before it."""
    return Pristine(tmp_path_factory.mktemp("state") / "log", batches=40, batch_records=3,
                    durability="always", segment_bytes=4096, index_interval_bytes=256)


def _check_nothing_lost(lab: Pristine, context: str) -> None:
    with mqlog.open(lab.path) as log:
        end = log.end_offset(TOPIC, 0)
        assert end >= len(lab.expected), context
        records = read_everything(log)
        assert records == list(enumerate(lab.expected)), context
        assert log.append(TOPIC, 0, [b"after"]) == end, context  # never below an old end


@pytest.mark.parametrize("boot", ["same boot", "another boot"])
def test_every_flipped_state_bit_loses_no_acknowledged_record(
        always_log: Pristine, boot: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if boot == "another boot":
        monkeypatch.setattr(_state, "BOOT_ID", OTHER_BOOT)
    state = always_log.directory / "state"
    bits = STATE_BITS if SOAK else random.Random(boot).sample(STATE_BITS, STATE_BITS_SAMPLE)
    for bit in bits:
        always_log.restore()
        data = bytearray(always_log.files["state"])
        data[bit // 8] ^= 1 << (bit % 8)
        state.write_bytes(bytes(data))
        _check_nothing_lost(always_log, f"{boot}: bit {bit % 8} of state byte {bit // 8}")


def test_a_damaged_state_file_is_journaled_and_warned_about(
        always_log: Pristine, caplog: pytest.LogCaptureFixture) -> None:
    always_log.restore()
    data = bytearray(always_log.files["state"])
    data[3] ^= 0x10  # a checksum byte of the first slot
    (always_log.directory / "state").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="mqlog.logstore"):
        _check_nothing_lost(always_log, "checksum bit")
    [event] = read_journal(always_log.path)
    assert (event.topic, event.partition, event.action) == (TOPIC, 0, "state")
    assert "state file is damaged" in event.reason
    assert any("recovery" in r.getMessage() and "state" in r.getMessage()
               for r in caplog.records if r.name == "mqlog.logstore")


# -- external truncation ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def six_hundred(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """600 records in batches of 6: one segment (the active one)."""
    return Pristine(tmp_path_factory.mktemp("truncate") / "log", batches=100,
                    batch_records=6, durability="interval")


@pytest.mark.parametrize("inside", [0, 20], ids=["at a batch start", "inside a batch"])
def test_truncated_active_segment_keeps_its_end_with_a_recorded_gap(
        six_hundred: Pristine, inside: int, caplog: pytest.LogCaptureFixture) -> None:
    """Cut at the batch holding offset 558: before, the next open moved the end from
    600 back to 558 and handed out 558 again."""
    lab = six_hundred
    lab.restore()
    [base] = lab.bases
    position = next(p for p, first, _count in lab.batches(base) if first == 558)
    os.truncate(lab.file(base, ".log"), position + inside)
    with caplog.at_level(logging.WARNING, logger="mqlog.logstore"), mqlog.open(lab.path) as log:
        assert log.end_offset(TOPIC, 0) == 600
        assert read_everything(log) == list(enumerate(lab.expected[:558]))
        assert log.read(TOPIC, 0, 558) == [] and log.read(TOPIC, 0, 599) == []
        assert log.append(TOPIC, 0, [b"new"]) == 600
        assert read_everything(log)[-2:] == [(557, lab.expected[557]), (600, b"new")]
        assert log.read(TOPIC, 0, 570)[0].offset == 600
    events = read_journal(lab.path)
    assert [(e.action, e.first_offset, e.end_offset) for e in events] == [
        ("cut", 558, 600), ("gap", 558, 600)]
    assert events[0].bytes == len(lab.files[segment_name(base) + ".log"]) - position
    assert "gap offsets 558..599" in caplog.text
    report = verify_log(lab.path)
    assert (report.errors, len(report.recoveries)) == ([], 2)
    gaps = [b for b in dump_segment(lab.file(base, ".log")) if b.gap]
    assert [(b.valid, b.base_offset, b.record_count, b.records) for b in gaps] == [
        (True, 558, 42, ())]
    with mqlog.open(lab.path) as log:  # a second open has nothing to do
        assert log.end_offset(TOPIC, 0) == 601
    assert len(read_journal(lab.path)) == 2


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """Many small segments with dense indexes."""
    return Pristine(tmp_path_factory.mktemp("segments") / "log", batches=120,
                    batch_records=2, durability="none", segment_bytes=4096,
                    index_interval_bytes=128)


def test_truncated_closed_segment_is_cut_and_its_lost_offsets_recorded(
        segments: Pristine) -> None:
    lab = segments
    lab.restore()
    base, following = lab.bases[1], lab.bases[2]
    position, lost, _count = lab.batches(base)[-3]
    os.truncate(lab.file(base, ".log"), position + 30)  # inside the third batch from the end
    with mqlog.open(lab.path) as log:
        assert log.end_offset(TOPIC, 0) == len(lab.expected)
        kept = [(o, v) for o, v in enumerate(lab.expected) if not lost <= o < following]
        assert read_everything(log) == kept
        assert log.read(TOPIC, 0, lost)[0].offset == following
        assert log.append(TOPIC, 0, [b"new"]) == len(lab.expected)
    events = read_journal(lab.path)
    assert [(e.action, e.first_offset, e.end_offset, e.file) for e in events] == [
        ("cut", lost, following, str(lab.file(base, ".log"))),
        ("gap", lost, following, str(lab.file(base, ".log")))]
    assert verify_log(lab.path).errors == []
    with mqlog.open(lab.path) as log:
        assert read_everything(log)[:len(kept)] == kept
    assert len(read_journal(lab.path)) == 2


def test_closed_segment_truncated_at_a_batch_start_records_a_gap(segments: Pristine) -> None:
    lab = segments
    lab.restore()
    base, following = lab.bases[0], lab.bases[1]
    position, lost, _count = lab.batches(base)[-2]
    os.truncate(lab.file(base, ".log"), position)
    with mqlog.open(lab.path) as log:
        assert log.read(TOPIC, 0, lost - 1, max_records=2)[1].offset == following
    assert [(e.action, e.first_offset, e.end_offset) for e in read_journal(lab.path)] == [
        ("gap", lost, following)]
    assert verify_log(lab.path).errors == []


def test_a_damaged_batch_inside_a_closed_segment_is_not_cut(segments: Pristine) -> None:
    """Damage with intact batches after it is reported by reads, never cut on open."""
    lab = segments
    lab.restore()
    base = lab.bases[1]
    position, damaged, _count = lab.batches(base)[-3]
    path = lab.file(base, ".log")
    data = bytearray(path.read_bytes())
    data[position + fmt.BATCH_HEADER_SIZE + 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with mqlog.open(lab.path) as log:
        assert log.read(TOPIC, 0, damaged + 2)[0].offset == damaged + 2
    assert read_journal(lab.path) == []
    assert path.read_bytes() == bytes(data)


# -- committed offsets ------------------------------------------------------------------------


def test_a_committed_offset_beyond_the_recovered_end_is_never_handed_out_again(
        six_hundred: Pristine) -> None:
    """Records a group consumed and committed are lost (the state too, as after a
    power loss under durability="interval"): the end is lifted to the commit."""
    lab = six_hundred
    lab.restore()
    with mqlog.open(lab.path) as log:
        consumer = log.consumer("g", [TOPIC], auto_offset_reset="earliest")
        seen = 0
        while seen < 600:
            seen += len(consumer.poll(timeout=1.0))
        consumer.commit()
        consumer.close()
    [base] = lab.bases
    position = next(p for p, first, _count in lab.batches(base) if first == 558)
    os.truncate(lab.file(base, ".log"), position)
    (lab.directory / "state").unlink()
    with mqlog.open(lab.path) as log:
        assert log.end_offset(TOPIC, 0) == 600
        assert log.append(TOPIC, 0, [b"new"]) == 600
        consumer = log.consumer("g", [TOPIC])
        assert [(m.offset, m.value) for m in consumer.poll(timeout=5.0)] == [(600, b"new")]
        consumer.close()
    [gap] = [e for e in read_journal(lab.path) if e.action == "gap"]
    assert (gap.first_offset, gap.end_offset) == (558, 600)
    assert "offset 600, which a group has consumed up to" in gap.reason


def test_ensure_end_at_least_records_a_gap(six_hundred: Pristine) -> None:
    lab = six_hundred
    lab.restore()
    with mqlog.open(lab.path) as log:
        partition = log.engine.partition(TOPIC, 0)
        assert partition.ensure_end_at_least(600, "no-op") is False
        assert partition.ensure_end_at_least(650, "test") is True
        assert log.end_offset(TOPIC, 0) == 650
        assert log.read(TOPIC, 0, 600) == []
        assert partition.timestamp_at(620) is None
        assert log.offset_for_time(TOPIC, 0, -(2**63)) == 0
        assert log.append(TOPIC, 0, [b"x"]) == 650
        assert [r.offset for r in log.read(TOPIC, 0, 599)] == [599, 650]
        with pytest.raises(TypeError):
            partition.ensure_end_at_least("700", "bad")  # type: ignore[arg-type]
    [event] = read_journal(lab.path)
    assert (event.action, event.first_offset, event.end_offset, event.reason) == (
        "gap", 600, 650, "test")
    assert verify_log(lab.path).errors == []


# -- closed-segment indexes -------------------------------------------------------------------


@pytest.mark.parametrize("junk", ["random", "random-longer", "zeros", "empty", "one bit"])
def test_junk_indexes_of_closed_segments_are_rebuilt(segments: Pristine, junk: str) -> None:
    """As Kafka's LogSegmentTest does: overwrite the index files with junk, reopen;
    the files come back as they were, verify passes, the journal says so."""
    lab = segments
    lab.restore()
    leftover = f"{segment_name(0)}.index.{DEAD_PID}-0123abcd01234567.tmp"  # atomic_write's
    (lab.directory / leftover).write_bytes(b"left by a crash")
    rng = np.random.default_rng(7)
    closed = lab.bases[:-1]
    for base in closed:
        for suffix in (".index", ".timeindex"):
            path = lab.file(base, suffix)
            path.write_bytes(_junk(junk, path.read_bytes(), rng))
    if junk not in ("zeros", "empty"):  # verify takes those for unwritten preallocation
        assert verify_log(lab.path).errors
    with mqlog.open(lab.path) as log:
        assert read_everything(log) == list(enumerate(lab.expected))
    for base in closed:
        for suffix in (".index", ".timeindex"):
            name = segment_name(base) + suffix
            assert lab.file(base, suffix).read_bytes() == lab.files[name], name
    assert verify_log(lab.path).errors == []
    events = read_journal(lab.path)
    assert sorted(e.first_offset for e in events) == closed
    assert {e.action for e in events} == {"index"}
    with mqlog.open(lab.path) as log:
        log.end_offset(TOPIC, 0)
    assert len(read_journal(lab.path)) == len(closed)
    assert not (lab.directory / leftover).exists()


def _junk(kind: str, data: bytes, rng: np.random.Generator) -> bytes:
    """What replaces an index file's ``data``."""
    if kind == "one bit":  # in the position (or low timestamp) field of an entry near the end
        out = bytearray(data)
        out[len(data) - 12] ^= 0x04
        return bytes(out)
    size = len(data)
    return {"random": rng.bytes(size), "random-longer": rng.bytes(size * 3 + 40),
            "zeros": bytes(size), "empty": b""}[kind]


def test_an_idempotent_retry_of_a_batch_in_a_gap_is_written_again(tmp_path: Path) -> None:
    """The producer table says the batch ended at or below the end, but its records
    are in a recorded gap: a retry (the producer never got the acknowledgement)
    must write them, not return the lost batch's offset."""
    producer = 0x5EED
    with mqlog.open(tmp_path / "log") as log:
        log.create_topic(TOPIC)
        partition = log.engine.partition(TOPIC, 0)
        assert partition.append([b"a", b"b"], producer=ProducerBatch(producer, 0, 0)) == 0
        assert partition.append([b"c", b"d"], producer=ProducerBatch(producer, 0, 2)) == 2
    segment = tmp_path / "log" / "topics" / TOPIC / "0" / (segment_name(0) + ".log")
    os.truncate(segment, segment.stat().st_size - 5)  # inside the second batch
    with mqlog.open(tmp_path / "log") as log:
        partition = log.engine.partition(TOPIC, 0)
        assert log.end_offset(TOPIC, 0) == 4
        assert partition.append([b"c", b"d"], producer=ProducerBatch(producer, 0, 2)) == 4
        retry = ProducerBatch(producer, 0, 2)
        assert partition.append([b"c", b"d"], producer=retry) == 4  # now written
        assert [(r.offset, r.value) for r in log.iter(TOPIC, 0)] == [
            (0, b"a"), (1, b"b"), (4, b"c"), (5, b"d")]
