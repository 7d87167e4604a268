"""Figure 1: batched append throughput.

Workload: a log with one topic of one partition, durability="none", default
segment size (128 MiB, so the run rolls segments). ``--records`` records
(default 3,000,000) of 100 random bytes are appended with ``Log.append``,
10,000 records per call (one batch per call). The 10,000 values are built once
before timing and passed again to every call. Timed: the append calls only; the
partition is opened (and recovered) before the clock starts. Each run uses a
fresh log directory; the median of ``--repeat`` runs (default 3) is reported.

For scale, the same bytes are also written without mqlog: one ``os.pwrite``
per batch (48-byte header + 10,000 x (20-byte table row + 100-byte value)) to
a sparse file preallocated with ``ftruncate``, as the log store does. That
records/s figure is the ceiling the kernel's page-cache copy leaves on this
machine; the gap to it is the Python-side cost of ``Log.append``.

Figures: records/s (target >= 3,000,000), payload MB/s (10^6 bytes of values
per second) and the raw pwrite ceiling in records/s.
"""

from __future__ import annotations

import os

import _common

import mqlog

BENCH = "append_batch"
BATCH = 10_000
TARGET_RECORDS_PER_S = 3_000_000
#: Bytes of one full batch on disk: header, table rows and values.
BATCH_BYTES = _common.batch_bytes(BATCH)


def run_once(records: int) -> float:
    """Append ``records`` records in calls of BATCH; return the seconds taken."""
    values = _common.payloads(BATCH)
    calls, rest = divmod(records, BATCH)
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        log.end_offset(_common.TOPIC, 0)  # open the partition outside the timing
        with _common.stopwatch() as elapsed:
            for _ in range(calls):
                log.append(_common.TOPIC, 0, values)
            if rest:
                log.append(_common.TOPIC, 0, values[:rest])
        assert log.end_offset(_common.TOPIC, 0) == records
    return elapsed[0]


def raw_write_once(records: int) -> float:
    """Write the bytes of ``records`` records, one pwrite per batch, to a sparse
    file; return the seconds taken."""
    chunk = os.urandom(BATCH_BYTES)
    calls = -(-records // BATCH)
    with _common.temporary_log_dir(f"{BENCH}-raw") as path:
        fd = os.open(os.path.join(path, "raw.log"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, calls * BATCH_BYTES)
            with _common.stopwatch() as elapsed:
                for call in range(calls):
                    os.pwrite(fd, chunk, call * BATCH_BYTES)
        finally:
            os.close(fd)
    return elapsed[0]


def main() -> None:
    args = _common.arguments(__doc__, records=[3_000_000], quick=[20_000], repeat=3)
    seconds = _common.median([run_once(args.records) for _ in range(args.repeat)])
    shared = {"records": args.records, "batch": BATCH, "durability": "none",
              "value_bytes": _common.VALUE_BYTES, "repeat": args.repeat}
    _common.emit(BENCH, "append_records_per_s", args.records / seconds, "records/s",
                 target_min=TARGET_RECORDS_PER_S, **shared)
    _common.emit(BENCH, "append_payload_mb_per_s",
                 args.records * _common.VALUE_BYTES / seconds / 1e6, "MB/s", **shared)
    raw_seconds = _common.median([raw_write_once(args.records) for _ in range(args.repeat)])
    _common.emit(BENCH, "raw_pwrite_records_per_s", args.records / raw_seconds, "records/s",
                 **shared)


if __name__ == "__main__":
    main()
