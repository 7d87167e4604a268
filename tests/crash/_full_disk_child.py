"""The child processes of the real full-disk test (``tests/crash/test_full_disk.py``).

``python -m tests.crash._full_disk_child rounds LOG FILLER ROUNDS SEED``

Opens the log (on a small file system of its own), then ROUNDS times: fills the
disk with FILLER (leaving a few bytes to a few pages free), appends, commits a
consumer group's offsets, sends queue jobs and receives + acks them until each
raises DiskFullError, deletes FILLER and checks that every one of those calls
works again in this same process, without reopening anything. Prints one JSON
line: what was acknowledged (appended offsets, committed offsets, acked jobs)
and how many DiskFullErrors each kind of call met. Any other exception ends the
child with a traceback (exit status 1); a SIGBUS would end it with -7.

``python -m tests.crash._full_disk_child index-page LOG FILLER``

Appends one-record batches (each indexed) until the next one's time-index entry
is the first of a new page while its data still fits in an allocated page of
the segment, fills the disk, and appends it: with sparse index files that store
was a SIGBUS. Then appends until DiskFullError. Prints a JSON line.

``python -m tests.crash._full_disk_child queue-page LOG FILLER``

Receives and acks queue jobs whose share-state entries fill the file's first
page, fills the disk, and receives the next ones, whose entries are on the
second page: with a sparse share-state file that store was a SIGBUS.
"""

from __future__ import annotations

import errno
import json
import os
import random
import sys
from collections import Counter

import mqlog
from mqlog import DiskFullError, TopicPartition

TOPIC, JOBS, GROUP, QUEUE = "t", "jobs", "g", "q"
#: Appends per round at most (each round ends at the first DiskFullError far earlier).
CALLS_MAX = 20_000


def fill(path: str, leave_bytes: int) -> None:
    """Write ``path`` until the disk is full, then give back ``leave_bytes``."""
    chunk = b"\xa5" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(size - leave_bytes, 0))
    finally:
        os.close(fd)


def until_full(call, events: Counter, name: str) -> int:
    """Run ``call()`` until it raises DiskFullError; return how many calls worked."""
    for done in range(CALLS_MAX):
        try:
            call()
        except DiskFullError as error:
            assert error.errno == errno.ENOSPC and error.filename and error.bytes_needed > 0
            events[name] += 1
            return done
    raise AssertionError(f"{name}: the disk never filled up")


def main(log_path: str, filler: str, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    events: Counter = Counter()
    appended: list[tuple[int, str]] = []  # (offset, value) of every acknowledged append
    committed: list[int] = []  # every offset a commit acknowledged, in order
    acked: list[int] = []  # every job offset whose ack returned
    with mqlog.open(log_path) as log:
        log.create_topic(TOPIC, segment_bytes=65536, index_interval_bytes=64,
                         durability="always")
        log.create_topic(JOBS, segment_bytes=65536, index_interval_bytes=64,
                         durability="always")
        consumer = log.consumer(GROUP, [TOPIC])
        worker = log.queue(QUEUE, JOBS)
        tp = TopicPartition(TOPIC, 0)

        def append() -> None:
            value = f"{len(appended)}:" + "x" * rng.randrange(0, 300)
            appended.append((log.append(TOPIC, 0, [value.encode()]), value))

        def commit() -> None:
            position = len(committed) + 1
            consumer.commit({tp: position})
            committed.append(position)

        def send_job() -> None:
            log.append(JOBS, 0, [b"job"])

        def receive_and_ack() -> None:
            for message in worker.receive(max_messages=rng.randrange(1, 20)):
                message.ack()
                acked.append(message.offset)

        for _round in range(rounds):
            fill(filler, rng.choice([0, 100, 4096, 3 * 4096, 9 * 4096]))
            calls = [(append, "append"), (commit, "commit"), (send_job, "send"),
                     (receive_and_ack, "receive")]
            rng.shuffle(calls)
            for call, name in calls:
                if name == "receive":
                    try:
                        receive_and_ack()  # no jobs waiting, or the disk is full
                    except DiskFullError:
                        events["receive"] += 1
                else:
                    until_full(call, events, name)
            os.unlink(filler)  # space is back: everything works again, no reopen
            for call in (append, commit, send_job, receive_and_ack):
                call()
        records = {r.offset: r.value.decode()
                   for r in log.read(TOPIC, 0, 0, max_records=1_000_000)}
        lost = [offset for offset, value in appended if records.get(offset) != value]
        consumer.close()
        worker.close()
    print(json.dumps({"appended": len(appended), "committed": committed[-1:],
                      "acked": sorted(acked), "lost": lost, "events": dict(events)}),
          flush=True)


def index_page(log_path: str, filler: str) -> None:
    """See the module docstring (``index-page``)."""
    page_entries = 4096 // 16  # time-index entries per page
    with mqlog.open(log_path) as log:
        log.create_topic(TOPIC, segment_bytes=65536, index_interval_bytes=1,
                         durability="none")
        # Batch k >= 1 gets index entry k - 1 (position 0 is never indexed): batch
        # page_entries + 1 stores the first entry of the time index's second page.
        for _ in range(page_entries + 1):
            log.append(TOPIC, 0, [b""])
        fill(filler, 0)
        events = Counter()
        offsets = [log.append(TOPIC, 0, [b""])]  # data fits the page; index entry is new
        until_full(lambda: offsets.append(log.append(TOPIC, 0, [b""])), events, "append")
        os.unlink(filler)
        offsets.append(log.append(TOPIC, 0, [b"after"]))
        print(json.dumps({"offsets": offsets, "events": dict(events),
                          "end": log.end_offset(TOPIC, 0)}), flush=True)


def queue_page(log_path: str, filler: str) -> None:
    """See the module docstring (``queue-page``)."""
    page_entries = (4096 - 64) // 32  # share-state entries on the file's first page
    with mqlog.open(log_path) as log:
        log.create_topic(JOBS, durability="none")
        log.append(JOBS, 0, [b"job"] * (3 * page_entries))
        worker = log.queue(QUEUE, JOBS)
        acked = []
        while len(acked) < page_entries - 10:
            for message in worker.receive(max_messages=page_entries - 10 - len(acked)):
                message.ack()
                acked.append(message.offset)
        fill(filler, 0)
        for message in worker.receive(max_messages=page_entries):  # onto the second page
            message.ack()
            acked.append(message.offset)
        os.unlink(filler)
        worker.close()
        print(json.dumps({"acked": acked}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "rounds":
        main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "index-page":
        index_page(sys.argv[2], sys.argv[3])
    else:
        queue_page(sys.argv[2], sys.argv[3])
