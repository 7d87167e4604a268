"""A compaction killed at any point leaves a log that reads the latest value of every key.

A child process (``_compaction_child``) compacts a partition with many small
segments and is SIGKILLed either just before its N-th fsync or rename (N random:
while writing a cleaned copy, between the data and the index renames, before the
checkpoint...) or after a random delay. The parent then reopens the log and
checks: no ``.cleaned`` file is left once the partition is open, every record
still there is one that was appended, at its offset, no record that is the
latest of its key (or keyless) is gone, and ``mqlog verify`` finds nothing.
Then it appends more records and kills the next compaction.

``MQLOG_CRASH_SEED`` replays a seed (printed on failure); ``MQLOG_SOAK=1`` runs
the long variant.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mqlog
from mqlog import Record
from mqlog.logstore.verify import verify_log

from ._children import REPO_ROOT

TOPIC = "c"
SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
#: Compactions killed per test run.
ITERATIONS = 12
SOAK_ITERATIONS = 300
KILLS_PER_LOG = 25
#: Share of kills at a random moment rather than before a chosen step.
TIMED_KILL_SHARE = 0.25
#: Keys the records are spread over.
KEYS = 25
STARTUP_TIMEOUT_S = 30.0


def _seed() -> int:
    return int(os.environ.get("MQLOG_CRASH_SEED") or random.SystemRandom().randrange(2**32))


def _append_generation(log: mqlog.Log, rng: random.Random, model: dict[int, tuple]) -> None:
    """Append 20..60 batches of 1..5 records (some keyless) and note them in ``model``
    (offset -> (key, value))."""
    for _ in range(rng.randint(20, 60)):
        records = []
        for _ in range(rng.randint(1, 5)):
            key = None if rng.random() < 0.1 else b"k%d" % rng.randrange(KEYS)
            value = b"%d:" % (len(model) + len(records)) + bytes(rng.randint(1, 300))
            records.append(Record(value, key=key))
        first = log.append(TOPIC, 0, records)
        for number, record in enumerate(records):
            model[first + number] = (record.key, record.value)


def _check(log_dir: Path, model: dict[int, tuple]) -> None:
    with mqlog.open(log_dir, durability="none") as log:
        records = list(log.iter(TOPIC, 0))
        partition_dir = log_dir / "topics" / TOPIC / "0"
        leftovers = [name for name in os.listdir(partition_dir) if ".cleaned" in name
                     or name.endswith(".tmp")]
        assert leftovers == []
        active = log.engine.partition(TOPIC, 0).state().active_base_offset
        seen = {record.offset: (record.key, bytes(record.value)) for record in records}
        assert all(model[offset] == content for offset, content in seen.items())
        latest = {key: offset for offset, (key, _) in sorted(model.items()) if key is not None}
        for offset, (key, _) in model.items():
            if key is None or offset >= active or latest[key] == offset:
                assert offset in seen, f"record {offset} (key {key!r}) was lost"
        assert log.end_offset(TOPIC, 0) == len(model)
    assert verify_log(log_dir).problems == []


def _compact_and_kill(log_dir: Path, rng: random.Random) -> str:
    """Run a compacting child and kill it; returns how it ended (for the message)."""
    timed = rng.random() < TIMED_KILL_SHARE
    die_at = 0 if timed else rng.randint(1, 80)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash._compaction_child", str(log_dir), TOPIC,
         str(die_at)], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        if timed:
            time.sleep(rng.uniform(0, 0.05))
            child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        code = child.wait(timeout=STARTUP_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code in (0, -signal.SIGKILL), code
    return f"die_at={die_at} timed={timed} ended={code} {rest.strip()}"


def crash_series(log_dir: Path, iterations: int, seed: int) -> None:
    """``iterations`` compactions killed in a row on one log, growing between them."""
    rng = random.Random(seed)
    model: dict[int, tuple] = {}
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(TOPIC, cleanup_policy="compact", segment_bytes=4096,
                         index_interval_bytes=256, min_cleanable_dirty_ratio=1.0)
        log.engine._compactor.stop()  # only the children compact
        _append_generation(log, rng, model)
    ended = ""
    try:
        for _ in range(iterations):
            ended = _compact_and_kill(log_dir, rng)
            _check(log_dir, model)
            with mqlog.open(log_dir, durability="none") as log:
                log.engine._compactor.stop()
                _append_generation(log, rng, model)
    except AssertionError as error:
        raise AssertionError(f"{error} (MQLOG_CRASH_SEED={seed}, last child: {ended})") from error


def crash_logs(tmp_path: Path, iterations: int) -> None:
    """Kill ``iterations`` compactions, on a new log every ``KILLS_PER_LOG`` (closed
    segments are never merged, so a log killed over and over only grows)."""
    seed = _seed()
    for number in range(0, iterations, KILLS_PER_LOG):
        crash_series(tmp_path / f"log{number}", min(KILLS_PER_LOG, iterations - number),
                     seed + number)


def test_compaction_killed_at_any_point(tmp_path: Path) -> None:
    crash_logs(tmp_path, ITERATIONS)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set MQLOG_SOAK=1 for the long crash soak")
def test_compaction_killed_at_any_point_soak(tmp_path: Path) -> None:
    crash_logs(tmp_path, SOAK_ITERATIONS)
