"""A real full disk: appends, consumer commits and queue receive + ack on a small
tmpfs filled to the brim, in a child process.

The child (``_full_disk_child``) must meet DiskFullError -- never die by
SIGBUS -- lose nothing it was told was written, committed or acked, and go on
in the same process once space is freed. Mounting a tmpfs needs root: the test
skips, saying why, where it cannot. ``MQLOG_SOAK=1`` runs many more rounds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqlog
from mqlog import TopicPartition

REPO_ROOT = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
#: Fill-and-free rounds in the child: a bounded run, or the soak.
ROUNDS = 200 if SOAK else 3
#: The file system's size: room for the log's reserved files (a queue state
#: holds its whole window: 2 MiB) with the rest left for the filler.
DISK_SIZE = "12m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE mounted at a fresh directory (skips if impossible)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs",
                           str(mount_point)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def run_child(*arguments: object) -> dict:
    """Run ``_full_disk_child`` with ``arguments``; its JSON summary line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run(
        [sys.executable, "-m", "tests.crash._full_disk_child", *map(str, arguments)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, (
        f"child {arguments} ended with status {done.returncode} "
        f"(-7 is SIGBUS):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("seed", [1, 2])
def test_a_full_disk_raises_disk_full_error_and_loses_nothing(small_disk: Path,
                                                              seed: int) -> None:
    log_path = small_disk / "log"
    summary = run_child("rounds", log_path, small_disk / "filler", ROUNDS, seed)
    assert summary["lost"] == [], f"seed {seed}: acknowledged records lost"
    events = summary["events"]
    for kind in ("append", "commit", "send"):
        assert events.get(kind, 0) == ROUNDS, (seed, events)
    assert events.get("receive", 0) >= 1, (seed, events)  # creating the queue state
    assert summary["appended"] > ROUNDS
    print(f"full disk (seed {seed}): rounds={ROUNDS} disk_full={sum(events.values())} "
          f"acknowledged={summary['appended']} acked_jobs={len(summary['acked'])} lost=0")
    with mqlog.open(log_path) as log:  # and after a reopen
        records = log.read("t", 0, 0, max_records=1_000_000)
        assert [r.offset for r in records] == list(range(len(records)))
        assert len(records) == summary["appended"]
        consumer = log.consumer("g", ["t"])
        assert [consumer.committed(TopicPartition("t", 0))] == summary["committed"]
        consumer.close()
        queue = {row.partition: row for row in log.describe_queue("q")}
        acked = summary["acked"]
        assert acked == list(range(len(acked)))  # one worker acks in order
        assert queue[0].position >= len(acked)


def test_an_index_entry_on_a_new_page_of_a_full_disk_is_no_sigbus(small_disk: Path) -> None:
    summary = run_child("index-page", small_disk / "log", small_disk / "filler")
    offsets = summary["offsets"]
    assert offsets == list(range(257, 257 + len(offsets)))
    assert summary["events"] == {"append": 1} and summary["end"] == offsets[-1] + 1


def test_a_queue_entry_on_a_new_page_of_a_full_disk_is_no_sigbus(small_disk: Path) -> None:
    summary = run_child("queue-page", small_disk / "log", small_disk / "filler")
    page_entries = (4096 - 64) // 32
    assert summary["acked"] == list(range(page_entries - 10 + page_entries))
