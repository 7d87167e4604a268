"""Figure 2: sequential read throughput, with Log.read and with Log.iter.

Workload: ``--records`` records (default 3,000,000) of 100 random bytes are
written to one partition (durability="none") with ``Log.append``, 10,000
records per call, the log is closed and its files are flushed to disk (so that
the kernel's writeback does not run during the reads). Then, per run:

* read: open the log, read the partition from offset 0 to its end with
  ``Log.read(max_records=10_000)``, each call starting after the last record
  returned; close.
* iter: open the log, count the records of ``Log.iter`` from 0 to the end; close.
* columns: as read, with ``Log.read_columns(max_records=10_000)`` (no Python
  object per record), also summing every record's value length from the
  columns, so that each record is looked at.

Timed: the reading loop only. Each pass opens the log afresh, so each pays the
batch checksum verification once (a process verifies a batch on first read);
the data is in the page cache (it was just written). The median of ``--repeat``
runs (default 3) is reported.

Figures: read records/s (target >= 3,000,000), iter records/s (target >= 1,000,000),
columns records/s (the columnar form of read: no target of its own).
"""

from __future__ import annotations

from collections.abc import Callable

import _common

import mqlog

BENCH = "read_sequential"
BATCH = 10_000
READ_MAX_RECORDS = 10_000
TARGET_READ_PER_S = 3_000_000
TARGET_ITER_PER_S = 1_000_000


def write_log(path: str, records: int) -> None:
    values = _common.payloads(BATCH)
    with mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        for start in range(0, records, BATCH):
            log.append(_common.TOPIC, 0, values[: min(BATCH, records - start)])


def read_all(log: mqlog.Log) -> int:
    """Read the partition with Log.read; return the records seen."""
    end = log.end_offset(_common.TOPIC, 0)
    offset = seen = 0
    while offset < end:
        batch = log.read(_common.TOPIC, 0, offset, max_records=READ_MAX_RECORDS)
        seen += len(batch)
        offset = batch[-1].offset + 1
    return seen


def columns_all(log: mqlog.Log) -> int:
    """Read the partition with Log.read_columns, summing the value lengths; return
    the records seen."""
    end = log.end_offset(_common.TOPIC, 0)
    offset = seen = value_bytes = 0
    while offset < end:
        columns = log.read_columns(_common.TOPIC, 0, offset, max_records=READ_MAX_RECORDS)
        seen += len(columns)
        value_bytes += int((columns.value_ends - columns.value_starts).sum())
        offset = columns.next_offset
    assert value_bytes == seen * _common.VALUE_BYTES
    return seen


def iter_all(log: mqlog.Log) -> int:
    """Walk the partition with Log.iter; return the records seen."""
    seen = 0
    for _record in log.iter(_common.TOPIC, 0):
        seen += 1
    return seen


def timed_pass(path: str, records: int, walk: Callable[[mqlog.Log], int]) -> float:
    """Seconds ``walk`` takes over a freshly opened log (the open is not timed)."""
    with mqlog.open(path) as log:
        log.end_offset(_common.TOPIC, 0)  # open and recover the partition first
        with _common.stopwatch() as elapsed:
            seen = walk(log)
    assert seen == records, f"{walk.__name__} saw {seen} of {records} records"
    return elapsed[0]


def main() -> None:
    args = _common.arguments(__doc__, records=[3_000_000], quick=[20_000], repeat=3)
    read_s, iter_s, columns_s = [], [], []
    with _common.temporary_log_dir(BENCH) as path:
        write_log(path, args.records)
        _common.sync_files(path)
        for _ in range(args.repeat):
            read_s.append(timed_pass(path, args.records, read_all))
            iter_s.append(timed_pass(path, args.records, iter_all))
            columns_s.append(timed_pass(path, args.records, columns_all))
    shared = {"records": args.records, "batch": BATCH, "durability": "none",
              "value_bytes": _common.VALUE_BYTES, "repeat": args.repeat}
    _common.emit(BENCH, "read_records_per_s", args.records / _common.median(read_s), "records/s",
                 target_min=TARGET_READ_PER_S, max_records=READ_MAX_RECORDS, **shared)
    _common.emit(BENCH, "iter_records_per_s", args.records / _common.median(iter_s), "records/s",
                 target_min=TARGET_ITER_PER_S, **shared)
    _common.emit(BENCH, "read_columns_records_per_s",
                 args.records / _common.median(columns_s), "records/s",
                 max_records=READ_MAX_RECORDS, **shared)


if __name__ == "__main__":
    main()
