"""Several partitions made durable with one syncfs (``Engine.make_durable_together``)
on the simulated disk (``_simdisk``): what it acknowledges survives a power loss,
a failed syncfs fails exactly the partitions whose files lost pages, and where
syncfs is not usable each partition is flushed on its own.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mqlog import StorageFailedError
from mqlog.logstore import Engine, _group_commit
from tests.faults._simdisk import FaultPlan, SimDisk

PARTITIONS = 8


def _engine_on_simdisk(tmp_path: Path, faults: FaultPlan | None = None
                       ) -> tuple[str, SimDisk, Engine]:
    path = str(tmp_path / "log")
    with Engine(path) as engine:
        engine.create_topic("t", partitions=PARTITIONS, durability="always",
                            segment_bytes=8192)
    disk = SimDisk(path, random.Random(7), faults)
    disk.install()
    disk.settle()
    return path, disk, Engine(path)


def _append_each(engine: Engine, value: bytes) -> list[tuple[str, int, int]]:
    """One record on every partition, not flushed; the (topic, partition, end) to wait on."""
    return [("t", number, engine.append("t", number, [value], flush=False) + 1)
            for number in range(PARTITIONS)]


def _values(engine: Engine, number: int) -> list[bytes]:
    return [bytes(record.value) for record in engine.iter("t", number)]


def test_what_one_syncfs_acknowledged_survives_power_loss(tmp_path):
    path, disk, engine = _engine_on_simdisk(tmp_path)
    syncs: list[int] = []
    simulated = _group_commit.sync_file_system
    # Not monkeypatch: its undo would put the simulated disk's seam back later.
    _group_commit.sync_file_system = lambda fds: (syncs.append(len(fds)), simulated(fds))[1]
    try:
        for round_ in range(3):
            assert engine.make_durable_together(_append_each(engine, b"r%d" % round_)) == {}
        assert len(syncs) == 3, "one syncfs per call"
        _append_each(engine, b"unacknowledged")
        disk.crash(engine.close, keep_page_cache=False)
        engine = Engine(path)
        for number in range(PARTITIONS):
            assert _values(engine, number)[:3] == [b"r0", b"r1", b"r2"]
    finally:
        _group_commit.sync_file_system = simulated
        disk.uninstall()
        engine.close()


def test_a_failed_syncfs_fails_only_the_partitions_whose_files_it_hit(tmp_path):
    hit = f"{tmp_path}/log/topics/t/3/"
    armed = False

    def decide(kind: str, file: str) -> int | None:
        return errno.EIO if armed and kind == "syncfs" and file.startswith(hit) else None

    faults = FaultPlan(decide)
    path, disk, engine = _engine_on_simdisk(tmp_path, faults)
    try:
        assert engine.make_durable_together(_append_each(engine, b"first")) == {}
        armed = True
        wanted = _append_each(engine, b"second")
        failures = engine.make_durable_together(wanted)
        assert faults.injected.get("syncfs") == 1
        assert set(failures) == {("t", 3)}
        assert isinstance(failures[("t", 3)], StorageFailedError)
        with pytest.raises(StorageFailedError):  # latched: the kernel dropped its pages
            engine.append("t", 3, [b"third"])
        engine.append("t", 2, [b"third"])  # the others are fine
        disk.crash(engine.close, keep_page_cache=False)
        engine = Engine(path)
        for number in range(PARTITIONS):
            if number != 3:
                assert _values(engine, number)[:2] == [b"first", b"second"]
    finally:
        disk.uninstall()
        engine.close()


def test_without_syncfs_each_partition_is_flushed_on_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(_group_commit, "CAN_SYNC_FILE_SYSTEM", False)
    path, disk, engine = _engine_on_simdisk(tmp_path)
    simulated = _group_commit.sync_file_system

    def no_syncfs(fds):
        raise AssertionError("syncfs used where it is not usable")

    _group_commit.sync_file_system = no_syncfs  # not monkeypatch: see the first test
    try:
        assert engine.make_durable_together(_append_each(engine, b"kept")) == {}
        disk.crash(engine.close, keep_page_cache=False)
        engine = Engine(path)
        for number in range(PARTITIONS):
            assert _values(engine, number) == [b"kept"]
    finally:
        _group_commit.sync_file_system = simulated
        disk.uninstall()
        engine.close()


def test_mqlog_no_syncfs_turns_syncfs_off():
    code = "from mqlog.logstore import _files; print(_files.CAN_SYNC_FILE_SYSTEM)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MQLOG_NO_SYNCFS": "1"}, check=True)
    assert done.stdout.strip() == "False"


def test_unknown_topics_and_covered_offsets(tmp_path):
    with Engine(str(tmp_path / "log")) as engine:
        engine.create_topic("t", partitions=2, durability="always")
        wanted = [("t", 0, engine.append("t", 0, [b"x"], flush=False) + 1),
                  ("t", 1, 0), ("gone", 0, 1)]
        failures = engine.make_durable_together(wanted)
        assert list(failures) == [("gone", 0)]
        assert type(failures[("gone", 0)]).__name__ == "UnknownTopicError"
        assert engine.partition("t", 0).group_commit.durable_offset >= 1  # flushed
        assert engine.make_durable_together([("t", 0, 1)]) == {}  # covered: nothing to do
