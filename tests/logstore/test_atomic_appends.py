"""An append of many records lands whole or not at all: across batch splits, failed
writes (a full disk), segment rolls and recovery after a power loss.

A power loss is simulated by copying the log directory while it is open (the
copy holds whatever the page cache held, including bytes beyond the published
end) and opening the copy as if the machine had rebooted: the boot id is
patched, so recovery does not trust the state file and scans the newest segment
to its end. ``MQLOG_POWER_LOSS_SEED`` replays a seed of the randomized test
(printed on failure); ``MQLOG_SOAK=1`` runs more trials.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path

import pytest

import mqlog
from mqlog.logstore import ProducerBatch, _partition, _producers, _segment, _state
from mqlog.logstore import _format as fmt

T = "atomic"
SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
#: Small batches: 4 records of 60 bytes each (48 + 4 x (20 + 60) = 368 <= 400).
BATCH_BYTES = 400
VALUE_BYTES = 60
RECORDS_PER_BATCH = 4
PAGE = 4096


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "BATCH_BYTES_MAX", BATCH_BYTES)


def values(append: int, count: int) -> list[bytes]:
    """The records of append number ``append``: each names its append and index."""
    return [f"{append}:{index}".encode().ljust(VALUE_BYTES, b".") for index in range(count)]


def read_all(log: mqlog.Log) -> list[bytes]:
    return [bytes(record.value) for record in log.read(T, 0, log.start_offset(T, 0),
                                                       max_records=100_000)]


def appends_in(records: list[bytes]) -> list[tuple[int, int]]:
    """(append number, record count) of each run of records, checking that every run
    is a whole append in order: records ``0 .. count-1`` of that append."""
    runs: list[tuple[int, int]] = []
    for value in records:
        append, index = (int(part) for part in value.rstrip(b".").split(b":"))
        if runs and runs[-1][0] == append:
            assert index == runs[-1][1], f"append {append}: record {index} out of place"
            runs[-1] = (append, index + 1)
        else:
            assert index == 0, f"append {append} starts at its record {index}"
            runs.append((append, 1))
    return runs


def reboot(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on this process runs in another boot of the machine: recovery
    trusts no state file written before."""
    other = bytes(b ^ 0xFF for b in _state.BOOT_ID)
    monkeypatch.setattr(_state, "BOOT_ID", other)


def fail_write(monkeypatch: pytest.MonkeyPatch, call: int, short: bool = False) -> list[int]:
    """Make segment writes from the ``call``-th on fail with ENOSPC (``short``: that
    write lands half first, as on a filling disk, and the write that goes on
    after it fails). Returns the call counter."""
    real = os.pwritev
    calls = [0]

    def pwritev(fd: int, buffers, position: int) -> int:
        calls[0] += 1
        if calls[0] < call:
            return real(fd, buffers, position)
        if short and calls[0] == call:  # the write that goes on after it fails
            data = b"".join(bytes(buffer) for buffer in buffers)
            return os.pwrite(fd, data[: len(data) // 2], position)
        raise OSError(errno.ENOSPC, "No space left on device (injected)")

    monkeypatch.setattr(_segment.os, "pwritev", pwritev)
    return calls


@pytest.mark.parametrize("short", [False, True], ids=["enospc", "short-write"])
def test_a_write_failing_at_batch_2_of_3_publishes_nothing(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch, short: bool) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        log.append(T, 0, values(0, 5))
        partition = log.engine.partition(T, 0)
        before = partition.state()
        producer = ProducerBatch(producer_id=42, epoch=0, base_sequence=0)
        records = values(1, 3 * RECORDS_PER_BATCH)
        fail_write(monkeypatch, call=2, short=short)
        with pytest.raises(OSError):
            log.append(T, 0, records, producer=producer)
        assert partition.state() == before  # nothing published
        assert read_all(log) == values(0, 5)
        monkeypatch.undo()
        monkeypatch.setattr(fmt, "BATCH_BYTES_MAX", BATCH_BYTES)
        assert log.append(T, 0, records, producer=producer) == 5  # the retry writes it
        assert log.append(T, 0, records, producer=producer) == 5  # and only once
        assert read_all(log) == values(0, 5) + records
        assert log.end_offset(T, 0) == 5 + len(records)


def test_a_failed_append_stays_out_after_a_power_loss(
        log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch of the append was written, then recording it failed: the append
    raised, so a recovery scan past the published end must not bring it back."""
    copy = tmp_path / "after-power-loss"
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        log.append(T, 0, values(0, 3))

        def broken_record(self, admission, append) -> None:
            raise OSError(errno.EIO, "Input/output error (injected)")

        monkeypatch.setattr(_producers.ProducerTable, "record", broken_record)
        with pytest.raises(OSError, match="injected"):
            log.append(T, 0, values(1, 2 * RECORDS_PER_BATCH),
                       producer=ProducerBatch(1, 0, 0))
        shutil.copytree(log_dir, copy)
    reboot(monkeypatch)
    with mqlog.open(copy, durability="none") as log:
        assert read_all(log) == values(0, 3)


@pytest.mark.parametrize("failing_batch", [2, 3])
def test_recovery_cuts_an_append_whose_last_batch_is_missing(
        log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        failing_batch: int) -> None:
    """As if the process died after writing batches 1 .. failing_batch-1 of an append:
    those batches are complete on disk beyond the published end. A recovery that
    scans to the end of the segment must not keep them."""
    copy = tmp_path / "after-power-loss"
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        log.append(T, 0, values(0, 3))
        monkeypatch.setattr(_partition, "_invalidate", lambda segment, position: None)
        fail_write(monkeypatch, call=failing_batch)
        with pytest.raises(OSError):
            log.append(T, 0, values(1, 3 * RECORDS_PER_BATCH))
        shutil.copytree(log_dir, copy)
    monkeypatch.undo()
    monkeypatch.setattr(fmt, "BATCH_BYTES_MAX", BATCH_BYTES)
    reboot(monkeypatch)
    with mqlog.open(copy, durability="none") as log:
        assert read_all(log) == values(0, 3)
        assert log.append(T, 0, values(2, 1)) == 3
    with mqlog.open(copy, durability="none") as log:
        assert read_all(log) == values(0, 3) + values(2, 1)


def test_an_append_that_does_not_fit_rolls_before_it(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T, segment_bytes=4096)
        first = [log.append(T, 0, values(i, RECORDS_PER_BATCH)) for i in range(9)]
        # 9 x 368 = 3312 bytes; 3 more batches (1104) do not fit in 4096: roll first.
        big = log.append(T, 0, values(9, 3 * RECORDS_PER_BATCH))
        bases = _segment.list_segment_bases(str(log_dir / "topics" / T / "0"))
        assert first == [RECORDS_PER_BATCH * i for i in range(9)]
        assert bases == [0, big]
        # An append larger than a segment gets a segment of its own.
        huge = log.append(T, 0, values(10, 40 * RECORDS_PER_BATCH))
        log.append(T, 0, values(11, 1))
        bases = _segment.list_segment_bases(str(log_dir / "topics" / T / "0"))
        assert bases == [0, big, huge, huge + 40 * RECORDS_PER_BATCH]
        assert [count for _append, count in appends_in(read_all(log))] == (
            [RECORDS_PER_BATCH] * 9 + [3 * RECORDS_PER_BATCH, 40 * RECORDS_PER_BATCH, 1])


def test_only_the_last_batch_of_an_append_ends_it(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        log.append(T, 0, values(0, 3 * RECORDS_PER_BATCH))
        log.append(T, 0, values(1, 2))
    segment = _segment.Segment(str(log_dir / "topics" / T / "0"), 0)
    try:
        position, continues = 0, []
        while position < segment.file_size():
            header = segment.header_at(position, segment.file_size())
            continues.append(bool(header.attributes & fmt.ATTR_CONTINUES))
            position += header.batch_length
    finally:
        segment.close()
    assert continues == [True, True, False, False]


def test_an_append_over_the_append_limit_is_refused(log_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from mqlog.logstore import _batch

    monkeypatch.setattr(_batch, "APPEND_BYTES_MAX", 1000)
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        with pytest.raises(mqlog.RecordTooLargeError, match="one append may hold"):
            log.append(T, 0, values(0, 3 * RECORDS_PER_BATCH))
        assert log.end_offset(T, 0) == 0
        assert log.append(T, 0, values(1, 2 * RECORDS_PER_BATCH)) == 0  # 736 bytes


def _seed() -> int:
    return int(os.environ.get("MQLOG_POWER_LOSS_SEED")
               or random.SystemRandom().randrange(2**32))


def _lose_power(rng: random.Random, segment_path: Path) -> str:
    """Damage the written part of ``segment_path`` as a power loss may when nothing
    was flushed (durability "none"): lose some of its pages, or all bytes from
    some point on (tearing the last write). Returns what it did."""
    written = _written_end(segment_path)
    with open(segment_path, "r+b") as data:
        if rng.random() < 0.5:
            cut = rng.randint(0, written)
            data.seek(cut)
            data.write(bytes(written - cut))
            return f"zeroed from byte {cut} of {written}"
        lost = [page for page in range(written // PAGE + 1) if rng.random() < 0.3]
        for page in lost:
            data.seek(page * PAGE)
            data.write(bytes(min(PAGE, written - page * PAGE)))
        return f"lost pages {lost} of {written} bytes"


def _written_end(segment_path: Path) -> int:
    """Where the non-zero bytes of a preallocated segment end."""
    data = segment_path.read_bytes()
    return len(data.rstrip(b"\0"))


@pytest.mark.soak
def test_a_power_loss_never_leaves_part_of_an_append(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = _seed()
    rng = random.Random(seed)
    trials = 200 if SOAK else 25
    for trial in range(trials):
        log_dir = tmp_path / f"log{trial}"
        copy = tmp_path / f"copy{trial}"
        with monkeypatch.context() as patch, mqlog.open(log_dir, durability="none") as log:
            log.create_topic(T, segment_bytes=16 * 1024)
            appended = 0
            for _ in range(rng.randint(1, 12)):
                log.append(T, 0, values(appended, rng.randint(1, 5 * RECORDS_PER_BATCH)))
                appended += 1
            if rng.random() < 0.5:  # the last append died half-way
                patch.setattr(_partition, "_invalidate", lambda segment, position: None)
                fail_write(patch, call=rng.randint(1, 4))
                try:
                    log.append(T, 0, values(appended, 5 * RECORDS_PER_BATCH))
                except OSError:
                    pass
                else:
                    appended += 1
            state = log.engine.partition(T, 0).state()
            shutil.copytree(log_dir, copy)
        segment = copy / "topics" / T / "0" / f"{state.active_base_offset:020d}.log"
        what = _lose_power(rng, segment)
        with monkeypatch.context() as patch:
            patch.setattr(fmt, "BATCH_BYTES_MAX", BATCH_BYTES)
            reboot(patch)
            with mqlog.open(copy, durability="none") as log:
                try:
                    runs = appends_in(read_all(log))
                    assert [append for append, _count in runs] == list(range(len(runs)))
                    assert len(runs) <= appended
                    after = log.append(T, 0, values(999, 1))
                    assert after == log.end_offset(T, 0) - 1
                except AssertionError as error:
                    raise AssertionError(
                        f"trial {trial} ({what}); replay with MQLOG_POWER_LOSS_SEED={seed}"
                    ) from error
