"""Idempotent producers: Kafka's sequence rules against a plain model, and the
``producers`` file under torn writes, damage, a full table and an old layout.

The state machine drives one partition with appends of three producers: next
sequences, retries of any of the last appends, gaps, old and new epochs,
sequences wrapping past 2**31 - 1, appends whose write fails, and reopening;
every answer (offset, duplicate, or which error) must equal the model's.
``MQLOG_SOAK=1`` runs many more examples.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

import mqlog
from mqlog import InvalidProducerEpochError, ProducerBatch, ProducerSequenceError
from mqlog.logstore import _format as fmt
from mqlog.logstore import _segment, layout
from mqlog.logstore._producers import (
    BATCHES_RETAINED,
    FILE_SIZE,
    PROBE_SLOTS,
    RECORD_SIZE,
    SEQUENCE_MAX,
    SLOTS,
)

T = "idem"
#: Batches of at most 120 bytes: 1 or 2 of the state machine's records each.
SPLIT_BYTES = 120
SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")


def producers_file(log_dir: Path) -> Path:
    return log_dir / "topics" / T / "0" / layout.PRODUCERS_FILE


# -- the model ---------------------------------------------------------------------------


@dataclasses.dataclass
class ModelProducer:
    epoch: int
    #: (first sequence, last sequence, first offset) of the last appends, oldest first.
    appends: list[tuple[int, int, int]]


class Model:
    """Kafka's rules, written as plainly as possible."""

    def __init__(self) -> None:
        self.end = 0
        self.producers: dict[int, ModelProducer] = {}

    def append(self, pid: int, epoch: int, base: int, count: int) -> tuple[str, int]:
        """("ok" | "duplicate", first offset) or ("sequence" | "epoch", 0) for an error."""
        last = (base + count - 1) % (SEQUENCE_MAX + 1)
        known = self.producers.get(pid)
        if known is not None:
            if epoch < known.epoch:
                return "epoch", 0
            if epoch > known.epoch and base != 0:
                return "sequence", 0
            if epoch == known.epoch:
                for first, final, offset in known.appends:
                    if (first, final) == (base, last):
                        return "duplicate", offset
                if known.appends and base != (known.appends[-1][1] + 1) % (SEQUENCE_MAX + 1):
                    return "sequence", 0
        if known is None or epoch != known.epoch:
            known = self.producers[pid] = ModelProducer(epoch, [])
        known.appends = (known.appends + [(base, last, self.end)])[-BATCHES_RETAINED:]
        first, self.end = self.end, self.end + count
        return "ok", first

    def next_sequence(self, pid: int) -> tuple[int, int]:
        """(epoch, sequence) that continues ``pid``."""
        known = self.producers.get(pid)
        if known is None:
            return 0, 0
        if not known.appends:
            return known.epoch, 0
        return known.epoch, (known.appends[-1][1] + 1) % (SEQUENCE_MAX + 1)


PIDS = st.sampled_from([1, 2, 2**63 - 1])
COUNTS = st.integers(1, 4)
SEQUENCES = st.one_of(st.integers(0, 12), st.integers(SEQUENCE_MAX - 3, SEQUENCE_MAX))


class ProducerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.batch_bytes_max = fmt.BATCH_BYTES_MAX
        fmt.BATCH_BYTES_MAX = SPLIT_BYTES  # most appends are split into several batches
        self.directory = tempfile.mkdtemp(prefix="mqlog-producers-")
        self.log = mqlog.open(self.directory, durability="none")
        self.log.create_topic(T)
        self.model = Model()

    def teardown(self) -> None:
        fmt.BATCH_BYTES_MAX = self.batch_bytes_max
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def check(self, pid: int, epoch: int, base: int, count: int) -> None:
        expected = self.model.append(pid, epoch, base, count)
        end = self.log.end_offset(T, 0)
        records = [f"{pid}/{epoch}/{base}/{i}".encode() for i in range(count)]
        try:
            got = self.log.append(T, 0, records, producer=ProducerBatch(pid, epoch, base))
        except InvalidProducerEpochError:
            outcome = ("epoch", 0)
        except ProducerSequenceError:
            outcome = ("sequence", 0)
        else:
            outcome = ("ok" if self.log.end_offset(T, 0) > end else "duplicate", got)
        assert outcome == expected
        assert self.log.end_offset(T, 0) == self.model.end

    @rule(pid=PIDS, count=COUNTS)
    def append_next(self, pid: int, count: int) -> None:
        epoch, sequence = self.model.next_sequence(pid)
        self.check(pid, epoch, sequence, count)

    @precondition(lambda self: any(p.appends for p in self.model.producers.values()))
    @rule(data=st.data())
    def retry(self, data) -> None:
        pid = data.draw(st.sampled_from(sorted(
            pid for pid, p in self.model.producers.items() if p.appends)))
        known = self.model.producers[pid]
        first, last, _offset = data.draw(st.sampled_from(known.appends))
        count = (last - first) % (SEQUENCE_MAX + 1) + 1
        self.check(pid, known.epoch, first, count)

    @rule(pid=PIDS, epoch=st.integers(0, 3), base=SEQUENCES, count=COUNTS)
    def append_any(self, pid: int, epoch: int, base: int, count: int) -> None:
        self.check(pid, epoch, base, count)

    @rule(pid=PIDS, count=COUNTS)
    def new_epoch(self, pid: int, count: int) -> None:
        epoch, _sequence = self.model.next_sequence(pid)
        self.check(pid, epoch + 1, 0, count)

    @rule(pid=PIDS, count=st.integers(2, 4), call=st.integers(1, 2))
    def append_fails(self, pid: int, count: int, call: int) -> None:
        """The write of batch ``call`` fails (a full disk): nothing changes, in the
        model either."""
        epoch, sequence = self.model.next_sequence(pid)
        real = os.pwritev
        calls = [0]

        def pwritev(fd, buffers, position):
            calls[0] += 1
            if calls[0] == call:
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            return real(fd, buffers, position)

        _segment.os.pwritev = pwritev
        try:
            with pytest.raises(mqlog.DiskFullError):
                self.log.append(T, 0, [b"lost".ljust(40)] * count,  # one per batch
                                producer=ProducerBatch(pid, epoch, sequence))
        finally:
            _segment.os.pwritev = real
        assert self.log.end_offset(T, 0) == self.model.end

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = mqlog.open(self.directory, durability="none")


ProducerMachine.TestCase.settings = settings(
    max_examples=300 if SOAK else 25, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProducerMachine = pytest.mark.soak(ProducerMachine.TestCase)


# -- the file ----------------------------------------------------------------------------------


def test_the_table_reserves_its_blocks(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        log.append(T, 0, [b"a"], producer=ProducerBatch(5, 0, 0))
        stat = producers_file(log_dir).stat()
        assert stat.st_size == FILE_SIZE
        assert stat.st_blocks * 512 >= FILE_SIZE  # not a sparse file: no SIGBUS, no ENOSPC


def test_a_torn_record_forgets_that_producer_only(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        log.append(T, 0, [b"a", b"b"], producer=ProducerBatch(3, 0, 0))
        log.append(T, 0, [b"c"], producer=ProducerBatch(4, 0, 0))
    path = producers_file(log_dir)
    data = bytearray(path.read_bytes())
    data[3 * RECORD_SIZE + 40] ^= 0x10  # producer 3's record (home slot 3)
    path.write_bytes(bytes(data))
    with mqlog.open(log_dir, durability="none") as log:
        # Producer 3 is forgotten: its retry is taken for a new producer's first append.
        assert log.append(T, 0, [b"a", b"b"], producer=ProducerBatch(3, 0, 0)) == 3
        assert log.append(T, 0, [b"c"], producer=ProducerBatch(4, 0, 0)) == 2  # remembered
        assert log.append(T, 0, [b"d"], producer=ProducerBatch(3, 0, 2)) == 5


def test_a_full_probe_window_forgets_the_least_recent_producer(log_dir: Path) -> None:
    stride = SLOTS - PROBE_SLOTS + 1  # these producer ids share one home slot
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        for n in range(PROBE_SLOTS + 1):
            log.append(T, 0, [b"x"], producer=ProducerBatch(7 + n * stride, 0, 0))
        # The first producer was evicted for the last; the second is still known.
        assert log.append(T, 0, [b"x"], producer=ProducerBatch(7 + stride, 0, 0)) == 1
        assert log.append(T, 0, [b"x"], producer=ProducerBatch(7, 0, 0)) == PROBE_SLOTS + 1


def test_an_old_table_file_reads_as_empty(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
    path = producers_file(log_dir)
    path.write_bytes(os.urandom(1024 * 32))  # the former layout: 1,024 entries of 32 bytes
    with mqlog.open(log_dir, durability="none") as log:
        assert log.append(T, 0, [b"a"], producer=ProducerBatch(9, 0, 17)) == 0
        assert log.append(T, 0, [b"a"], producer=ProducerBatch(9, 0, 17)) == 0
    assert path.stat().st_size == FILE_SIZE


def test_an_entry_for_an_append_that_was_cut_is_not_a_duplicate(log_dir: Path) -> None:
    """The process died after recording the append and before publishing it; the
    next append (of another producer) took its offsets. The retry must be written."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        partition = log.engine.partition(T, 0)
        log.append(T, 0, [b"first"], producer=ProducerBatch(1, 0, 0))
        real_publish = partition._publish
        partition._publish = lambda state, previous: previous  # "dies" before publishing
        log.append(T, 0, [b"lost"], producer=ProducerBatch(1, 0, 1))
        partition._publish = real_publish
        assert log.end_offset(T, 0) == 1
        log.append(T, 0, [b"other"], producer=ProducerBatch(2, 0, 0))  # takes offset 1
        assert log.append(T, 0, [b"lost"], producer=ProducerBatch(1, 0, 1)) == 2
        assert [r.value for r in log.read(T, 0, 0)] == [b"first", b"other", b"lost"]


@pytest.mark.parametrize(("batch", "error"), [
    (dict(producer_id=-1, epoch=0, base_sequence=0), ValueError),
    (dict(producer_id=1, epoch=2**15, base_sequence=0), ValueError),
    (dict(producer_id=1, epoch=0, base_sequence=2**31), ValueError),
    (dict(producer_id=1, epoch=0, base_sequence="0"), TypeError),
    (dict(producer_id=True, epoch=0, base_sequence=0), TypeError),
])
def test_producer_batch_checks_its_fields(batch: dict, error: type) -> None:
    with pytest.raises(error):
        ProducerBatch(**batch)


def test_a_bad_producer_changes_nothing(log_dir: Path) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T)
        with pytest.raises(TypeError, match="ProducerBatch"):
            log.append(T, 0, [b"a"], producer=(1, 0))
        with pytest.raises(ProducerSequenceError):
            log.append(T, 0, [b"a"], producer=ProducerBatch(1, 0, 0))
            log.append(T, 0, [b"b"], producer=ProducerBatch(1, 0, 5))
        with pytest.raises(InvalidProducerEpochError):
            log.append(T, 0, [b"b"], producer=ProducerBatch(1, 1, 0))
            log.append(T, 0, [b"b"], producer=ProducerBatch(1, 0, 1))
        assert [r.value for r in log.read(T, 0, 0)] == [b"a", b"b"]
