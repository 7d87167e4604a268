"""Child processes of ``test_readers_and_writers``: writers, an admin and tailing
readers of one log directory, each a separate interpreter.

Every child prints ``ready`` once its Log is open and starts on a ``go`` line on
stdin. Writers and the admin stop by themselves after DURATION_S (and at least
MIN_RECORDS / MIN_DELETIONS, so that even a slow machine rolls, retains and
deletes); readers stop on a ``stop`` line, after reading up to the end. Each prints one JSON line
summing up what it did; a reader's ``error`` is the traceback of anything it
met that is not a documented outcome (None if all went well).

Topics (see ``TOPICS``): ``roll`` rolls 4 KiB segments that retention deletes
behind the readers; ``compacted`` is compacted after its rolls and by the
admin; ``churn`` is deleted and created again by the admin all the time.

Record values are ``WRITER:SEQ:`` plus padding: SEQ counts a writer's records
of one topic, so every reader can check that it sees each writer's records in
order, once, and that the offsets it reads are dense (or, in the compacted
topic, increasing).

Roles:

``writer LOG WRITER SEED DURATION_S``
``admin LOG SEED DURATION_S``
``reader LOG KIND`` (KIND: ``read`` -- Log.read loops; ``read-only`` -- the same
through ``mqlog.open(read_only=True)``; ``lagging`` -- Log.read loops reading
little and pausing, so that retention overtakes them; ``consumer`` -- a Consumer
polling ``roll`` and ``compacted``)
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback

import mqlog
from mqlog import OffsetOutOfRangeError, Record, TopicPartition, UnknownTopicError

_SMALL = {"segment_bytes": 4096, "index_interval_bytes": 256, "durability": "none"}
TOPICS = {
    "roll": {**_SMALL, "retention_bytes": 4 * 4096},
    "compacted": {**_SMALL, "cleanup_policy": "compact", "min_cleanable_dirty_ratio": 0.1},
    "churn": _SMALL,
}
#: Records each writer appends to each topic at least (over 20 segments of ``roll``).
MIN_RECORDS = 200
#: Deletions of ``churn`` the admin makes at least.
MIN_DELETIONS = 3
#: Distinct keys per writer in the compacted topic.
KEYS = 13
#: Records per read.
READ_RECORDS = 200
#: Longest wait for an append before a reader looks again.
WAIT_S = 0.05
#: A lagging reader's records per read and pause after each read.
LAGGING_RECORDS = 5
LAGGING_PAUSE_S = 0.02


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _await(word: str) -> None:
    line = sys.stdin.readline()
    if line.strip() != word:
        raise SystemExit(f"expected {word!r} on stdin, got {line!r}")


def create_topics(path: str) -> None:
    with mqlog.open(path) as log:
        for name, config in TOPICS.items():
            log.create_topic(name, **config)


def value(writer: int, seq: int, rng: random.Random) -> bytes:
    return b"%d:%d:" % (writer, seq) + b"." * rng.randint(20, 400)


def parse(data: bytes) -> tuple[int, int]:
    writer, seq, _padding = bytes(data).split(b":", 2)
    return int(writer), int(seq)


def run_writer(path: str, writer: int, seed: int, duration_s: float) -> None:
    rng = random.Random(f"{seed}/{writer}")
    appended = dict.fromkeys(TOPICS, 0)
    refused = 0
    with mqlog.open(path) as log:
        _say("ready")
        _await("go")
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline or min(appended.values()) < MIN_RECORDS:
            for topic in TOPICS:
                first = appended[topic]
                records = [Record(value(writer, first + n, rng),
                                  key=b"%d/%d" % (writer, (first + n) % KEYS))
                           for n in range(rng.randint(1, 4))]
                try:
                    log.append(topic, 0, records)
                except UnknownTopicError:  # churn, deleted just now: nothing was written
                    refused += 1
                    continue
                appended[topic] += len(records)
    _say(json.dumps({"appended": appended, "refused": refused}))


def run_admin(path: str, seed: int, duration_s: float) -> None:
    rng = random.Random(f"{seed}/admin")
    done = {"deleted": 0, "created": 0, "compactions": 0, "retention": 0}
    with mqlog.open(path) as log:
        _say("ready")
        _await("go")
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline or done["deleted"] < MIN_DELETIONS:
            time.sleep(rng.uniform(0.02, 0.12))
            try:
                log.delete_topic("churn")
                done["deleted"] += 1
            except UnknownTopicError:
                pass
            time.sleep(rng.uniform(0.0, 0.03))
            log.create_topic("churn", **TOPICS["churn"])
            done["created"] += 1
            done["compactions"] += log.compact("compacted")
            done["retention"] += log.enforce_retention("roll")
    _say(json.dumps(done))


class Broken(AssertionError):
    """A reader saw something no reader may see."""


class Follow:
    """What one reader has seen of one topic: where it is, each writer's last SEQ."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.offset = 0
        self.last_seq: dict[int, int] = {}
        self.records = 0
        self.jumps = 0
        self.deletions = 0

    def take(self, records, start_offset=None) -> None:
        """Check ``records`` (in order) and move past them. ``start_offset``: a
        callable giving the log start now, for a consumer (which skips what
        retention deleted on its own): a gap is only allowed below it."""
        for record in records:
            if record.offset != self.offset:
                gap_ok = (self.topic == "compacted" and record.offset > self.offset) or (
                    start_offset is not None and self.offset < record.offset <= start_offset())
                if not gap_ok:
                    raise Broken(f"{self.topic}: read offset {record.offset} after "
                                 f"{self.offset - 1}")
                self.jumps += self.topic != "compacted"
            writer, seq = parse(record.value)
            if seq <= self.last_seq.get(writer, -1):
                raise Broken(f"{self.topic}@{record.offset}: writer {writer}'s record {seq} "
                             f"after its record {self.last_seq[writer]}")
            self.last_seq[writer] = seq
            self.offset = record.offset + 1
            self.records += 1

    def read(self, log: mqlog.Log, max_records: int = READ_RECORDS) -> int:
        """One Log.read step; returns the records read."""
        try:
            records = log.read(self.topic, 0, self.offset, max_records=max_records)
        except OffsetOutOfRangeError as error:
            if self.topic != "roll" or error.start_offset <= self.offset:
                raise
            self.offset = error.start_offset  # retention deleted what was next
            self.jumps += 1
            return 0
        except UnknownTopicError:
            if self.topic != "churn":
                raise
            if self.offset:
                self.deletions += 1
            self.offset = 0  # deleted: the next incarnation starts at 0
            return 0
        self.take(records)
        return len(records)

    def summary(self) -> dict:
        return {"offset": self.offset, "records": self.records, "jumps": self.jumps,
                "deletions": self.deletions}


def _read_loops(log: mqlog.Log, follows: list[Follow], lagging: bool) -> None:
    stopping = False
    while True:
        seen = log.append_counter()
        lag = lagging and not stopping
        got = sum(follow.read(log, LAGGING_RECORDS if lag else READ_RECORDS)
                  for follow in follows)
        if lag:
            time.sleep(LAGGING_PAUSE_S)
        if stopping and not got:
            ends = [log.end_offset(f.topic, 0) for f in follows if f.topic != "churn"]
            if [f.offset for f in follows if f.topic != "churn"] == ends:
                return
        if not stopping and _stop_requested():
            stopping = True
        if not got:
            log.wait_for_append(seen, WAIT_S)


def _consumer_loop(log: mqlog.Log, follows: list[Follow]) -> None:
    by_topic = {follow.topic: follow for follow in follows}
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0) for topic in by_topic])
    stopping = False
    try:
        while True:
            messages = consumer.poll(timeout=WAIT_S, max_records=READ_RECORDS)
            for topic, follow in by_topic.items():
                follow.take([m for m in messages if m.topic == topic],
                            lambda topic=topic: log.start_offset(topic, 0))
            if stopping and not messages and all(
                    f.offset >= log.end_offset(f.topic, 0) for f in follows):
                return
            if not stopping and _stop_requested():
                stopping = True
    finally:
        consumer.close()


def _stop_requested() -> bool:
    """True once the parent wrote ``stop`` (stdin is read without blocking)."""
    import select

    while select.select([sys.stdin], [], [], 0)[0]:
        line = sys.stdin.readline()
        if not line or line.strip() == "stop":
            return True
    return False


def run_reader(path: str, kind: str) -> None:
    follows = [Follow(topic) for topic in TOPICS if kind != "consumer" or topic != "churn"]
    error = None
    with mqlog.open(path, read_only=kind == "read-only") as log:
        _say("ready")
        _await("go")
        try:
            if kind == "consumer":
                _consumer_loop(log, follows)
            else:
                _read_loops(log, follows, lagging=kind == "lagging")
        except Exception:
            error = traceback.format_exc()
    _say(json.dumps({"error": error, **{f.topic: f.summary() for f in follows}}))


def main(argv: list[str]) -> None:
    role, args = argv[0], argv[1:]
    if role == "writer":
        run_writer(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif role == "admin":
        run_admin(args[0], int(args[1]), float(args[2]))
    elif role == "reader":
        run_reader(args[0], args[1])
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
