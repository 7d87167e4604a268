"""Figure 7: Consumer throughput of one group member, iterating and polling.

Workload: ``--records`` records (default 1,000,000) of 100 random bytes are
written to one partition (durability="none") with ``Log.append``, 10,000
records per call; the log is closed and its files are flushed to disk. Then,
per run, in a freshly opened log:

* iterate: a Consumer joins a new group (``subscribe``, the only member, so it
  owns the partition; ``auto_offset_reset="earliest"``, default settings:
  ``max_poll_records=500``, no auto-commit) and counts ``for msg in consumer``
  until it has seen every record;
* poll: the same with ``poll(max_records=10_000)`` in a loop.
* poll_columns: the same with ``poll_columns(max_records=10_000)`` (numpy
  columns, no object per record), summing the value lengths of each poll.

Timed: the consuming loop only (joining the group and opening the partition
happen before, leaving the group after). Each pass verifies each batch's
checksum once (a new process-level Log); the data is in the page cache. The
median of ``--repeat`` runs (default 3) is reported.

Figures: iteration records/s (target >= 1,000,000), poll records/s (target >=
3,000,000), poll_columns records/s (the columnar form: no target of its own).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import _common

import mqlog
from mqlog.consumer import Consumer, TopicPartition

BENCH = "consumer_poll"
BATCH = 10_000
POLL_MAX_RECORDS = 10_000
TARGET_ITER_PER_S = 1_000_000
TARGET_POLL_PER_S = 3_000_000
_groups = itertools.count()


def write_log(path: str, records: int) -> None:
    values = _common.payloads(BATCH)
    with mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        for start in range(0, records, BATCH):
            log.append(_common.TOPIC, 0, values[: min(BATCH, records - start)])


def iterate(consumer: Consumer, records: int) -> int:
    """``for msg in consumer`` until ``records`` were seen; return the count."""
    seen = 0
    for _message in consumer:
        seen += 1
        if seen == records:
            break
    return seen


def poll(consumer: Consumer, records: int) -> int:
    """``poll(max_records=POLL_MAX_RECORDS)`` until ``records`` were seen."""
    seen = 0
    while seen < records:
        seen += len(consumer.poll(max_records=POLL_MAX_RECORDS))
    return seen


def poll_columns(consumer: Consumer, records: int) -> int:
    """``poll_columns(max_records=POLL_MAX_RECORDS)`` until ``records`` were seen,
    summing the value lengths from the columns."""
    seen = value_bytes = 0
    while seen < records:
        for columns in consumer.poll_columns(max_records=POLL_MAX_RECORDS):
            seen += len(columns)
            value_bytes += int((columns.value_ends - columns.value_starts).sum())
    assert value_bytes == seen * _common.VALUE_BYTES
    return seen


def timed_pass(path: str, records: int, consume: Callable[[Consumer, int], int]) -> float:
    """Seconds ``consume`` takes for a new group's only member (joining not timed)."""
    with mqlog.open(path) as log:
        consumer = log.consumer(f"{BENCH}-{next(_groups)}", auto_offset_reset="earliest")
        consumer.subscribe([_common.TOPIC])
        tp = TopicPartition(_common.TOPIC, 0)
        assert consumer.assignment() == {tp}
        assert consumer.position(tp) == 0  # also opens the partition
        with _common.stopwatch() as elapsed:
            seen = consume(consumer, records)
        consumer.close()
    assert seen == records, f"{consume.__name__} saw {seen} of {records} records"
    return elapsed[0]


def main() -> None:
    args = _common.arguments(__doc__, records=[1_000_000], quick=[20_000], repeat=3)
    iter_s, poll_s, columns_s = [], [], []
    with _common.temporary_log_dir(BENCH) as path:
        write_log(path, args.records)
        _common.sync_files(path)
        for _ in range(args.repeat):
            iter_s.append(timed_pass(path, args.records, iterate))
            poll_s.append(timed_pass(path, args.records, poll))
            columns_s.append(timed_pass(path, args.records, poll_columns))
    shared = {"records": args.records, "durability": "none",
              "value_bytes": _common.VALUE_BYTES, "repeat": args.repeat}
    _common.emit(BENCH, "iter_records_per_s", args.records / _common.median(iter_s),
                 "records/s", target_min=TARGET_ITER_PER_S, max_poll_records=500, **shared)
    _common.emit(BENCH, "poll_records_per_s", args.records / _common.median(poll_s),
                 "records/s", target_min=TARGET_POLL_PER_S, max_records=POLL_MAX_RECORDS,
                 **shared)
    _common.emit(BENCH, "poll_columns_records_per_s", args.records / _common.median(columns_s),
                 "records/s", max_records=POLL_MAX_RECORDS, **shared)


if __name__ == "__main__":
    main()
