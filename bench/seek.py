"""Figure 5: point lookups (offset -> record, time -> offset) and bytes on disk.

Workload, for each size in ``--records`` (default 100,000 and 10,000,000): a
fresh log with one partition (durability="none", default 128 MiB segments and
4 KiB index interval) gets that many records of 100 random bytes, appended in
calls of ``--batch`` records (default 1,000: one batch per call). A controlled
clock gives batch ``i`` the timestamp ``T0 + i`` ms, so timestamps are distinct
per batch and increase. The log is closed (trimming preallocated space) and
its files are measured and flushed to disk (so that the kernel's writeback
does not run during the lookups); it is then reopened for the lookups.

* read: ``Log.read(offset, max_records=1)`` at uniformly random offsets.
* offset_for_time: ``Log.offset_for_time`` at uniformly random batch
  timestamps; every answer is checked against the known first offset.

First every batch is read once, at its first offset, in order: the first
read of a batch in a process maps it and verifies its checksum, and these
first-touch latencies are reported on their own. Then ``--lookups`` (default
20,000) random lookups of each kind are timed one by one with
``perf_counter_ns``: the steady state of a long-running reader.

Figures per size: p50 and p99 latency of each kind in µs (target <= 50 µs,
flat from 10^5 to 10^7 records), p50 of the first-touch reads, bytes on disk
per record (allocated blocks of every file of the log / records) and its
overhead over the 100-byte value.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import _common

import mqlog

BENCH = "seek"
TARGET_US = 50
#: Timestamp of the first batch (any fixed ms value works; this is 2024-01-01).
T0_MS = 1_704_067_200_000


class BatchClock:
    """The log's clock: the writer sets the time before each append."""

    def __init__(self) -> None:
        self.now_ms = T0_MS

    def __call__(self) -> int:
        return self.now_ms


def write_log(path: str, records: int, batch: int) -> None:
    clock = BatchClock()
    values = _common.payloads(batch)
    with mqlog.open(path, clock=clock) as log:
        log.create_topic(_common.TOPIC, durability="none")
        for number, start in enumerate(range(0, records, batch)):
            clock.now_ms = T0_MS + number
            log.append(_common.TOPIC, 0, values[: min(batch, records - start)])


def latencies_ns(lookup: Callable[[int], int], expected: Callable[[int], int],
                 keys: list[int]) -> list[int]:
    """Time ``lookup`` at each key, one call at a time; every answer is checked."""
    samples = []
    for key in keys:
        start = time.perf_counter_ns()
        found = lookup(key)
        samples.append(time.perf_counter_ns() - start)
        if found != expected(key):
            raise AssertionError(f"lookup of {key} found {found}, expected {expected(key)}")
    return samples


def measure(records: int, batch: int, lookups: int) -> None:
    """Build one log of ``records`` records and print its figures."""
    rng = random.Random(records)
    with _common.temporary_log_dir(f"{BENCH}-{records}") as path:
        _common.progress(f"{BENCH}: writing {records} records")
        write_log(path, records, batch)
        _apparent, allocated = _common.disk_usage(path)
        _common.sync_files(path)
        with mqlog.open(path) as log:
            def read_one(offset: int) -> int:
                return log.read(_common.TOPIC, 0, offset, max_records=1)[0].offset

            def find_time(number: int) -> int:
                return log.offset_for_time(_common.TOPIC, 0, T0_MS + number)

            unchanged = lambda offset: offset  # noqa: E731 - read_one's expected answer
            first_touch = latencies_ns(read_one, unchanged, list(range(0, records, batch)))
            reads = latencies_ns(read_one, unchanged,
                                 [rng.randrange(records) for _ in range(lookups)])
            times = latencies_ns(find_time, lambda number: number * batch,
                                 [rng.randrange(-(-records // batch)) for _ in range(lookups)])
    shared = {"records": records, "batch": batch, "durability": "none",
              "value_bytes": _common.VALUE_BYTES, "lookups": lookups}
    for kind, samples in (("read", reads), ("offset_for_time", times)):
        for percent in (50, 99):
            _common.emit(BENCH, f"{kind}_p{percent}_us", _common.percentile_us(samples, percent),
                         "µs", target_max=TARGET_US, **shared)
    _common.emit(BENCH, "read_first_touch_p50_us", _common.percentile_us(first_touch, 50), "µs",
                 **{**shared, "lookups": len(first_touch)})
    per_record = allocated / records
    _common.emit(BENCH, "disk_bytes_per_record", per_record, "B", size_on_disk=allocated,
                 **shared)
    _common.emit(BENCH, "overhead_bytes_per_record", per_record - _common.VALUE_BYTES, "B",
                 size_on_disk=allocated, **shared)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=1_000, help="records per append call")
    parser.add_argument("--lookups", type=int,
                        help="timed lookups of each kind (default: 20000; 500 with --quick)")


def main() -> None:
    args = _common.arguments(__doc__, records=[100_000, 10_000_000], quick=[2_000, 20_000],
                             extra=options)
    lookups = args.lookups or (500 if args.quick else 20_000)
    for records in args.records:
        measure(records, args.batch, lookups)


if __name__ == "__main__":
    main()
