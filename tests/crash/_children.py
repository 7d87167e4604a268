"""Child processes of the crash and multi-process tests, and the record contents they share.

The tests start these with :func:`start` (``python -m tests.crash._children ROLE ...`` from
the repository root) so that every writer and reader is a real, separate process that
opens the log itself -- nothing is forked after a Log is open. Children talk to the
parent over their standard output, one line per event, each written with a single
``os.write`` (atomic on a pipe), so a child killed mid-report never leaves half a line
that parses.

Record contents are derived from small tuples (seed, generation, batch number, index
or writer, call, index) so that the parent can re-derive every expected byte without
the child telling it more than "batch N got offset X".

Roles:

``appender LOG TOPIC SEED GENERATION``
    Appends batch 0, 1, 2, ... of :func:`crash_batch` until killed. Prints
    ``opening``, then ``ready END`` once the partition is open (recovered), then
    ``ack BATCH FIRST COUNT`` after each append returned.
``writer LOG TOPIC WRITER THREADS CALLS SEED``
    Prints ``ready`` once the partition is open, waits for a line on stdin, then
    THREADS threads each make CALLS appends of :func:`tagged_call` records; prints
    one JSON line: each writer id's first offsets, by call.
``peer LOG TOPIC``
    Prints ``ready END``, then appends one record per stdin line ``SIZE BYTE`` and
    prints ``ok OFFSET`` for each.
``die-in-roll LOG TOPIC SIZE WHEN``
    Appends a record of SIZE bytes that rolls the segment and SIGKILLs itself just
    before (WHEN=creating) or just after (WHEN=created) the roll creates the next
    segment's file.
``reader LOG TOPIC TOTAL TIMEOUT_S``
    Prints ``ready`` once the partition is open, then reads the partition's tail from
    offset 0 until it has TOTAL records, checking each record as it goes; prints one
    JSON line summarising what it saw.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mqlog
from mqlog import Record
from mqlog.logstore._segment import Segment

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Explicit record timestamps start here (a fixed point in 2020), so they are re-derivable.
BASE_TIMESTAMP_MS = 1_600_000_000_000
#: An appender that was never killed stops by itself after this long.
APPENDER_LIFETIME_S = 60.0

#: One expected record: value, key, headers, timestamp (None: assigned by the log's clock).
Expected = tuple[bytes, bytes | None, dict, int | None]


# -- record contents --------------------------------------------------------------------------


def _value_size(rng: random.Random) -> int:
    """Mostly small values, some medium, a few of several KiB."""
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(0, 64)
    if roll < 0.95:
        return rng.randint(65, 1024)
    return rng.randint(1025, 8192)


def crash_batch(seed: int, generation: int, batch_no: int) -> list[Expected]:
    """The records of appender batch ``batch_no`` in ``generation``: 1..200 records,
    random value sizes; some batches plain values (clock timestamps), the others
    Records with explicit timestamps and some keys (possibly empty) and headers."""
    rng = random.Random(f"{seed}/{generation}/{batch_no}")
    count = rng.randint(1, 200)
    plain = rng.random() < 0.3
    records = []
    for index in range(count):
        value = f"{generation}.{batch_no}.{index}|".encode() + rng.randbytes(_value_size(rng))
        if plain:
            records.append((value, None, {}, None))
            continue
        key = rng.randbytes(rng.randint(0, 16)) if rng.random() < 0.3 else None
        headers = {}
        if rng.random() < 0.15:
            headers = {"batch": str(batch_no).encode(), "blob": rng.randbytes(rng.randint(0, 40))}
        timestamp = BASE_TIMESTAMP_MS + generation * 10_000_000 + batch_no * 1000 + index
        records.append((value, key, headers, timestamp))
    return records


def to_appendable(expected: list[Expected]) -> list:
    """What to pass to ``Log.append`` for ``expected`` (bytes for plain records)."""
    if all(key is None and not headers and ts is None for _, key, headers, ts in expected):
        return [value for value, _, _, _ in expected]
    return [Record(value, key=key, headers=headers or None, timestamp=ts)
            for value, key, headers, ts in expected]


def as_expected(record: Record) -> Expected:
    """A read-back record in the form of :data:`Expected` (for exact comparison)."""
    key = None if record.key is None else bytes(record.key)
    return bytes(record.value), key, dict(record.headers), record.timestamp


def tagged_value(writer: int, call: int, index: int, count: int) -> bytes:
    """Value of record ``index`` of ``count`` in append ``call`` of ``writer``; the
    padding length and bytes depend on the tag, so a torn or mixed-up record shows."""
    tag = f"w{writer}:c{call}:i{index}:n{count}:"
    pad = (writer * 7919 + call * 31 + index) % 97
    return tag.encode() + bytes([(writer + call + index) % 251]) * pad


def parse_tagged(value: bytes) -> tuple[int, int, int, int]:
    """(writer, call, index, count) of a :func:`tagged_value`; raises ValueError if the
    value is not exactly what that tag produces."""
    fields = bytes(value).split(b":", 4)
    if len(fields) != 5:
        raise ValueError(f"record value {bytes(value)[:60]!r} has no tag")
    writer, call, index, count = (int(field[1:]) for field in fields[:4])
    if tagged_value(writer, call, index, count) != bytes(value):
        raise ValueError(f"record value {bytes(value)[:60]!r} does not match its tag")
    return writer, call, index, count


def tagged_call(writer: int, call: int, seed: int) -> list[bytes]:
    """The records of append ``call`` of ``writer``: 1..20 tagged values."""
    count = random.Random(f"{seed}/{writer}/{call}").randint(1, 20)
    return [tagged_value(writer, call, index, count) for index in range(count)]


# -- starting children from the tests ---------------------------------------------------------


def start(role: str, *args: object, stdin: bool = False) -> subprocess.Popen:
    """Start ``role`` in a new interpreter; stdout is a pipe of text lines. A child
    dying of a fatal signal other than SIGKILL (SIGBUS, SIGSEGV) prints its Python
    traceback on stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1",
               PYTHONFAULTHANDLER="1")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash._children", role, *map(str, args)],
        cwd=REPO_ROOT, env=env, text=True,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


# -- roles --------------------------------------------------------------------------------------


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def run_appender(path: str, topic: str, seed: int, generation: int) -> None:
    """Append crash batches until killed, acknowledging each one after append returns."""
    _say("opening")
    log = mqlog.open(path)
    _say(f"ready {log.end_offset(topic, 0)}")
    deadline = time.monotonic() + APPENDER_LIFETIME_S
    batch_no = 0
    while time.monotonic() < deadline:
        batch = crash_batch(seed, generation, batch_no)
        first = log.append(topic, 0, to_appendable(batch))
        _say(f"ack {batch_no} {first} {len(batch)}")
        batch_no += 1


def run_peer(path: str, topic: str) -> None:
    """Append on command: each stdin line ``SIZE BYTE`` appends one record of SIZE
    copies of BYTE and prints ``ok OFFSET``; exits at the end of stdin."""
    log = mqlog.open(path)
    _say(f"ready {log.end_offset(topic, 0)}")
    for line in sys.stdin:
        size, byte = (int(field) for field in line.split())
        _say(f"ok {log.append(topic, 0, [bytes([byte]) * size])}")


def run_die_in_roll(path: str, topic: str, size: int, when: str) -> None:
    """Append one record of ``size`` bytes that does not fit the active segment, and
    die by SIGKILL when the roll creates the next segment's file: just before
    (``when="creating"``) or just after (``when="created"``) the file appears."""
    create_segment = Segment.__init__

    def die_on_create(self: Segment, directory: str, base_offset: int,
                      create: bool = False, **options) -> None:
        if create and when == "creating":
            os.kill(os.getpid(), signal.SIGKILL)
        create_segment(self, directory, base_offset, create, **options)
        if create and when == "created":
            os.kill(os.getpid(), signal.SIGKILL)

    Segment.__init__ = die_on_create
    log = mqlog.open(path)
    log.append(topic, 0, [b"r" * size])
    raise SystemExit("the append did not roll")


def writer_ids(writer: int, threads: int) -> list[int]:
    """Writer ids of the threads of writer process ``writer``: one per thread."""
    return [writer * 100 + thread for thread in range(threads)]


def append_from_threads(log: mqlog.Log, topic: str, writer: int, threads: int, calls: int,
                        seed: int) -> dict[int, list[int]]:
    """Each thread makes ``calls`` appends of :func:`tagged_call` records to partition 0
    as one of :func:`writer_ids`; return each writer id's first offsets, by call."""
    firsts: dict[int, list[int]] = {}

    def work(writer_id: int) -> None:
        firsts[writer_id] = [
            log.append(topic, 0, tagged_call(writer_id, call, seed)) for call in range(calls)
        ]

    workers = [threading.Thread(target=work, args=(writer_id,))
               for writer_id in writer_ids(writer, threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return firsts


def run_writer(path: str, topic: str, writer: int, threads: int, calls: int, seed: int) -> None:
    """Wait for the go line, append from ``threads`` threads, report the first offsets."""
    log = mqlog.open(path)
    log.end_offset(topic, 0)  # open and recover the partition before the start line
    _say("ready")
    sys.stdin.readline()
    firsts = append_from_threads(log, topic, writer, threads, calls, seed)
    log.close()
    _say(json.dumps(firsts))


def _check_tail(records: list[Record], offset: int, stopped_at_end: bool) -> None:
    """Raise AssertionError unless ``records`` continue at ``offset`` with intact
    values and, when the read stopped at the published end, end on a call boundary."""
    for expected_offset, record in enumerate(records, offset):
        if record.offset != expected_offset:
            raise AssertionError(f"offset {record.offset} where {expected_offset} was due")
        parse_tagged(record.value)
    if stopped_at_end and records:
        _, _, index, count = parse_tagged(records[-1].value)
        if index != count - 1:
            raise AssertionError(
                f"read ended at offset {records[-1].offset} inside an append (record "
                f"{index} of {count}): a half-published batch was visible"
            )


def run_reader(path: str, topic: str, total: int, timeout_s: float) -> None:
    """Poll the tail until ``total`` records were read; report what was seen."""
    log = mqlog.open(path)
    log.end_offset(topic, 0)
    _say("ready")
    offset, polls, short_reads, error = 0, 0, 0, None
    deadline = time.monotonic() + timeout_s
    try:
        while offset < total and time.monotonic() < deadline:
            records = log.read(topic, 0, offset, max_records=64)
            polls += 1
            short = len(records) < 64
            short_reads += short and bool(records)
            _check_tail(records, offset, stopped_at_end=short)
            offset += len(records)
    except Exception as exc:  # reported to the parent, which fails the test with it
        error = f"{type(exc).__name__}: {exc}"
    log.close()
    _say(json.dumps({"read": offset, "polls": polls, "short_reads": short_reads,
                     "error": error}))


def main(argv: list[str]) -> None:
    role, args = argv[0], argv[1:]
    if role == "appender":
        run_appender(args[0], args[1], int(args[2]), int(args[3]))
    elif role == "writer":
        run_writer(args[0], args[1], *(int(a) for a in args[2:6]))
    elif role == "peer":
        run_peer(args[0], args[1])
    elif role == "die-in-roll":
        run_die_in_roll(args[0], args[1], int(args[2]), args[3])
    elif role == "reader":
        run_reader(args[0], args[1], int(args[2]), float(args[3]))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
