"""Statistics of a topic's records, computed with numpy over columnar reads.

Reads every partition with ``Log.read_columns`` (no Python object per record)
and prints, per partition and in all, as JSON: the record count, the offsets
and timestamps covered, the value sizes (total, mean, p50, p99, largest) and
the busiest minute (most records appended in one minute)::

    python examples/value_stats.py mqlog-data orders
    python examples/value_stats.py mqlog-data orders --since-offset 1000000

A few million records take seconds, where building a ``Record`` for each
would take about a microsecond a record.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

import numpy as np

import mqlog

#: Records per columnar read.
CHUNK = 100_000


def partition_columns(log: mqlog.Log, topic: str, partition: int,
                      since: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, timestamps, value sizes) of a partition from ``since`` on."""
    start = log.start_offset(topic, partition)
    offset = start if since is None else min(max(since, start), log.end_offset(topic, partition))
    end = log.end_offset(topic, partition)
    offsets, timestamps, sizes = [], [], []
    while offset < end:
        columns = log.read_columns(topic, partition, offset, max_records=CHUNK)
        if not len(columns):
            break
        offsets.append(columns.offsets)
        timestamps.append(columns.timestamps)
        sizes.append(columns.value_ends - columns.value_starts)
        offset = columns.next_offset
    return _joined(offsets), _joined(timestamps), _joined(sizes)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def summary(offsets: np.ndarray, timestamps: np.ndarray, sizes: np.ndarray) -> dict:
    """The statistics of one set of records (see the module docstring)."""
    if not len(offsets):
        return {"records": 0}
    minutes, per_minute = np.unique(timestamps // 60_000, return_counts=True)
    busiest = int(np.argmax(per_minute))
    return {
        "records": int(len(offsets)),
        "offsets": [int(offsets.min()), int(offsets.max())],
        "timestamps_ms": [int(timestamps.min()), int(timestamps.max())],
        "value_bytes": int(sizes.sum()),
        "value_mean": round(float(sizes.mean()), 1),
        "value_p50": float(np.percentile(sizes, 50)),
        "value_p99": float(np.percentile(sizes, 99)),
        "value_max": int(sizes.max()),
        "busiest_minute_ms": int(minutes[busiest]) * 60_000,
        "busiest_minute_records": int(per_minute[busiest]),
    }


def topic_stats(log: mqlog.Log, topic: str, since: int | None) -> dict:
    """Per partition and for the whole topic."""
    parts = {p.partition: partition_columns(log, topic, p.partition, since)
             for p in log.describe_topic(topic).partitions}
    everything = [np.concatenate([columns[i] for columns in parts.values()]) for i in range(3)]
    result = {"partitions": {str(number): summary(*columns)
                             for number, columns in parts.items()}}
    result["topic"] = summary(*everything)
    result["topic"].pop("offsets", None)  # offsets of different partitions do not compare
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the log directory")
    parser.add_argument("topic", help="the topic to look at")
    parser.add_argument("--since-offset", type=int,
                        help="only records at or after this offset of each partition")
    args = parser.parse_args(argv)
    with mqlog.open(args.log_dir, create=False) as log:
        print(json.dumps(topic_stats(log, args.topic, args.since_offset), indent=2))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head: stop quietly, as cat does
    sys.exit(main())
