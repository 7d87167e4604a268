"""Figure 3: durable appends from concurrent threads (group commit).

Workload: one topic of one partition with durability="always" (every append
returns only once its records are fdatasync'ed). 4 threads of one process,
released together by a barrier, each append ``--records`` / 4 records of 100
random bytes in calls of 100 records to that one partition. Timed: from the
barrier until the last thread finishes. Each run uses a fresh log directory;
the median run (by records/s) of ``--repeat`` (default 3) is reported.

Flushes are counted by wrapping ``os.fdatasync`` and ``os.fsync`` in this
process (the log store calls them through the ``os`` module), so the count is
exactly the flush system calls the appends caused. Group commit shows as fewer
flushes than appends: one thread's fdatasync covers every append published
before it began.

For scale, the disk's own flush latency is measured too: the median of 200
rounds of writing one such 100-record batch (12 KB) to a plain file and
fdatasync'ing it. With at most one flush in flight and 4 threads, records/s
cannot pass 4 x 100 records per flush latency.

Figures: records/s (target >= 300,000), appends/s, fsyncs/s, appends per fsync,
the mean duration of those flush calls (µs) and the disk's fdatasync latency (µs).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import _common

import mqlog

BENCH = "append_always_threads"
THREADS = 4
BATCH = 100
TARGET_RECORDS_PER_S = 300_000
FDATASYNC_ROUNDS = 200
#: One batch of BATCH records as the log store writes it.
WRITE_BYTES = _common.batch_bytes(BATCH)


class FlushCounter:
    """Counts fdatasync/fsync calls made in this process, and the time spent in them."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def wrap(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def counted(fd: int) -> None:
            start = time.perf_counter()
            try:
                real(fd)
            finally:
                with self._lock:
                    self.calls += 1
                    self.seconds += time.perf_counter() - start
        return counted


@contextmanager
def counting_flushes() -> Iterator[FlushCounter]:
    """Route os.fdatasync and os.fsync through a FlushCounter while the block runs."""
    counter = FlushCounter()
    originals = {"fdatasync": os.fdatasync, "fsync": os.fsync}
    for name, real in originals.items():
        setattr(os, name, counter.wrap(real))
    try:
        yield counter
    finally:
        for name, real in originals.items():
            setattr(os, name, real)


def run_once(records: int) -> tuple[float, int, FlushCounter]:
    """One run: (seconds, append calls, flushes) for ``records`` records."""
    calls_per_thread = max(records // (THREADS * BATCH), 1)
    values = _common.payloads(BATCH)
    barrier = threading.Barrier(THREADS + 1)
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="always")
        log.end_offset(_common.TOPIC, 0)  # open the partition outside the timing

        errors: list[BaseException] = []

        def appender() -> None:
            barrier.wait()
            try:
                for _ in range(calls_per_thread):
                    log.append(_common.TOPIC, 0, values)
            except BaseException as error:  # re-raised in the main thread below
                errors.append(error)

        threads = [threading.Thread(target=appender) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        with counting_flushes() as flushes, _common.stopwatch() as elapsed:
            barrier.wait()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        appends = calls_per_thread * THREADS
        assert log.end_offset(_common.TOPIC, 0) == appends * BATCH
    return elapsed[0], appends, flushes


def fdatasync_latency_ns(rounds: int) -> list[int]:
    """Latencies of appending one batch-sized write to a plain file and fdatasync'ing it."""
    chunk = os.urandom(WRITE_BYTES)
    samples = []
    with _common.temporary_log_dir("fdatasync") as path:
        fd = os.open(os.path.join(path, "probe"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for _ in range(rounds):
                start = time.perf_counter_ns()
                os.write(fd, chunk)
                os.fdatasync(fd)
                samples.append(time.perf_counter_ns() - start)
        finally:
            os.close(fd)
    return samples


def main() -> None:
    args = _common.arguments(__doc__, records=[400_000], quick=[8_000], repeat=3)
    runs = sorted((run_once(args.records) for _ in range(args.repeat)),
                  key=lambda run: run[1] / run[0])
    seconds, appends, flushes = runs[len(runs) // 2]
    shared = {"records": appends * BATCH, "batch": BATCH, "threads": THREADS,
              "durability": "always", "value_bytes": _common.VALUE_BYTES,
              "repeat": args.repeat, "appends": appends, "fsyncs": flushes.calls}
    _common.emit(BENCH, "always_records_per_s", appends * BATCH / seconds, "records/s",
                 target_min=TARGET_RECORDS_PER_S, **shared)
    _common.emit(BENCH, "always_appends_per_s", appends / seconds, "appends/s", **shared)
    _common.emit(BENCH, "always_fsyncs_per_s", flushes.calls / seconds, "fsyncs/s", **shared)
    _common.emit(BENCH, "always_appends_per_fsync", appends / max(flushes.calls, 1),
                 "appends/fsync", **shared)
    _common.emit(BENCH, "always_fsync_mean_us", flushes.seconds / max(flushes.calls, 1) * 1e6,
                 "µs", **shared)
    rounds = FDATASYNC_ROUNDS // 10 if args.quick else FDATASYNC_ROUNDS
    _common.emit(BENCH, "disk_fdatasync_p50_us",
                 _common.percentile_us(fdatasync_latency_ns(rounds), 50), "µs",
                 records=BATCH, rounds=rounds, write_bytes=WRITE_BYTES)


if __name__ == "__main__":
    main()
