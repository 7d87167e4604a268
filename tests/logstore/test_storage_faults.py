"""A full disk and failing storage, injected at chosen calls: DiskFullError and
the StorageFailedError latch.

Faults are injected by monkeypatching ``os`` functions (``pwritev``,
``fdatasync``, ``posix_fallocate``) and the map type ``mmap.mmap``; each test
says which call fails and how. A full disk must change nothing published and
leave the log usable once space is back, in the same process; a failed flush
must refuse every later write until the log is reopened.
"""

from __future__ import annotations

import errno
import mmap
import os
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqlog
from mqlog import DiskFullError, MqlogError, StorageFailedError
from mqlog.consumer._share_state import ShareState
from mqlog.logstore._state import StateFile

T = "t"
#: Values long enough that a batch spans a few hundred bytes.
VALUE = b"v" * 200


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def eio(*_args, **_kwargs):
    raise OSError(errno.EIO, os.strerror(errno.EIO))


class Faults:
    """Replaces one ``os`` function by a failing one for the next ``times`` calls
    (then the real function again); counts the failures it injected."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, failure, times: int = 1_000_000):
        self.real = getattr(os, name)
        self.failure = failure
        self.left = times
        self.injected = 0
        monkeypatch.setattr(os, name, self)

    def __call__(self, *args, **kwargs):
        if self.left > 0:
            self.left -= 1
            self.injected += 1
            return self.failure(self.real, *args, **kwargs)
        return self.real(*args, **kwargs)

    def heal(self) -> None:
        self.left = 0


@pytest.fixture
def log(log_dir: Path, clock) -> Iterator[mqlog.Log]:
    with mqlog.open(log_dir, clock=clock) as log:
        yield log


def tail_bytes(log_dir: Path, topic: str = T) -> bytes:
    """The bytes of the active segment after the published end (up to 4 KiB)."""
    with mqlog.open(log_dir) as reader:
        state = reader.engine.partition(topic, 0).state()
    path = log_dir / "topics" / topic / "0" / f"{state.active_base_offset:020d}.log"
    with open(path, "rb") as handle:
        handle.seek(state.active_position)
        return handle.read(4096)


def values(log: mqlog.Log, topic: str = T) -> list[bytes]:
    return [record.value for record in log.read(topic, 0, 0, max_records=10_000)]


# -- the errors ---------------------------------------------------------------------------------


def test_disk_full_error_is_an_oserror_with_enospc() -> None:
    error = DiskFullError("no room", filename="/x/y.log", bytes_needed=1068)
    assert isinstance(error, OSError) and isinstance(error, MqlogError)
    assert error.errno == errno.ENOSPC and error.filename == "/x/y.log"
    assert error.bytes_needed == 1068 and error.retriable
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.errno, copy.filename, copy.bytes_needed, str(copy)) == (
        errno.ENOSPC, "/x/y.log", 1068, "no room")


def test_storage_failed_error_keeps_the_original() -> None:
    original = OSError(errno.EIO, "Input/output error")
    error = StorageFailedError("flush failed", original=original)
    assert error.original is original and error.__cause__ is original
    assert not error.retriable
    assert pickle.loads(pickle.dumps(error)).original.errno == errno.EIO


# -- a full disk under appends ------------------------------------------------------------------


class DiskWithRoom:
    """``os.pwritev``/``os.pwrite`` as on a disk with ``room`` bytes left: a write
    takes what fits (a short write), the next one raises ENOSPC. Zeros are
    always written (they overwrite blocks the failed write allocated)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
        self.room = room
        self.real_pwrite = os.pwrite
        self.real_pwritev = os.pwritev
        monkeypatch.setattr(os, "pwrite", self.pwrite)
        monkeypatch.setattr(os, "pwritev", self.pwritev)

    def pwritev(self, fd, buffers, position):
        return self.pwrite(fd, b"".join(buffers), position)

    def pwrite(self, fd, data, position):
        data = bytes(data)
        if not any(data):
            return self.real_pwrite(fd, data, position)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.real_pwrite(fd, data[: self.room], position)
        self.room -= written
        return written

    def heal(self) -> None:
        self.room = 1 << 40


@pytest.mark.parametrize("room", [0, 1, 500], ids=["full", "1-byte", "short-write"])
def test_a_full_disk_raises_disk_full_error_and_publishes_nothing(
        log: mqlog.Log, log_dir: Path, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    log.create_topic(T, durability="none")
    log.append(T, 0, [VALUE] * 3)
    disk = DiskWithRoom(monkeypatch, room)
    with pytest.raises(DiskFullError) as raised:
        log.append(T, 0, [VALUE] * 4)
    error = raised.value
    assert error.errno == errno.ENOSPC
    assert error.filename.endswith(f"{0:020d}.log")
    assert error.bytes_needed == 48 + 4 * (20 + len(VALUE))
    assert str(error.bytes_needed) in str(error) and error.filename in str(error)
    assert log.end_offset(T, 0) == 3
    assert not any(tail_bytes(log_dir)), "the failed write left bytes past the end"
    disk.heal()  # space freed: the same Log goes on
    assert log.append(T, 0, [b"after"]) == 3
    assert values(log) == [VALUE] * 3 + [b"after"]


def test_a_shorter_batch_after_a_torn_write_leaves_nothing_stale(
        log: mqlog.Log, log_dir: Path, monkeypatch: pytest.MonkeyPatch, clock) -> None:
    """The torn batch is longer than the next one: none of its bytes may remain
    after the new end, where recovery (after a power loss) would look."""
    log.create_topic(T, durability="none")
    disk = DiskWithRoom(monkeypatch, 1500)
    with pytest.raises(DiskFullError):
        log.append(T, 0, [VALUE] * 10)
    disk.heal()
    log.append(T, 0, [b"x"])
    assert not any(tail_bytes(log_dir))
    log.close()
    with mqlog.open(log_dir, clock=clock) as reopened:
        assert values(reopened) == [b"x"]


def test_an_io_error_on_write_latches_the_partition(
        log: mqlog.Log, log_dir: Path, monkeypatch: pytest.MonkeyPatch, clock) -> None:
    log.create_topic(T, partitions=2, durability="none")
    log.append(T, 0, [b"a"])
    faults = Faults(monkeypatch, "pwritev", lambda real, *a: eio(), times=1)
    with pytest.raises(StorageFailedError) as raised:
        log.append(T, 0, [b"b"])
    assert raised.value.original.errno == errno.EIO
    assert faults.injected == 1
    for _ in range(2):  # the write would succeed now: still refused
        with pytest.raises(StorageFailedError, match="Input/output error"):
            log.append(T, 0, [b"c"])
    assert log.append(T, 1, [b"other partition"]) == 0
    assert values(log) == [b"a"]  # reads go on
    log.close()
    with mqlog.open(log_dir, clock=clock) as reopened:
        assert reopened.append(T, 0, [b"d"]) == 1
        assert values(reopened) == [b"a", b"d"]


def test_no_room_for_a_new_segment_raises_and_the_roll_is_retried(
        log: mqlog.Log, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log.create_topic(T, durability="none", segment_bytes=4096, index_interval_bytes=64)
    per_batch = 48 + 20 + len(VALUE)
    fits = 4096 // per_batch
    for _ in range(fits):
        log.append(T, 0, [VALUE])
    before = sorted(os.listdir(log_dir / "topics" / T / "0"))
    faults = Faults(monkeypatch, "posix_fallocate", lambda real, *a: enospc())
    with pytest.raises(DiskFullError) as raised:
        log.append(T, 0, [VALUE])
    assert raised.value.filename.endswith(".index")
    assert faults.injected == 1
    assert sorted(os.listdir(log_dir / "topics" / T / "0")) == before
    assert log.end_offset(T, 0) == fits
    faults.heal()
    assert log.append(T, 0, [VALUE]) == fits
    assert values(log) == [VALUE] * (fits + 1)
    assert log.describe_topic(T).partitions[0].segment_count == 2


def test_the_state_file_is_reserved_and_a_full_disk_refuses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateFile(str(tmp_path / "state"))
    assert os.stat(tmp_path / "state").st_blocks * 512 >= 256
    state.close()
    Faults(monkeypatch, "posix_fallocate", lambda real, *a: enospc())
    with pytest.raises(DiskFullError):
        StateFile(str(tmp_path / "other"))


def test_index_files_are_reserved_not_sparse(log: mqlog.Log, log_dir: Path) -> None:
    log.create_topic(T, segment_bytes=1 << 23, index_interval_bytes=4096)
    log.append(T, 0, [b"x"])
    for suffix in (".index", ".timeindex"):
        info = os.stat(log_dir / "topics" / T / "0" / f"{0:020d}{suffix}")
        assert info.st_size > 4096 and info.st_blocks * 512 >= info.st_size


# -- failed flushes latch -------------------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_a_failed_fdatasync_latches_until_reopened(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch, clock, code: int) -> None:
    log = mqlog.open(log_dir, clock=clock)
    log.create_topic(T, partitions=2, durability="always")
    log.append(T, 0, [b"a"])

    def failed(real, fd):
        raise OSError(code, os.strerror(code))

    faults = Faults(monkeypatch, "fdatasync", failed, times=1)
    with pytest.raises(StorageFailedError) as raised:
        log.append(T, 0, [b"b"])
    assert faults.injected == 1 and raised.value.original.errno == code
    assert not isinstance(raised.value, DiskFullError)
    for call in (lambda: log.append(T, 0, [b"c"]), log.flush):
        with pytest.raises(StorageFailedError, match=os.strerror(code)):
            call()
    assert log.append(T, 1, [b"other"]) == 0  # other partitions are unaffected
    log.close()
    with mqlog.open(log_dir, clock=clock) as reopened:  # recovery, then writes again
        assert reopened.append(T, 0, [b"d"]) == 2
        assert values(reopened) == [b"a", b"b", b"d"]


def test_every_group_commit_waiter_gets_the_failure(
        log: mqlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """One fdatasync fails while other threads wait on it: none of them may be
    told its append is durable, not even by a retry that succeeds."""
    threads_count = 4
    log.create_topic(T, durability="always")
    partition = log.engine.partition(T, 0)

    def failing(real, fd):
        for _ in range(10_000):  # let every thread publish and queue up behind this flush
            if partition.state().end_offset == threads_count:
                break
            time.sleep(0.001)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    faults = Faults(monkeypatch, "fdatasync", failing, times=1)
    outcomes: list[object] = [None] * threads_count

    def append(slot: int) -> None:
        try:
            outcomes[slot] = log.append(T, 0, [b"r%d" % slot])
        except Exception as error:
            outcomes[slot] = error

    threads = [threading.Thread(target=append, args=(slot,)) for slot in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert faults.injected == 1
    assert all(isinstance(outcome, StorageFailedError) for outcome in outcomes), outcomes
    assert {outcome.original.errno for outcome in outcomes} == {errno.EIO}


def test_a_failed_background_flush_is_not_forgotten(
        log: mqlog.Log, monkeypatch: pytest.MonkeyPatch) -> None:
    log.create_topic(T, durability="interval", flush_ms=10)
    log.create_topic("other", durability="interval", flush_ms=10)
    log.engine._flusher.stop()  # flush by hand below, not from the thread
    log.append(T, 0, [b"a"])
    faults = Faults(monkeypatch, "fdatasync", lambda real, fd: eio(), times=1)
    log.engine._flusher.flush_due(0.0, everything=True)
    assert faults.injected == 1
    partition = log.engine.partition(T, 0)
    assert partition.dirty, "a failed flush must leave the partition dirty"
    for _ in range(3):  # every time, not once; and not as a bare MqlogError
        with pytest.raises(StorageFailedError, match="Input/output error"):
            log.append(T, 0, [b"b"])
    assert log.append("other", 0, [b"fine"]) == 0
    log.engine._flusher.flush_due(0.0, everything=True)  # never retried silently
    with pytest.raises(StorageFailedError):
        partition.flush()


# -- queue share state ------------------------------------------------------------------------


class _FlakyMap(mmap.mmap):
    """A map whose flush (msync) fails while ``failing`` is set."""

    failing = False

    def flush(self, *args):
        if _FlakyMap.failing:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return super().flush(*args)


def test_a_failed_share_state_msync_latches(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mmap, "mmap", _FlakyMap)
    monkeypatch.setattr(_FlakyMap, "failing", False)
    path = str(tmp_path / "queues" / "g" / T / "0")
    state = ShareState(path, 64, 0, durable=True)
    assert state.acquire(1, 0, 1000, 2, 0, 10).offsets == [0, 1]
    _FlakyMap.failing = True
    with pytest.raises(StorageFailedError) as raised:
        state.finish(1, [0], 2)
    assert raised.value.original.errno == errno.EIO
    _FlakyMap.failing = False
    with pytest.raises(StorageFailedError):
        state.acquire(1, 0, 1000, 2, 0, 10)
    with pytest.raises(StorageFailedError):
        state.ack_fast(1, 1, 0, 10)
    state.close()
    again = ShareState(path, 64, 0, durable=True)  # a new consumer rereads the file
    assert again.finish(1, [1], 2) == []
    again.close()


def test_a_share_state_that_cannot_be_reserved_is_left_new(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "queues" / "g" / T / "0"
    faults = Faults(monkeypatch, "posix_fallocate", lambda real, *a: enospc())
    with pytest.raises(DiskFullError):
        ShareState(str(path), 64, 5)
    assert path.stat().st_size == 0
    faults.heal()
    state = ShareState(str(path), 64, 5)
    assert state.bounds() == (5, 5)
    assert os.stat(path).st_blocks * 512 >= os.stat(path).st_size
    state.close()


def test_a_failed_producer_table_flush_latches_the_partition(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An idempotent append on an ``always`` topic flushes the producers table
    too; when that fails, the append raises and the partition refuses writes."""
    from mqlog.logstore import _producers

    with mqlog.open(tmp_path / "log") as log:
        log.create_topic("t", durability="always")
        monkeypatch.setattr(_producers, "fdatasync_file", eio)
        with pytest.raises(StorageFailedError):
            log.append("t", 0, [b"a"], producer=mqlog.ProducerBatch(7, 0, 0))
        monkeypatch.undo()
        with pytest.raises(StorageFailedError):
            log.append("t", 0, [b"b"])
    with mqlog.open(tmp_path / "log") as log:  # reopened: recovered, writable again
        assert log.append("t", 0, [b"c"]) == 1


def test_a_failed_directory_sync_at_a_roll_latches_the_partition(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mqlog.logstore import _partition

    with mqlog.open(tmp_path / "log") as log:
        log.create_topic("t", durability="always", segment_bytes=4096)
        log.append("t", 0, [b"x" * 3000])
        monkeypatch.setattr(_partition, "fsync_directory", eio)
        with pytest.raises(StorageFailedError):
            log.append("t", 0, [b"y" * 3000])  # rolls first
        monkeypatch.undo()
        with pytest.raises(StorageFailedError):
            log.append("t", 0, [b"z"])
    with mqlog.open(tmp_path / "log") as log:
        assert [r.value for r in log.read("t", 0, 0)] == [b"x" * 3000]
        assert log.append("t", 0, [b"z"]) == 1
