"""What ``mqlog demo`` does and measures, in a temporary directory removed afterwards.

1. Bulk: append ``records`` values of VALUE_BYTES bytes to a PARTITIONS-partition
   topic, read them all back and compare every value; time both.
2. Crash: start a writer process (``mqlog.cli._demo_writer``) on a
   ``durability="always"`` topic, SIGKILL it mid-stream, reopen the log
   (timing recovery), check that every acknowledged record is there with its
   value, and that the partition accepts appends again.
3. Verify the whole directory with :func:`mqlog.logstore.inspect.verify_log`.

Every check that fails adds a line to ``DemoResult.failures``; the command
exits 1 when there is any.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import mqlog
from mqlog.logstore.inspect import verify_log

PARTITIONS = 4
TOPIC = "demo"
CRASH_TOPIC = "demo-crash"
#: Size of every demo value.
VALUE_BYTES = 100
#: Records per append and per read call in the bulk phase.
CHUNK = 10_000
#: Small enough that 1,000,000 records roll a few segments per partition.
SEGMENT_BYTES = 16 * 1024 * 1024
#: Records per append of the crash-test writer.
WRITER_BATCH = 10
#: How long the writer appends (after its first ack) before it is killed.
CRASH_SECONDS = 0.5
#: The writer is killed after this long whatever happens (it should not hang).
WRITER_TIMEOUT_S = 60.0

#: progress(phase, done, total): called as the bulk phases ("append", "read") advance.
Progress = Callable[[str, int, int], None]


def demo_value(partition: int, offset: int) -> bytes:
    """The value the demo stores at ``offset`` of ``partition``: VALUE_BYTES bytes."""
    return (b"%d:%012d:" % (partition, offset)).ljust(VALUE_BYTES, b"~")


@dataclasses.dataclass(frozen=True)
class BulkResult:
    records: int
    partitions: int
    value_bytes: int
    segments: int
    append_seconds: float
    read_seconds: float

    @property
    def append_records_per_s(self) -> float:
        return self.records / max(self.append_seconds, 1e-9)

    @property
    def read_records_per_s(self) -> float:
        return self.records / max(self.read_seconds, 1e-9)

    @property
    def append_mib_per_s(self) -> float:
        return self.records * self.value_bytes / 2**20 / max(self.append_seconds, 1e-9)


@dataclasses.dataclass(frozen=True)
class CrashResult:
    #: Appends the writer acknowledged, and the records in them.
    acked_appends: int
    acked_records: int
    #: How long the writer ran between its first ack and the SIGKILL.
    writer_seconds: float
    #: Opening the log and the partition (which runs recovery) after the kill.
    recovery_seconds: float
    #: Records in the partition after recovery (acked ones plus any in flight).
    survived_records: int
    #: Acknowledged records missing or wrong after recovery (must be 0).
    lost_records: int
    #: Whether an append after recovery got the next offset and reads back.
    appended_after_recovery: bool


@dataclasses.dataclass(frozen=True)
class DemoResult:
    bulk: BulkResult
    crash: CrashResult
    verify_errors: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def run_demo(records: int, progress: Progress | None = None,
             crash_seconds: float = CRASH_SECONDS) -> DemoResult:
    """Run the three phases on ``records`` bulk records; see the module docstring."""
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mqlog-demo-") as root:
        bulk = _bulk(root, records, progress or _no_progress, failures)
        crash = _crash(root, crash_seconds, failures)
        report = verify_log(root)
    failures.extend(f"verify: {p.location()}: {p.description}" for p in report.errors)
    return DemoResult(bulk, crash, len(report.errors), tuple(failures))


def _no_progress(phase: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


# -- bulk ------------------------------------------------------------------------------


def _bulk(root: str, records: int, progress: Progress, failures: list[str]) -> BulkResult:
    counts = [records // PARTITIONS + (p < records % PARTITIONS) for p in range(PARTITIONS)]
    with mqlog.open(root) as log:
        log.create_topic(TOPIC, partitions=PARTITIONS, segment_bytes=SEGMENT_BYTES)
        append_seconds = _append_all(log, counts, progress)
        read_seconds = _read_all(log, counts, progress, failures)
        segments = sum(p.segment_count for p in log.describe_topic(TOPIC).partitions)
    return BulkResult(records, PARTITIONS, VALUE_BYTES, segments, append_seconds, read_seconds)


def _append_all(log: mqlog.Log, counts: list[int], progress: Progress) -> float:
    """Append every partition's values in CHUNK-record calls; seconds spent in append."""
    total, done, spent = sum(counts), 0, 0.0
    for partition, count in enumerate(counts):
        for start in range(0, count, CHUNK):
            values = [demo_value(partition, n) for n in range(start, min(start + CHUNK, count))]
            began = time.perf_counter()
            log.append(TOPIC, partition, values)
            spent += time.perf_counter() - began
            done += len(values)
            progress("append", done, total)
    return spent


def _read_all(log: mqlog.Log, counts: list[int], progress: Progress,
              failures: list[str]) -> float:
    """Read every record back, comparing offsets and values; seconds spent in read."""
    total, done, spent = sum(counts), 0, 0.0
    for partition, count in enumerate(counts):
        offset = 0
        while offset < count:
            began = time.perf_counter()
            batch = log.read(TOPIC, partition, offset, max_records=CHUNK)
            spent += time.perf_counter() - began
            expected = [demo_value(partition, n) for n in range(offset, offset + len(batch))]
            if not batch or batch[0].offset != offset or [r.value for r in batch] != expected:
                failures.append(f"read {TOPIC}/{partition} at offset {offset}: the records "
                                f"differ from what was appended")
                break
            offset += len(batch)
            done += len(batch)
            progress("read", done, total)
        if log.end_offset(TOPIC, partition) != count:
            failures.append(f"{TOPIC}/{partition} ends at offset "
                            f"{log.end_offset(TOPIC, partition)}, expected {count}")
    return spent


# -- crash -----------------------------------------------------------------------------


def _crash(root: str, seconds: float, failures: list[str]) -> CrashResult:
    with mqlog.open(root) as log:
        log.create_topic(CRASH_TOPIC, durability="always")
    acked_end, appends, writer_seconds = _run_and_kill_writer(root, seconds, failures)
    began = time.perf_counter()
    with mqlog.open(root) as log:
        end = log.end_offset(CRASH_TOPIC, 0)  # opens the partition: recovery runs
        recovery_seconds = time.perf_counter() - began
        lost = _count_lost(log, acked_end, end)
        appended = _append_again(log, end)
    if lost:
        failures.append(f"{lost} of {acked_end} acknowledged records were lost in the crash")
    if not appended:
        failures.append("the partition did not accept an append after recovery")
    return CrashResult(appends, acked_end, writer_seconds, recovery_seconds, end, lost,
                       appended)


def _run_and_kill_writer(root: str, seconds: float,
                         failures: list[str]) -> tuple[int, int, float]:
    """Run the writer ``seconds`` past its first ack, SIGKILL it; return (acknowledged
    end offset, acknowledged appends, seconds it ran). Only complete ack lines count."""
    command = [sys.executable, "-m", "mqlog.cli._demo_writer", root, CRASH_TOPIC]
    # cwd: ``-m`` puts the working directory first on sys.path; the caller's may
    # hold files that shadow modules.
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)
    watchdog = threading.Timer(WRITER_TIMEOUT_S, writer.kill)
    watchdog.start()
    acks: list[bytes] = []
    started = time.monotonic()
    try:
        for line in writer.stdout:
            acks.append(line)
            if len(acks) == 1:
                started = time.monotonic()
            elif time.monotonic() - started >= seconds:
                break
        writer.send_signal(signal.SIGKILL)  # mid-stream: it is appending again already
        ran = time.monotonic() - started
        acks.extend(writer.stdout.read().splitlines(keepends=True))
        errors = writer.stderr.read().decode(errors="replace").strip()
        writer.wait()
    finally:
        watchdog.cancel()
    complete = [line.split() for line in acks if line.endswith(b"\n")]
    if not complete:
        failures.append(f"the writer acknowledged nothing: {errors or 'no output'}")
        return 0, 0, ran
    first, count = (int(field) for field in complete[-1])
    return first + count, len(complete), ran


def _count_lost(log: mqlog.Log, acked_end: int, end: int) -> int:
    """Acknowledged offsets (0..acked_end) that are missing or hold another value."""
    lost = max(acked_end - end, 0)
    offset, stop = 0, min(acked_end, end)
    while offset < stop:
        batch = log.read(CRASH_TOPIC, 0, offset, max_records=CHUNK)[: stop - offset]
        if not batch:
            return lost + stop - offset
        lost += sum(record.value != demo_value(0, record.offset) for record in batch)
        offset += len(batch)
    return lost


def _append_again(log: mqlog.Log, end: int) -> bool:
    """Whether the recovered partition takes a new record at ``end`` and reads it back."""
    value = demo_value(0, end)
    first = log.append(CRASH_TOPIC, 0, [value])
    return first == end and [r.value for r in log.read(CRASH_TOPIC, 0, first)] == [value]
