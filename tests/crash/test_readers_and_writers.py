"""Readers never trip over writers: tailing readers in other processes while
writers roll tiny segments, retention deletes them, compaction swaps them and
a topic is deleted and created again, all the time.

Four kinds of reader (``Log.read`` loops, the same through a read-only Log, a
slow one that retention overtakes, a Consumer) must meet only documented
outcomes -- OffsetOutOfRangeError once retention passed them, UnknownTopicError
once the topic they read was deleted -- never a raw error or a signal, and must
read every record that still exists exactly once and in order (dense offsets;
each writer's records in its order), up to the end. The seed only picks record
sizes: the interleaving is the scheduler's. ``make test`` runs a few seconds of
it; ``MQLOG_SOAK=1`` a minute with more writers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mqlog

from ._children import REPO_ROOT
from ._race_children import create_topics

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
SEED = int(os.environ.get("MQLOG_RACE_SEED", "1414"))
READERS = ("read", "read-only", "lagging", "consumer")
#: Longest a child may take beyond the run itself (start-up, catching up, a loaded machine).
SLACK_S = 120.0


def _start(*args: object) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1",
               PYTHONFAULTHANDLER="1")
    return subprocess.Popen([sys.executable, "-m", "tests.crash._race_children",
                             *map(str, args)], cwd=REPO_ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _summary(child: subprocess.Popen, name: str, timeout_s: float) -> dict:
    """The child's JSON line, once it exited cleanly (not by a signal)."""
    out, err = child.communicate(timeout=timeout_s)
    assert child.returncode == 0, f"{name} exited with {child.returncode}:\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def run(path: str, writers: int, duration_s: float) -> None:
    print(f"seed {SEED} (MQLOG_RACE_SEED replays it)")
    create_topics(path)
    makers = [_start("writer", path, number, SEED, duration_s) for number in range(writers)]
    admin = _start("admin", path, SEED, duration_s)
    readers = {kind: _start("reader", path, kind) for kind in READERS}
    children = [*makers, admin, *readers.values()]
    try:
        for child in children:
            assert child.stdout.readline() == "ready\n", child.stderr.read()[-3000:]
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        written = [_summary(child, f"writer {n}", duration_s + SLACK_S)
                   for n, child in enumerate(makers)]
        admin_did = _summary(admin, "admin", duration_s + SLACK_S)
        for child in readers.values():
            try:
                child.stdin.write("stop\n")
                child.stdin.flush()
            except BrokenPipeError:
                pass  # it died: _summary says how
        seen = {kind: _summary(child, f"{kind} reader", SLACK_S)
                for kind, child in readers.items()}
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    print(json.dumps({"written": written, "admin": admin_did, "seen": seen}))
    with mqlog.open(path, read_only=True) as log:
        ends = {topic: log.end_offset(topic, 0) for topic in ("roll", "compacted")}
        roll_start = log.start_offset("roll", 0)
    for kind, summary in seen.items():
        assert summary["error"] is None, f"{kind} reader:\n{summary['error']}"
        for topic, end in ends.items():
            assert summary[topic]["offset"] == end, (kind, topic, summary[topic], end)
    assert ends["roll"] == sum(w["appended"]["roll"] for w in written)  # dense, nothing lost
    assert roll_start > 0, "retention never ran"


def test_tailing_readers_in_other_processes_never_trip_over_writers(tmp_path: Path) -> None:
    run(str(tmp_path / "log"), writers=3, duration_s=2.0)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set MQLOG_SOAK=1 for the long reader/writer soak")
def test_tailing_readers_never_trip_over_writers_soak(tmp_path: Path) -> None:
    run(str(tmp_path / "log"), writers=6, duration_s=60.0)
