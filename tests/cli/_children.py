"""Other processes for the CLI tests: a writer and a consumer-group member.

Started with :func:`start` as ``python -m tests.cli._children ROLE ARGS...``; each
opens the log itself. They report on stdout, one line per event, and stop when
their stdin closes.

``appender LOG TOPIC``
    For each stdin line ``PARTITION VALUE`` appends one record and prints
    ``OFFSET TIMESTAMP``.
``member LOG GROUP TOPIC CLIENT_ID MODE``
    Joins GROUP (``auto_offset_reset="earliest"``). MODE ``consume`` polls and
    commits everything; ``idle`` keeps its partitions paused (a live member that
    makes no progress). Prints ``owns P,P,...`` once it owns partitions, then
    keeps polling until stdin closes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import mqlog

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Longest wait of one poll of a member: bounds how late it sees its stdin close.
POLL_S = 0.05


def start(*arguments: str | os.PathLike) -> subprocess.Popen:
    """Start a child; stdin and stdout are text pipes, stderr a pipe."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cli._children", *map(os.fspath, arguments)],
        cwd=REPO_ROOT, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)


def stop(child: subprocess.Popen) -> str:
    """Close the child's stdin, wait for it; return its stderr."""
    child.stdin.close()
    try:
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    errors = child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    return errors


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def run_appender(path: str, topic: str) -> None:
    with mqlog.open(path) as log:
        for line in sys.stdin:
            partition, value = line.rstrip("\n").split(" ", 1)
            offset = log.append(topic, int(partition), [value.encode()])
            record = log.read(topic, int(partition), offset, max_records=1)[0]
            _say(f"{offset} {record.timestamp}")


def run_member(path: str, group: str, topic: str, client_id: str, mode: str) -> None:
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    reported = False
    with mqlog.open(path) as log, log.consumer(group, [topic], client_id=client_id,
                                               auto_offset_reset="earliest") as consumer:
        while not closed.is_set():
            if mode == "idle":
                consumer.pause(*consumer.assignment())
            if consumer.poll(timeout=POLL_S) and mode == "consume":
                consumer.commit()
            if consumer.assignment() and not reported:
                reported = True
                _say("owns " + ",".join(str(tp.partition) for tp in
                                        sorted(consumer.assignment())))


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "appender":
        run_appender(*sys.argv[2:])
    elif role == "member":
        run_member(*sys.argv[2:])
    else:
        raise SystemExit(f"unknown role {role!r}")
