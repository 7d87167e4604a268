"""Damaged files on open: torn tails, flipped bytes, junk indexes, lost state.

A small log (several segments, dense sparse indexes) is written and closed once;
before each case its partition files are restored from a pristine copy, then damaged
the way a crash or a bad disk would, and the log is reopened. Opening must always
succeed; reading returns exactly a prefix of what was written (a damaged batch is
either cut by recovery or reported by CorruptRecordError carrying topic, partition,
offset and file); appends continue at the recovered end and read back. Damage to
index or state files loses nothing: the data is intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import mqlog
from mqlog import CorruptRecordError
from mqlog.logstore import _format as fmt
from mqlog.logstore._segment import list_segment_bases, segment_name
from mqlog.logstore._state import SLOT_SIZE, decode_state
from tests._directory import restore_files

from ._children import BASE_TIMESTAMP_MS, Expected, as_expected, to_appendable

TOPIC = "events"
SEGMENT_BYTES = 4096
INDEX_INTERVAL_BYTES = 128
BATCHES = 175
#: The last batches are tiny, so that cutting the file at each of their bytes is quick.
TINY_LAST = 3
SEED = 20240611


class Batch(NamedTuple):
    """Where one batch lies in a segment file."""

    position: int
    end: int
    base_offset: int
    count: int


def _small_batch(rng: random.Random, batch_no: int, tiny: bool = False) -> list[Expected]:
    """1..3 small records with explicit, increasing timestamps; some keys and headers.
    A ``tiny`` batch has one record and is some 80 bytes."""
    records = []
    for index in range(1 if tiny else rng.randint(1, 3)):
        if tiny:
            records.append((f"{batch_no}".encode(), None, {}, BASE_TIMESTAMP_MS + batch_no * 10))
            continue
        value = f"{batch_no}.{index}:".encode() + rng.randbytes(rng.randint(0, 24))
        key = rng.randbytes(rng.randint(0, 6)) if rng.random() < 0.3 else None
        headers = {"h": rng.randbytes(rng.randint(0, 5))} if rng.random() < 0.2 else {}
        records.append((value, key, headers, BASE_TIMESTAMP_MS + batch_no * 10 + index))
    return records


class DamageLab:
    """A closed log of small batches, its pristine partition files, and helpers to
    damage, reopen and check it."""

    def __init__(self, root: Path) -> None:
        self.path = str(root / "log")
        self.expected: list[Expected] = []
        rng = random.Random(SEED)
        with mqlog.open(self.path) as log:
            log.create_topic(TOPIC, segment_bytes=SEGMENT_BYTES,
                             index_interval_bytes=INDEX_INTERVAL_BYTES, durability="none")
            for batch_no in range(BATCHES):
                batch = _small_batch(rng, batch_no, tiny=batch_no >= BATCHES - TINY_LAST)
                log.append(TOPIC, 0, to_appendable(batch))
                self.expected.extend(batch)
        self.directory = Path(self.path, "topics", TOPIC, "0")
        self.pristine = {p.name: p.read_bytes() for p in self.directory.iterdir()}
        self.bases = list_segment_bases(str(self.directory))
        assert len(self.bases) >= 4, "the log must span several segments"
        assert len(self.batches(self.bases[-1])) >= 10, "the last segment must be long"

    def restore(self) -> None:
        """Put back the pristine partition files (and nothing else)."""
        restore_files(self.directory, self.pristine)

    def file(self, base: int, suffix: str) -> Path:
        return self.directory / (segment_name(base) + suffix)

    def batches(self, base: int) -> list[Batch]:
        """The batches of a pristine segment, in order."""
        data = self.pristine[segment_name(base) + ".log"]
        out, position = [], 0
        while position < len(data):
            header = fmt.decode_header(data, position, len(data))
            out.append(Batch(position, position + header.batch_length, header.base_offset,
                             header.record_count))
            position += header.batch_length
        return out

    def read_all(self, log: mqlog.Log) -> tuple[list[Expected], CorruptRecordError | None]:
        """Every record from offset 0 up to the end or the first corrupt batch, with
        offsets checked dense; the CorruptRecordError met, if any."""
        out: list[Expected] = []
        end = log.end_offset(TOPIC, 0)
        error = None
        while len(out) < end:
            offset = len(out)
            want = end - offset if error is None else error.offset - offset
            if want <= 0:
                break
            try:
                records = log.read(TOPIC, 0, offset, max_records=want)
            except CorruptRecordError as exc:
                if error is not None:
                    raise AssertionError(f"reading below {error.offset} failed: {exc}") from exc
                error = exc
                continue
            if not records:  # a gap recorded by recovery runs to the end: nothing after it
                assert log.read(TOPIC, 0, end) == [], f"nothing read at {offset} below {end}"
                break
            assert [r.offset for r in records] == list(range(offset, offset + len(records)))
            out.extend(as_expected(r) for r in records)
        return out, error

    def check_append_after_recovery(self, log: mqlog.Log) -> None:
        """Appending continues at the end offset and the new records read back."""
        end = log.end_offset(TOPIC, 0)
        batch = _small_batch(random.Random(end), 10_000)
        assert log.append(TOPIC, 0, to_appendable(batch)) == end
        assert log.end_offset(TOPIC, 0) == end + len(batch)
        back = log.read(TOPIC, 0, end, max_records=1000)
        assert [r.offset for r in back] == list(range(end, end + len(batch)))
        assert [as_expected(r) for r in back] == batch

    def check_intact(self) -> None:
        """Reopen: every record is there and reads back exactly; appends work."""
        with mqlog.open(self.path) as log:
            records, error = self.read_all(log)
            assert error is None
            assert log.end_offset(TOPIC, 0) == len(self.expected)
            assert records == self.expected
            self.check_append_after_recovery(log)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> DamageLab:
    return DamageLab(tmp_path_factory.mktemp("damage"))


@pytest.fixture
def fresh(lab: DamageLab) -> DamageLab:
    lab.restore()
    return lab


def _complete_records(batches: list[Batch], size: int) -> int:
    """The end offset after recovery of a segment cut to ``size`` bytes."""
    complete = [b for b in batches if b.end <= size]
    return complete[-1].base_offset + complete[-1].count if complete else batches[0].base_offset


@pytest.mark.parametrize(("state", "step"), [("kept", 1), ("deleted", 5)])
def test_truncating_last_segment_at_every_byte_keeps_exactly_the_complete_batches(
    fresh: DamageLab, state: str, step: int
) -> None:
    """Cut inside the last three batches: at every byte with the state file kept, at
    every fifth with it deleted (the slower, untrusted recovery). Only the last
    segment is read back each time (the others are not touched). With the state
    kept, the end stays where it published it: the cut offsets are a recorded gap."""
    base = fresh.bases[-1]
    batches = fresh.batches(base)
    log_file = fresh.file(base, ".log")
    for size in range(batches[-TINY_LAST].position, batches[-1].end, step):
        fresh.restore()
        os.truncate(log_file, size)
        if state == "deleted":
            (fresh.directory / "state").unlink()
        with mqlog.open(fresh.path) as log:
            survivors = _complete_records(batches, size)
            end = len(fresh.expected) if state == "kept" else survivors
            assert (size, log.end_offset(TOPIC, 0)) == (size, end)
            back = log.read(TOPIC, 0, base, max_records=len(fresh.expected))
            assert [as_expected(r) for r in back] == fresh.expected[base:survivors], size
            fresh.check_append_after_recovery(log)


def test_batch_appended_over_a_cut_tail_reads_back(fresh: DamageLab) -> None:
    """Recovery cuts a torn last batch of a trimmed segment and records its offset
    as a gap; the next batch starts after the gap and runs past the old end of the
    file, and must read back whole."""
    base = fresh.bases[-1]
    last = fresh.batches(base)[-1]
    os.truncate(fresh.file(base, ".log"), last.end - 1)
    end = last.base_offset + last.count
    with mqlog.open(fresh.path) as log:
        assert log.end_offset(TOPIC, 0) == end
        value = b"v" * (last.end - last.position)
        assert log.append(TOPIC, 0, [value]) == end
        back = log.read(TOPIC, 0, last.base_offset)
        assert [(r.offset, r.value) for r in back] == [(end, value)]


def test_segment_left_by_an_interrupted_roll_is_reused(fresh: DamageLab) -> None:
    """A roll that died after creating the next (preallocated) segment but before
    publishing it: nothing is lost, and the next batch -- here larger than a whole
    segment -- goes into that segment and reads back."""
    end = len(fresh.expected)
    with open(fresh.file(end, ".log"), "wb") as handle:
        handle.truncate(SEGMENT_BYTES)
    fresh.file(end, ".index").write_bytes(b"")
    fresh.file(end, ".timeindex").write_bytes(b"")
    with mqlog.open(fresh.path) as log:
        records, error = fresh.read_all(log)
        assert (error, log.end_offset(TOPIC, 0), records == fresh.expected) == (None, end, True)
        value = bytes(range(256)) * (SEGMENT_BYTES // 128)
        assert log.append(TOPIC, 0, [value]) == end
        back = log.read(TOPIC, 0, end)
        assert [(r.offset, r.value) for r in back] == [(end, value)]


def _flip(path: Path, position: int, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


def _batch_at(batches: list[Batch], position: int) -> Batch:
    return next(b for b in batches if b.position <= position < b.end)


def test_flipped_byte_in_last_segment_cuts_or_reports_the_damaged_batch(
    fresh: DamageLab,
) -> None:
    base = fresh.bases[-1]
    batches = fresh.batches(base)
    log_file = fresh.file(base, ".log")
    rng = random.Random(SEED + 1)
    outcomes = set()
    for _ in range(40):
        fresh.restore()
        position = rng.randrange(batches[-1].end)
        damaged = _batch_at(batches, position)
        _flip(log_file, position, rng)
        with mqlog.open(fresh.path) as log:
            records, error = fresh.read_all(log)
            context = f"flipped byte at {position} in batch at {damaged.position}"
            assert records == fresh.expected[: damaged.base_offset], context
            if error is None:  # recovery re-verified the tail and cut it there (a gap)
                assert log.end_offset(TOPIC, 0) == len(fresh.expected), context
                outcomes.add("cut")
            else:  # the batch lies before the last index entry: reported on read
                assert (error.topic, error.partition, error.offset, error.file) == (
                    TOPIC, 0, damaged.base_offset, str(log_file)), context
                assert log.end_offset(TOPIC, 0) == len(fresh.expected), context
                outcomes.add("reported")
            fresh.check_append_after_recovery(log)
    assert outcomes == {"cut", "reported"}


def test_flipped_byte_in_older_segment_is_reported_and_the_rest_stays_readable(
    fresh: DamageLab,
) -> None:
    base = fresh.bases[1]
    batches = fresh.batches(base)
    damaged = batches[len(batches) // 2]
    log_file = fresh.file(base, ".log")
    _flip(log_file, damaged.position + fmt.BATCH_HEADER_SIZE + 3, random.Random(SEED))
    with mqlog.open(fresh.path) as log:
        records, error = fresh.read_all(log)
        assert records == fresh.expected[: damaged.base_offset]
        assert isinstance(error, CorruptRecordError)
        assert (error.topic, error.partition, error.offset, error.file) == (
            TOPIC, 0, damaged.base_offset, str(log_file))
        assert str(log_file) in str(error)
        after = fresh.bases[2]  # the next segment: no lookup there crosses the damage
        back = log.read(TOPIC, 0, after, max_records=len(fresh.expected))
        assert [as_expected(r) for r in back] == fresh.expected[after:]
        assert log.end_offset(TOPIC, 0) == len(fresh.expected)
        fresh.check_append_after_recovery(log)


def _expected_offset_for_time(expected: list[Expected], timestamp: int) -> int:
    return next((i for i, record in enumerate(expected) if record[3] >= timestamp),
                len(expected))


def _check_lookups(lab: DamageLab, context: str) -> None:
    """Reads from many offsets and offset_for_time give exactly the written records;
    reading everything meets no CorruptRecordError; appends work."""
    with mqlog.open(lab.path) as log:
        total = len(lab.expected)
        try:
            for offset in range(0, total, 7):
                back = log.read(TOPIC, 0, offset, max_records=4)
                assert [as_expected(r) for r in back] == lab.expected[offset : offset + 4], (
                    f"{context}: read at {offset}")
            for offset in range(0, total, 13):
                timestamp = lab.expected[offset][3]
                assert log.offset_for_time(TOPIC, 0, timestamp) == _expected_offset_for_time(
                    lab.expected, timestamp), f"{context}: offset_for_time({timestamp})"
        except CorruptRecordError as exc:
            pytest.fail(f"{context}: intact data reported corrupt: {exc}")
        records, error = lab.read_all(log)
        assert (error, records == lab.expected) == (None, True), context
        lab.check_append_after_recovery(log)


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
@pytest.mark.parametrize("segment", ["active", "closed"])
def test_flipped_index_bytes_lose_nothing(fresh: DamageLab, suffix: str, segment: str) -> None:
    rng = random.Random(f"{SEED}{suffix}{segment}")
    bases = fresh.bases[-1:] if segment == "active" else fresh.bases[:-1]
    for _ in range(15):
        fresh.restore()
        path = fresh.file(rng.choice(bases), suffix)
        position = rng.randrange(path.stat().st_size)
        _flip(path, position, rng)
        _check_lookups(fresh, f"{path.name} byte {position} flipped")


def _junk(kind: str, size: int, rng: random.Random) -> bytes:
    """Replacement content for an index file of ``size`` bytes."""
    if kind == "random":
        return rng.randbytes(size)
    if kind == "random-longer":
        return rng.randbytes(size * 3 + 40)
    return bytes(size) if kind == "zeros" else b""


def _misleading_entry(lab: DamageLab, base: int) -> tuple[int, int, int]:
    """(slot, relative offset, new position) for an offset-index entry of segment
    ``base`` rewritten to point one batch further than it should: still well formed
    (offsets and positions increasing), but the batch there starts after the
    entry's offset."""
    entries = np.frombuffer(lab.pristine[segment_name(base) + ".index"],
                            dtype=fmt.OFFSET_INDEX_DTYPE)
    starts = [b.position for b in lab.batches(base)]
    for slot in range(len(entries) - 1):
        position, following = int(entries["position"][slot]), int(entries["position"][slot + 1])
        later = [p for p in starts if position < p < following]
        if later:
            return slot, int(entries["relative_offset"][slot]), later[0]
    raise AssertionError(f"no index entry of segment {base} spans two batches")


@pytest.mark.parametrize("segment", ["active", "closed"])
def test_misleading_index_entry_never_skips_records(fresh: DamageLab, segment: str) -> None:
    """Reads at the entry's offset return exactly that record, never a later one."""
    base = fresh.bases[-1] if segment == "active" else fresh.bases[1]
    slot, relative, position = _misleading_entry(fresh, base)
    path = fresh.file(base, ".index")
    entries = np.frombuffer(bytearray(path.read_bytes()), dtype=fmt.OFFSET_INDEX_DTYPE)
    entries["position"][slot] = position
    path.write_bytes(entries.tobytes())
    offset = base + relative
    with mqlog.open(fresh.path) as log:
        back = log.read(TOPIC, 0, offset, max_records=1)
        assert [(r.offset, as_expected(r)) for r in back] == [(offset, fresh.expected[offset])]


@pytest.mark.parametrize("junk", ["random", "random-longer", "zeros", "empty"])
@pytest.mark.parametrize("segment", ["active", "closed"])
def test_junk_indexes_lose_nothing(fresh: DamageLab, junk: str, segment: str) -> None:
    rng = random.Random(f"{SEED}{junk}{segment}")
    bases = fresh.bases[-1:] if segment == "active" else fresh.bases[:-1]
    for base in bases:
        for suffix in (".index", ".timeindex"):
            path = fresh.file(base, suffix)
            path.write_bytes(_junk(junk, path.stat().st_size, rng))
    _check_lookups(fresh, f"{junk} {segment} indexes")


def test_deleted_state_file_recovers_everything(fresh: DamageLab) -> None:
    (fresh.directory / "state").unlink()
    fresh.check_intact()


@pytest.mark.parametrize("length", [0, 1, 104, 105, 127, 128, 200, 232, 233, 255])
def test_truncated_state_file_keeps_what_its_surviving_slots_publish(
    fresh: DamageLab, length: int
) -> None:
    """A cut state file is damaged unless both slots survive whole: the log is then
    rebuilt from the newest segment, never trusting the surviving slot, and nothing
    is lost (before, with only the older slot left, the last batch was cut)."""
    expected_end = len(fresh.expected)
    os.truncate(fresh.directory / "state", length)
    with mqlog.open(fresh.path) as log:
        records, error = fresh.read_all(log)
        assert (error, log.end_offset(TOPIC, 0)) == (None, expected_end)
        assert records == fresh.expected[:expected_end]
        fresh.check_append_after_recovery(log)


def test_damaged_newest_state_slot_loses_nothing(fresh: DamageLab) -> None:
    """The older slot publishes an end below the last batch: it is not trusted over
    the valid batches on disk (before, the last batch was cut)."""
    with open(fresh.directory / "state", "rb") as handle:
        newest = decode_state(handle.read())
    assert newest is not None and newest.end_offset == len(fresh.expected)
    _flip(fresh.directory / "state", (newest.sequence % 2) * SLOT_SIZE + 30,
          random.Random(SEED))
    fresh.check_intact()


def test_both_state_slots_damaged_recovers_everything(fresh: DamageLab) -> None:
    rng = random.Random(SEED)
    _flip(fresh.directory / "state", 40, rng)
    _flip(fresh.directory / "state", SLOT_SIZE + 40, rng)
    fresh.check_intact()


def test_deleted_index_files_are_rebuilt_on_open(fresh: DamageLab) -> None:
    """The active segment's indexes come back entry for entry; lookups in every
    segment stay exact."""
    base = fresh.bases[-1]
    for suffix in (".index", ".timeindex"):
        fresh.file(base, suffix).unlink()
    with mqlog.open(fresh.path) as log:
        records, error = fresh.read_all(log)
        assert (error, records == fresh.expected) == (None, True)
    for suffix in (".index", ".timeindex"):
        name = segment_name(base) + suffix
        assert fresh.file(base, suffix).read_bytes() == fresh.pristine[name], name
    fresh.restore()
    for older in fresh.bases:
        for suffix in (".index", ".timeindex"):
            fresh.file(older, suffix).unlink()
    _check_lookups(fresh, "every index file deleted")
