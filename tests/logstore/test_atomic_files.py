"""_files.atomic_write: every metadata file is replaced whole, durably, through a
temporary file of its own; temporary files of dead processes are removed on open."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

import pytest

import mqlog
from mqlog import Record
from mqlog.logstore import _files
from mqlog.logstore._files import atomic_write, remove_stale_temporaries, temporary_name

#: A temporary name of atomic_write: ``<target>.<pid>-<token>.tmp``.
TEMPORARY = re.compile(r"\.[0-9]+-[0-9a-f]{16}\.tmp$")


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_write_replaces_the_file_and_syncs_file_then_directory(tmp_path, monkeypatch):
    target = tmp_path / "meta.json"
    target.write_bytes(b"old")
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(
        f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", b)),
                                                      real_replace(a, b))[1])
    atomic_write(str(target), b"new content")
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["meta.json"]
    assert [kind for kind, _ in calls] == ["fsync", "replace", "fsync"]
    assert TEMPORARY.search(calls[0][1])  # the temporary file, before the rename
    assert calls[2][1] == str(tmp_path)  # the directory, after it


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "meta.json"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["meta.json"]


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    target = str(tmp_path / "meta.json")
    contents = [(b"%d" % n) * 1000 for n in range(8)]
    errors = []

    def write(content: bytes) -> None:
        try:
            for _ in range(50):
                atomic_write(target, content, durable=False)
        except Exception as error:  # pragma: no cover - what the test looks for
            errors.append(error)

    threads = [threading.Thread(target=write, args=(c,)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open(target, "rb") as handle:
        assert handle.read() in contents
    assert os.listdir(tmp_path) == ["meta.json"]


def open_at_once(path, count: int) -> list[Exception]:
    """Open and close ``count`` Logs on ``path`` from as many threads at once."""
    barrier = threading.Barrier(count)
    errors = []

    def open_log() -> None:
        barrier.wait()
        try:
            mqlog.open(path).close()
        except Exception as error:  # pragma: no cover - what the test looks for
            errors.append(error)

    threads = [threading.Thread(target=open_log) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_logs_opened_at_once_on_a_new_directory_all_open(tmp_path):
    """The layout file used to be written through one shared temporary name."""
    for attempt in range(10):
        path = tmp_path / str(attempt)
        assert open_at_once(path, 6) == []
        assert json.loads((path / "mqlog.json").read_text()) == {"layout_version": 1}


def test_only_temporary_files_of_dead_processes_are_removed(tmp_path):
    dead = f"topic.json.{dead_pid()}-0123456789abcdef.tmp"
    mine = os.path.basename(temporary_name(str(tmp_path / "topic.json")))
    parent = f"topic.json.{os.getppid()}-0123456789abcdef.tmp"
    others = ["topic.json", "topic.json.tmp", "cleaner.json.12.tmp", "x.1-nothex.tmp"]
    for name in [dead, mine, parent, *others]:
        (tmp_path / name).write_bytes(b"")
    assert remove_stale_temporaries(str(tmp_path)) == [dead]
    assert sorted(os.listdir(tmp_path)) == sorted([mine, parent, *others])


def test_opening_removes_stale_temporary_files_everywhere(log_dir):
    with mqlog.open(log_dir) as log:
        log.create_topic("t")
        log.append("t", 0, [b"x"])
        consumer = log.consumer("g", ["t"])
        consumer.poll(timeout=0.01)
        consumer.close()
    stale = f".{dead_pid()}-00000000000000ff.tmp"
    places = [log_dir / ("mqlog.json" + stale), log_dir / "groups" / "g" / ("a.json" + stale),
              log_dir / "topics" / "t" / ("topic.json" + stale),
              log_dir / "topics" / "t" / "0" / ("cleaner.json" + stale)]
    for place in places:
        place.write_bytes(b"{")
    with mqlog.open(log_dir) as log:
        assert [place.exists() for place in places] == [False, False, True, True]
        log.read("t", 0, 0)  # opens the topic and its partition
        assert [place.exists() for place in places] == [False] * 4


def test_every_metadata_file_is_renamed_from_its_own_temporary_file(log_dir, monkeypatch):
    """topic.json (create, alter), mqlog.json, cleaner.json, a group's plan and a
    queue's nack reasons are all written through atomic_write."""
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append((os.fspath(a),
                                                                     os.fspath(b))),
                                                      real_replace(a, b))[1])
    with mqlog.open(log_dir) as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=4096)
        log.alter_topic("c", partitions=2)
        for n in range(40):
            log.append("c", 0, [Record(bytes(200), key=b"k%d" % (n % 2))])
        log.compact("c")
        consumer = log.consumer("g", ["c"])
        consumer.poll(timeout=0.01)
        consumer.close()
        worker = log.queue("q", "c")
        message = worker.receive(max_messages=1, timeout=1)[0]
        message.nack(reason="bad")
        worker.close()
    targets = {os.path.basename(target) for _, target in renamed}
    assert {"mqlog.json", "topic.json", "cleaner.json", "assignment.json"} <= targets
    assert any(target.endswith(".reasons") for target in targets)
    for source, target in renamed:
        if source.endswith(".cleaned"):
            continue  # a compacted segment's files (see _compaction)
        assert source.startswith(target + ".") and TEMPORARY.search(source), (source, target)


def test_a_durable_write_leaves_nothing_unsynced(tmp_path, monkeypatch):
    synced = []
    real = _files.fsync_directory
    monkeypatch.setattr(_files, "fsync_directory", lambda path: (synced.append(path),
                                                                 real(path))[1])
    atomic_write(str(tmp_path / "a"), b"1", durable=False)
    assert synced == []
    atomic_write(str(tmp_path / "a"), b"2")
    assert synced == [str(tmp_path)]
