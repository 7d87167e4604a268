"""Helpers shared by the queue-group tests, and the child processes they start.

Helpers: recognisable record values (:func:`value_of`, :func:`fill`) and a
reader of share-state files that parses the documented byte layout on its own
(independently of ``mqlog.consumer._share_state``), so that the tests check
the file format itself and can look at a queue's state without its lock.

Children run as ``python -m tests.queue._children ROLE JSON`` (:func:`start`),
each a separate process that opens the log itself. A child reports on its
standard output with single ``os.write`` calls, so a child killed by SIGKILL
never leaves half a line that parses. Roles (settings: one JSON object):

``worker {log, group, topic, ledger, stop, ack_timeout_s, max_deliveries, batch, work_ms,
poison}``
    A queue worker that receives until the file ``stop`` exists, then closes
    and prints ``closed``. It prints ``ready`` once it joined. For every
    message it appends ``recv P O D T`` to its ledger (``D``: delivery count,
    ``T``: ``time.monotonic()`` just before the ``receive`` call that returned
    the message), "works" ``work_ms``, acks, then appends ``ack P O T`` (``T``:
    just after ``ack`` returned), or ``lost P O`` on DeliveryLostError. A
    message whose value is ``poison`` makes it SIGKILL itself right after the
    ``recv`` line, every time.
``grab {log, group, topic, count}``
    Receives ``count`` messages, prints ``held P:O,P:O,...`` and SIGKILLs
    itself while holding them.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import mqlog
from mqlog.errors import DeliveryLostError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: A worker that was never stopped or killed leaves by itself after this long.
WORKER_LIFETIME_S = 120.0
#: Longest wait of one receive in a worker: bounds how late it sees the stop file.
WORKER_RECEIVE_S = 0.05

#: Header of a share-state file as documented: magic, version, capacity, start, window_end.
HEADER_FORMAT = struct.Struct("<8sIIqq")
HEADER_BYTES = 64
#: One 32-byte entry per offset (at slot offset % capacity), as documented.
ENTRY_FORMAT = np.dtype([
    ("state", "u1"), ("deliveries", "u1"), ("reserved", "<u2"), ("owner", "<u4"),
    ("time", "<i8"), ("first_ms", "<i8"), ("last_ms", "<i8"),
])
AVAILABLE, ACQUIRED, ACKED, ARCHIVED = 0, 1, 2, 3


# -- records and share-state files ---------------------------------------------------------------


def value_of(partition: int, offset: int) -> bytes:
    """The value :func:`fill` writes at ``offset`` of ``partition``."""
    return f"p{partition}-o{offset}".encode()


def fill(log: mqlog.Log, topic: str, partition: int, count: int) -> int:
    """Append ``count`` records of :func:`value_of` to ``partition``; return the end offset."""
    first = log.end_offset(topic, partition)
    log.append(topic, partition, [value_of(partition, first + i) for i in range(count)])
    return first + count


def share_state_path(log_dir: os.PathLike | str, group: str, topic: str, partition: int) -> Path:
    """Where the share state of ``group`` for one partition lives."""
    return Path(log_dir) / "queues" / group / topic / str(partition)


class ShareFile(NamedTuple):
    """A share-state file as parsed from its bytes."""

    magic: bytes
    version: int
    capacity: int
    start: int
    window_end: int
    entries: np.ndarray

    def entry(self, offset: int) -> np.void:
        """The entry of ``offset`` (its ring slot)."""
        return self.entries[offset % self.capacity]


def read_share_file(path: os.PathLike | str) -> ShareFile:
    """Map a share-state file read-only and parse it: a 64-byte header, then
    ``capacity`` 32-byte entries (a live view: it shows later changes too)."""
    with open(path, "rb") as handle:
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    magic, version, capacity, start, window_end = HEADER_FORMAT.unpack_from(data, 0)
    assert len(data) == HEADER_BYTES + capacity * ENTRY_FORMAT.itemsize, (len(data), capacity)
    entries = np.frombuffer(data, dtype=ENTRY_FORMAT, count=capacity, offset=HEADER_BYTES)
    return ShareFile(magic, version, capacity, start, window_end, entries)


def queue_position(log_dir: os.PathLike | str, group: str, topic: str, partition: int) -> int:
    """The ``start`` of ``group`` in one partition (0 before it has a state file)."""
    path = share_state_path(log_dir, group, topic, partition)
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return struct.unpack("<q", handle.read(24)[16:24])[0]


# -- ledgers ---------------------------------------------------------------------------------------


class Entry(NamedTuple):
    """One ledger line: ``kind`` recv, ack or lost; ``deliveries`` only for recv
    lines; ``at`` (``time.monotonic()``) for recv and ack lines."""

    kind: str
    partition: int
    offset: int
    deliveries: int
    at: float


def read_ledger(path: Path) -> list[Entry]:
    """The complete lines of a worker's ledger (a killed worker may leave a cut one)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines(keepends=True):
        fields = line.split()
        if not line.endswith("\n"):
            continue
        if fields[0] == "recv" and len(fields) == 5:
            entries.append(Entry("recv", int(fields[1]), int(fields[2]), int(fields[3]),
                                 float(fields[4])))
        elif fields[0] == "ack" and len(fields) == 4:
            entries.append(Entry("ack", int(fields[1]), int(fields[2]), 0, float(fields[3])))
        elif fields[0] == "lost" and len(fields) == 3:
            entries.append(Entry("lost", int(fields[1]), int(fields[2]), 0, 0.0))
    return entries


# -- starting children from the tests --------------------------------------------------------------


def start(role: str, **settings: object) -> subprocess.Popen:
    """Start ``role`` in a new interpreter; stdout is a pipe of text lines."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.queue._children", role,
         json.dumps(settings, default=str)],
        cwd=REPO_ROOT, env=env, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


# -- roles -----------------------------------------------------------------------------------------


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def _handle(worker_fd: int, message, asked: float, work_ms: int, poison: bytes | None) -> None:
    """Log, work on and ack one message (or die on the poison)."""
    where = f"{message.partition} {message.offset}"
    os.write(worker_fd, f"recv {where} {message.delivery_count} {asked:.6f}\n".encode())
    if poison is not None and message.value == poison:
        os.kill(os.getpid(), signal.SIGKILL)
    if work_ms:
        time.sleep(work_ms / 1000)
    try:
        message.ack()
    except DeliveryLostError:
        os.write(worker_fd, f"lost {where}\n".encode())
        return
    os.write(worker_fd, f"ack {where} {time.monotonic():.6f}\n".encode())


def run_worker(log: str, group: str, topic: str, ledger: str, stop: str, ack_timeout_s: float,
               max_deliveries: int, batch: int, work_ms: int, poison: str | None) -> None:
    """Receive, log and ack until the stop file appears."""
    poison_value = None if poison is None else poison.encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with mqlog.open(log) as opened:
        worker = opened.queue(group, topic, ack_timeout_s=ack_timeout_s,
                              max_deliveries=max_deliveries)
        _say("ready")
        deadline = time.monotonic() + WORKER_LIFETIME_S
        while not os.path.exists(stop) and time.monotonic() < deadline:
            asked = time.monotonic()
            for message in worker.receive(max_messages=batch, timeout=WORKER_RECEIVE_S):
                _handle(fd, message, asked, work_ms, poison_value)
        worker.close()
    os.close(fd)
    _say("closed")


def run_grab(log: str, group: str, topic: str, count: int) -> None:
    """Take ``count`` messages and die holding them."""
    with mqlog.open(log) as opened:
        worker = opened.queue(group, topic, ack_timeout_s=60)
        held = worker.receive(max_messages=count, timeout=5)
        _say("held " + ",".join(f"{m.partition}:{m.offset}" for m in held))
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    role, settings = argv[0], json.loads(argv[1])
    if role == "worker":
        run_worker(**settings)
    elif role == "grab":
        run_grab(**settings)
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
