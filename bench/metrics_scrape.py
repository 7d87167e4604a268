"""Figure 12: one scrape of ``/metrics`` (``mqlog.metrics.exposition``) of a wide log.

Workload: a fresh log with ``--topics`` topics (default 100; ``--quick``: 10) of
8 partitions each, durability "none", ``--records`` records in all (default
80,000, 100 per partition; ``--quick``: 800) of 100 random bytes, one
``Log.append`` per partition; ``--groups`` consumer groups (default 50;
``--quick``: 5), group ``i`` committing (``Log.alter_offsets``) every partition
of topics ``2i`` and ``2i + 1`` (modulo the topic count): the end offset for
even-numbered partitions, 1..50 records short of it for odd-numbered ones (so
half the partitions lag and their oldest unconsumed record is read for its
age); and ``--queue-groups`` queue groups (default 5; ``--quick``: 1), queue
group ``j`` over topic ``j``, whose worker received 10 records of each
partition, acknowledged half and left half in flight. The log is closed and
its files are flushed to disk.

Timed, in a freshly opened log (the data is in the page cache):
``exposition(log)`` (every topic, internal ones included, and every group;
no server counters) once cold, then ``--rounds`` more times one after another
(default 200; ``--quick``: 5), wall-clock and CPU time of each. The page is
checked to parse with prometheus_client's parser and to hold every topic,
partition and group.

Figures: scrape ms median and p99 (target <= 100 ms), CPU ms median and p99
(what the scrape costs whatever else runs on the machine), cold ms, and the
page's size in bytes and series.
"""

from __future__ import annotations

import argparse
import time

import _common
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

import mqlog
from mqlog.consumer import TopicPartition
from mqlog.metrics import exposition

BENCH = "metrics_scrape"
PARTITIONS = 8
TARGET_MS = 100
#: Committed offsets of odd partitions trail their end by 1..LAG_SPREAD records.
LAG_SPREAD = 50
#: Records each queue group's worker receives per partition (half acked).
QUEUE_TAKEN = 10


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topics", type=int, help="topics of 8 partitions (default 100; "
                        "--quick: 10)")
    parser.add_argument("--groups", type=int, help="consumer groups (default 50; --quick: 5)")
    parser.add_argument("--queue-groups", type=int, help="queue groups (default 5; --quick: 1)")
    parser.add_argument("--rounds", type=int, help="warm scrapes (default 200; --quick: 5)")


def topic_name(index: int) -> str:
    return f"{_common.TOPIC}-{index:03d}"


def build(path: str, topics: int, groups: int, queue_groups: int, per_partition: int) -> None:
    """Write the topics, commit the groups' offsets, leave the queue groups mid-way."""
    values = _common.payloads(per_partition)
    with mqlog.open(path) as log:
        for t in range(topics):
            log.create_topic(topic_name(t), partitions=PARTITIONS, durability="none")
            for p in range(PARTITIONS):
                log.append(topic_name(t), p, values)
        for g in range(groups):
            offsets = {}
            for t in (2 * g % topics, (2 * g + 1) % topics):
                for p in range(PARTITIONS):
                    short = 0 if p % 2 == 0 else 1 + (g + p) % LAG_SPREAD
                    offsets[TopicPartition(topic_name(t), p)] = max(per_partition - short, 0)
            log.alter_offsets(f"group-{g:02d}", offsets)
        for q in range(queue_groups):
            with log.queue(f"queue-{q:02d}", topic_name(q % topics)) as worker:
                taken = []
                while len(taken) < QUEUE_TAKEN * PARTITIONS:
                    taken += worker.receive(QUEUE_TAKEN * PARTITIONS - len(taken),
                                            timeout=1.0)
                worker.ack_many(taken[::2])


def check(page: bytes, topics: int, groups: int, queue_groups: int) -> int:
    """The page parses and holds every topic, partition and group; returns its series."""
    families = {family.name: family
                for family in text_string_to_metric_families(page.decode())}
    offsets = families["kafka_topic_partition_current_offset"].samples
    assert {s.labels["topic"] for s in offsets} >= {topic_name(t) for t in range(topics)}
    assert len(offsets) >= topics * PARTITIONS
    members = families["kafka_consumergroup_members"].samples
    assert len(members) == groups + queue_groups, len(members)
    return sum(len(family.samples) for family in families.values())


def main() -> None:
    args = _common.arguments(__doc__, records=[80_000], quick=[800], extra=options)
    topics = args.topics or (10 if args.quick else 100)
    groups = args.groups if args.groups is not None else (5 if args.quick else 50)
    queue_groups = (args.queue_groups if args.queue_groups is not None
                    else (1 if args.quick else 5))
    rounds = args.rounds or (5 if args.quick else 200)
    per_partition = args.records // (topics * PARTITIONS)
    if per_partition < QUEUE_TAKEN:
        raise SystemExit(f"--records {args.records} leaves fewer than {QUEUE_TAKEN} records "
                         f"per partition")
    with _common.temporary_log_dir(BENCH) as path:
        _common.progress(f"{BENCH}: {topics} topics x {PARTITIONS} partitions, {groups} "
                         f"groups, {queue_groups} queue groups")
        build(path, topics, groups, queue_groups, per_partition)
        _common.sync_files(path)
        with mqlog.open(path) as log:
            start = time.perf_counter()
            page = exposition(log)
            cold_ms = (time.perf_counter() - start) * 1000
            series = check(page, topics, groups, queue_groups)
            wall_ms, cpu_ms = [], []
            for _ in range(rounds):
                start, start_cpu = time.perf_counter(), time.process_time()
                page = exposition(log)
                cpu_ms.append((time.process_time() - start_cpu) * 1000)
                wall_ms.append((time.perf_counter() - start) * 1000)
            check(page, topics, groups, queue_groups)
    shared = {"records": per_partition * topics * PARTITIONS, "topics": topics,
              "partitions": topics * PARTITIONS, "groups": groups,
              "queue_groups": queue_groups, "rounds": rounds}
    _common.emit(BENCH, "scrape_p50_ms", _common.median(wall_ms), "ms", target_max=TARGET_MS,
                 **shared)
    _common.emit(BENCH, "scrape_p99_ms", float(np.percentile(wall_ms, 99)), "ms",
                 target_max=TARGET_MS, **shared)
    _common.emit(BENCH, "scrape_cpu_p50_ms", _common.median(cpu_ms), "ms", **shared)
    _common.emit(BENCH, "scrape_cpu_p99_ms", float(np.percentile(cpu_ms, 99)), "ms", **shared)
    _common.emit(BENCH, "scrape_cold_ms", cold_ms, "ms", **shared)
    _common.emit(BENCH, "page_bytes", len(page), "bytes", **shared)
    _common.emit(BENCH, "page_series", series, "series", **shared)


if __name__ == "__main__":
    main()
