"""A log with something of everything, for the read-only tests (``tests/logstore``
and ``tests/cli``), and a fingerprint of a directory that any write changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mqlog

RETENTION_MS = 60_000
SEGMENT_BYTES = 4096


def tree(root: Path) -> dict[str, tuple]:
    """Everything under ``root`` that a write could change: each directory's entries
    and mtime, each file's bytes, size and mtime."""
    found: dict[str, tuple] = {}
    for directory, dirs, files in os.walk(root):
        found[directory] = ("dir", sorted(dirs + files), os.stat(directory).st_mtime_ns)
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                found[path] = ("file", handle.read(), os.stat(path).st_mtime_ns)
    return found


def build(path: Path, clock) -> None:
    """Topics ``events`` (2 partitions, many segments, retention due once the clock
    moves), ``keys`` (compacted), ``jobs`` with a queue group ``q`` and dead letters
    in ``jobs.dlq``, a consumer group ``g`` with commits and a dead member's file."""
    with mqlog.open(path, clock=clock) as log:
        log.create_topic("events", partitions=2, segment_bytes=SEGMENT_BYTES,
                         index_interval_bytes=256, retention_ms=RETENTION_MS)
        for number in range(300):
            log.append("events", number % 2, [b"event-%04d" % number * 8])
            clock.advance(10)
        log.create_topic("keys", cleanup_policy="compact", segment_bytes=SEGMENT_BYTES)
        for number in range(200):
            log.append("keys", 0, [mqlog.Record(b"v%d" % number, key=b"k%d" % (number % 7))])
        log.compact("keys")
        consumer = log.consumer("g", ["events"], auto_offset_reset="earliest")
        while consumer.poll(max_records=50):
            consumer.commit()
        consumer.close()
        log.create_topic("jobs")
        log.append("jobs", 0, [b"job-%d" % n for n in range(10)])
        worker = log.queue("q", "jobs", max_deliveries=1)
        taken = worker.receive(max_messages=6)
        for message in taken[:3]:
            message.ack()
        for message in taken[3:5]:
            message.nack(delay_s=0, reason="bad input")
        worker.receive(max_messages=10)  # dead-letters the two nacked ones
        worker.close()
    members = path / "groups" / "g" / "members"
    members.mkdir(parents=True, exist_ok=True)
    (members / "dead-member.json").write_text(json.dumps({"client_id": "gone", "pid": 1}))
    clock.advance(10 * RETENTION_MS)  # retention would now delete most of events
