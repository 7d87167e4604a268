"""Child processes of the consumer-group tests: group members and producers.

The tests start these with :func:`start` (``python -m tests.consumer._children ROLE
JSON``) so that every member and producer is a separate process that opens the log
itself. A child reports on its standard output, one line per event, each written
with a single ``os.write`` so a child killed by SIGKILL never leaves half a line
that parses; members also append what they processed to their own ledger file.

Roles (their settings are one JSON object):

``member {log, group, topic, ledger, stop, work_ms, client_id}``
    Joins ``group`` consuming ``topic`` from the earliest offset and polls until
    the file ``stop`` exists, then closes (leaving the group). Prints ``ready``
    once subscribed and ``owns T P,P,...`` (T: ``time.monotonic()``, the same
    clock in every process) after each change of its partitions. For each poll
    batch it sleeps ``work_ms`` ("processing"), appends one ledger line per
    partition (:func:`ledger_line`) and only then commits: at-least-once.
``producer {log, topic, producer, count, batch, pause_ms}``
    Sends ``count`` records (values :func:`produced_value`) in batches of
    ``batch``, pausing ``pause_ms`` after each, flushes, prints ``done COUNT``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import mqlog
from mqlog.errors import CommitFailedError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: A member that was never stopped or killed leaves by itself after this long.
MEMBER_LIFETIME_S = 120.0
#: Longest wait of one poll in a member: bounds how late it sees the stop file.
MEMBER_POLL_S = 0.05


class Batch(NamedTuple):
    """One ledger line: a member processed offsets ``first..last`` of ``partition``
    between ``started`` and ``finished`` (``time.monotonic()`` seconds)."""

    pid: int
    partition: int
    first: int
    last: int
    started: float
    finished: float


def ledger_line(batch: Batch) -> str:
    return (f"batch {batch.pid} {batch.partition} {batch.first} {batch.last} "
            f"{batch.started:.6f} {batch.finished:.6f}\n")


def read_ledger(path: Path) -> list[Batch]:
    """The complete lines of a member's ledger (a killed member may leave a cut one)."""
    batches = []
    if not path.exists():
        return batches
    for line in path.read_text().splitlines(keepends=True):
        fields = line.split()
        if line.endswith("\n") and len(fields) == 7 and fields[0] == "batch":
            pid, partition, first, last = (int(f) for f in fields[1:5])
            batches.append(Batch(pid, partition, first, last, float(fields[5]),
                                 float(fields[6])))
    return batches


def produced_value(producer: int, sequence: int) -> bytes:
    return f"producer-{producer}-{sequence}".encode()


# -- starting children from the tests ----------------------------------------------------------


def start(role: str, **settings: object) -> subprocess.Popen:
    """Start ``role`` in a new interpreter; stdout is a pipe of text lines."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.consumer._children", role,
         json.dumps(settings, default=str)],
        cwd=REPO_ROOT, env=env, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


# -- roles ----------------------------------------------------------------------------------------


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class _Ownership:
    """Tracks the member's partitions through its callbacks and reports each change."""

    def __init__(self) -> None:
        self.partitions: set[int] = set()

    def _report(self) -> None:
        owned = ",".join(str(p) for p in sorted(self.partitions))
        _say(f"owns {time.monotonic():.6f} {owned}")

    def assigned(self, partitions) -> None:
        self.partitions |= {tp.partition for tp in partitions}
        self._report()

    def revoked(self, partitions) -> None:
        self.partitions -= {tp.partition for tp in partitions}
        self._report()


def _process(messages, started: float, work_ms: int) -> str:
    """Pretend to work on a poll batch; return its ledger lines."""
    time.sleep(work_ms / 1000)
    finished = time.monotonic()
    by_partition: dict[int, list[int]] = {}
    for message in messages:
        by_partition.setdefault(message.partition, []).append(message.offset)
    return "".join(
        ledger_line(Batch(os.getpid(), partition, offsets[0], offsets[-1], started, finished))
        for partition, offsets in sorted(by_partition.items()))


def run_member(log: str, group: str, topic: str, ledger: str, stop: str, work_ms: int,
               client_id: str) -> None:
    """Consume until the stop file appears, logging every batch before committing it."""
    ownership = _Ownership()
    with mqlog.open(log) as opened:
        consumer = opened.consumer(group, client_id=client_id, auto_offset_reset="earliest",
                                   max_poll_records=50)
        consumer.subscribe([topic], on_assigned=ownership.assigned,
                           on_revoked=ownership.revoked)
        _say("ready")
        fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        deadline = time.monotonic() + MEMBER_LIFETIME_S
        while not os.path.exists(stop) and time.monotonic() < deadline:
            messages = consumer.poll(timeout=MEMBER_POLL_S)
            if not messages:
                continue
            os.write(fd, _process(messages, time.monotonic(), work_ms).encode())
            try:
                consumer.commit()
            except CommitFailedError as error:  # the parent fails the test on this line
                _say(f"commit-failed {error}")
        consumer.close()
        os.close(fd)
    _say("closed")


def run_producer(log: str, topic: str, producer: int, count: int, batch: int,
                 pause_ms: int) -> None:
    """Send ``count`` numbered records in batches, pausing between batches so that
    production spans the kills of the test."""
    with mqlog.open(log) as opened, opened.producer() as sender:
        for first in range(0, count, batch):
            for sequence in range(first, min(first + batch, count)):
                sender.send(topic, produced_value(producer, sequence))
            time.sleep(pause_ms / 1000)
        unsent = sender.flush(30.0)
    _say(f"done {count - unsent}")


def main(argv: list[str]) -> None:
    role, settings = argv[0], json.loads(argv[1])
    if role == "member":
        run_member(**settings)
    elif role == "producer":
        run_producer(**settings)
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
