"""``mqlog mirror`` as a real process: kill -9 at random points, --follow, Ctrl-C."""

from __future__ import annotations

import os
import pty
import random
import signal
import subprocess
import time
from pathlib import Path

import mqlog
from mqlog import Record, TopicPartition
from mqlog.errors import UnknownGroupError
from tests.cli._cli import MQLOG, finish, start

from ._helpers import assert_mirrored, make_source, sample_records

#: Records per partition of the source the kill test copies (a few seconds' work).
KILL_RECORDS = 60_000
KILLS = 5
#: How long a test waits for a mirror to get somewhere (a loaded machine).
PATIENCE_S = 120.0


def big_source(path: Path) -> Path:
    with mqlog.open(path) as log:
        log.create_topic("events", 3)
        for partition in range(3):
            for first in range(0, KILL_RECORDS, 10_000):
                log.append("events", partition, [
                    Record(b"%d:%d" % (partition, index) * 10, key=b"k%d" % (index % 97),
                           headers={"n": b"%d" % index} if index % 4 == 0 else None,
                           timestamp=1_700_000_000_000 + index)
                    for index in range(first, first + 10_000)])
    return path


def copied(destination: Path) -> int:
    """Records in the destination's copy so far (0 before it exists)."""
    if not (destination / "topics" / "events").exists():
        return 0
    with mqlog.open(destination, apply_retention=False) as log:
        if "events" not in log.topics():
            return 0
        return sum(log.end_offset("events", p) for p in range(3))


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {PATIENCE_S} s"
        time.sleep(0.05)


def test_kill_9_at_random_points_then_resume_copies_each_record_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("MQLOG_TEST_SEED", random.randrange(2**32)))
    print(f"seed {seed}")  # shown on failure: MQLOG_TEST_SEED=<seed> replays the kill points
    chooser = random.Random(seed)
    source = big_source(tmp_path / "src")
    destination = tmp_path / "dst"
    total = 3 * KILL_RECORDS
    kills_mid_copy = 0
    for _ in range(KILLS):
        before = copied(destination)
        if before >= total:
            break
        # In the first half of what is left: a target near the end was often
        # reached before the next look (a look opens the copy), leaving no kill
        # mid-copy on a quiet machine.
        target = chooser.randrange(before + 1, before + 2 + (total - before) // 2)
        process = start("mirror", source, destination)
        deadline = time.monotonic() + PATIENCE_S
        while process.poll() is None and copied(destination) < target:
            assert time.monotonic() < deadline, "the mirror made no progress"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        finish(process)
        print(f"killed at {copied(destination)} records copied ({process.returncode})")
        kills_mid_copy += process.returncode == -signal.SIGKILL and copied(destination) < total
    code, out, err = finish(start("mirror", source, destination), timeout=PATIENCE_S)
    assert code == 0, err
    assert "verified 3 partitions: record counts and checksums equal" in out
    assert kills_mid_copy >= 1, f"no kill landed mid-copy (seed {seed})"
    with mqlog.open(source) as src, mqlog.open(destination) as dst:
        assert_mirrored(src, dst, "events")


def test_follow_copies_new_records_and_offsets_until_sigterm(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    destination = tmp_path / "dst"
    process = start("mirror", source, destination, "--follow", "--groups")
    try:
        wait_for(lambda: copied_orders(destination) == 65, "first copy")
        with mqlog.open(source) as src:
            src.append("orders", 2, sample_records(2, 10))
            src.alter_offsets("billing", {TopicPartition("orders", 2): 4})
        wait_for(lambda: copied_orders(destination) == 75, "copy of the new records")
        wait_for(lambda: committed(destination, "billing") == {("orders", 2): 4},
                 "translated offsets")
        with mqlog.open(source) as src:  # a topic created while the mirror follows
            src.create_topic("refunds", 1)
            src.append("refunds", 0, sample_records(0, 3))
        wait_for(lambda: copied_topic(destination, "refunds", 1) == 3, "copy of a new topic")
        with mqlog.open(source) as src:  # a partition added while the mirror follows
            src.alter_topic("orders", partitions=4)
            src.append("orders", 3, sample_records(3, 2))
        wait_for(lambda: copied_topic(destination, "orders", 4) == 77,
                 "copy of a new partition")
    finally:
        process.send_signal(signal.SIGTERM)
        code, out, err = finish(process, timeout=PATIENCE_S)
    assert code == 0, err
    assert "mirrored 80 records of 2 topics" in out
    assert "verified 5 partitions: record counts and checksums equal" in out
    with mqlog.open(source) as src, mqlog.open(destination) as dst:
        assert_mirrored(src, dst, "orders")
        assert_mirrored(src, dst, "refunds")
    code, out, err = finish(start("mirror", source, destination))
    assert code == 0 and "mirrored 0 records" in out, err


def test_ctrl_c_stops_a_copy_with_its_progress_recorded(tmp_path: Path) -> None:
    source = big_source(tmp_path / "src")
    destination = tmp_path / "dst"
    process = start("mirror", source, destination)
    wait_for(lambda: copied(destination) > 0 or process.poll() is not None, "a first copy")
    process.send_signal(signal.SIGINT)
    code, _out, err = finish(process, timeout=PATIENCE_S)
    if code == 0:  # it finished before Ctrl-C came: nothing to test on this machine
        return
    assert code == 130, err
    assert "stopped: the progress is recorded" in err
    code, out, err = finish(start("mirror", source, destination), timeout=PATIENCE_S)
    assert code == 0, err
    assert "found in the destination" not in err  # the stop recorded everything it copied
    with mqlog.open(source) as src, mqlog.open(destination) as dst:
        assert_mirrored(src, dst, "events")


def copied_orders(destination: Path) -> int:
    return copied_topic(destination, "orders", 3)


def copied_topic(destination: Path, topic: str, partitions: int) -> int:
    if not (destination / "topics" / topic).exists():
        return 0
    with mqlog.open(destination, apply_retention=False) as log:
        if topic not in log.topics():
            return 0
        have = len(log.describe_topic(topic).partitions)
        return sum(log.end_offset(topic, p) for p in range(min(partitions, have)))


def committed(destination: Path, group: str) -> dict[tuple[str, int], int | None]:
    with mqlog.open(destination, apply_retention=False) as log:
        try:
            return {(p.topic, p.partition): p.committed_offset
                    for p in log.describe_group(group).partitions}
        except UnknownGroupError:
            return {}


def test_a_terminal_shows_a_progress_bar_per_topic(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    controller, terminal = pty.openpty()
    with open(terminal, "wb", closefd=True) as stderr:
        process = subprocess.Popen([MQLOG, "mirror", source, tmp_path / "dst"],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    out, _ = process.communicate(timeout=PATIENCE_S)
    assert process.returncode == 0, shown
    assert b"orders" in shown and b"65/65" in shown
    assert "verified 3 partitions" in out
