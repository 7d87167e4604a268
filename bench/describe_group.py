"""Figure 10: ``Log.describe_group`` of a group with offsets on 1,000 partitions.

Workload: a fresh log with ``--topics`` topics (default 10; ``--quick``: 2) of
``--partitions`` partitions each (default 100; ``--quick``: 50), durability
"none"; ``--records`` records in all (default 100,000; ``--quick``: 10,000) of
100 random bytes, spread evenly, one ``Log.append`` per partition. A consumer of
the group (``assign`` of every partition, no member process) commits an offset
for every partition in one ``commit``: the end offset for even-numbered
partitions and the end offset minus 1..50 for odd-numbered ones, so half the
partitions lag (``describe_group`` then also reads their oldest unconsumed
record for its age). The log is closed and its files are flushed to disk.

Timed, in a freshly opened log (the data is in the page cache): the first
``Log.describe_group`` (cold: it opens every partition and reads the committed
offsets), then ``--calls`` more calls (default 50; ``--quick``: 5) one by one
(warm). Every answer is checked (partitions, committed offsets, total lag).

Figures: warm call ms (median; target <= 20 ms), cold first call ms.
"""

from __future__ import annotations

import argparse
import time

import _common

import mqlog
from mqlog.consumer import GroupDescription, TopicPartition

BENCH = "describe_group"
GROUP = "described"
TARGET_WARM_MS = 20
#: Committed offsets of odd partitions trail their end by 1..LAG_SPREAD records.
LAG_SPREAD = 50


def options(parser: argparse.ArgumentParser) -> None:
    """The group's shape and the number of warm calls."""
    parser.add_argument("--topics", type=int, help="topics (default 10; --quick: 2)")
    parser.add_argument("--partitions", type=int,
                        help="partitions per topic (default 100; --quick: 50)")
    parser.add_argument("--calls", type=int, help="warm calls (default 50; --quick: 5)")


def committed_offset(index: int, end: int) -> int:
    """The offset committed for the ``index``-th partition whose end offset is ``end``."""
    return end if index % 2 == 0 else max(end - 1 - (index // 2) % LAG_SPREAD, 0)


def write_group(path: str, topics: int, partitions: int, per_partition: int
                ) -> dict[TopicPartition, int]:
    """Write the topics and commit the group's offsets; return them."""
    values = _common.payloads(per_partition)
    tps = [TopicPartition(f"{_common.TOPIC}-{t}", p)
           for t in range(topics) for p in range(partitions)]
    with mqlog.open(path) as log:
        for topic in range(topics):
            log.create_topic(f"{_common.TOPIC}-{topic}", partitions=partitions,
                             durability="none")
        for tp in tps:
            log.append(tp.topic, tp.partition, values)
        offsets = {tp: committed_offset(i, per_partition) for i, tp in enumerate(tps)}
        consumer = log.consumer(GROUP)
        consumer.assign(tps)
        consumer.commit(offsets)
        consumer.close()
    return offsets


def check(described: GroupDescription, offsets: dict[TopicPartition, int], end: int) -> None:
    """The description lists every partition with its committed offset and lag."""
    seen = {TopicPartition(p.topic, p.partition): (p.committed_offset, p.end_offset, p.lag)
            for p in described.partitions}
    assert seen == {tp: (offset, end, end - offset) for tp, offset in offsets.items()}
    assert described.state == "Empty" and described.members == []


def timed_calls(path: str, calls: int, offsets: dict[TopicPartition, int], end: int
                ) -> tuple[float, list[float]]:
    """ms of the first (cold) call and of each warm call, in a freshly opened log."""
    warm = []
    with mqlog.open(path) as log:
        start = time.perf_counter()
        described = log.describe_group(GROUP)
        cold = (time.perf_counter() - start) * 1000
        check(described, offsets, end)
        for _ in range(calls):
            start = time.perf_counter()
            described = log.describe_group(GROUP)
            warm.append((time.perf_counter() - start) * 1000)
        check(described, offsets, end)
    return cold, warm


def main() -> None:
    args = _common.arguments(__doc__, records=[100_000], quick=[10_000], extra=options)
    topics = args.topics or (2 if args.quick else 10)
    partitions = args.partitions or (50 if args.quick else 100)
    calls = args.calls or (5 if args.quick else 50)
    per_partition = args.records // (topics * partitions)
    if per_partition < 1:
        raise SystemExit(f"--records {args.records} leaves no record per partition")
    with _common.temporary_log_dir(BENCH) as path:
        _common.progress(f"{BENCH}: writing {topics} x {partitions} partitions")
        offsets = write_group(path, topics, partitions, per_partition)
        _common.sync_files(path)
        cold, warm = timed_calls(path, calls, offsets, per_partition)
    records = per_partition * len(offsets)
    shared = {"records": records, "topics": topics, "partitions": len(offsets),
              "lagging_partitions": sum(o < per_partition for o in offsets.values()),
              "total_lag": sum(per_partition - o for o in offsets.values()),
              "value_bytes": _common.VALUE_BYTES}
    _common.emit(BENCH, "warm_ms", _common.median(warm), "ms", target_max=TARGET_WARM_MS,
                 calls=calls, **shared)
    _common.emit(BENCH, "cold_ms", cold, "ms", calls=1, **shared)


if __name__ == "__main__":
    main()
