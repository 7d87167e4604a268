"""Figure 11: queue groups -- receive + ack per message, and redelivery latency.

Workload: a log with durability="none"; 100-byte values appended before timing
(10,000 per append).

* one_worker: one topic of one partition holding ``--records`` records (default
  1,000,000); one QueueConsumer calls ``receive(max_messages=500)`` and acks
  every message one by one (``message.ack()``) until all are done. Timed from
  the first receive to the last ack.
* four_processes: one topic of four partitions holding ``--records`` records;
  four worker processes (spawned, each its own Log) share all four partitions
  and receive + ack per message until the topic is drained. Timed from the
  moment all four are ready to the last ack (the parent waits for them).
* redelivery: one worker receives a message and nacks it with ``delay_s=0``;
  the time from the nack until the same message is received again (the next
  receive) is sampled for ``--samples`` messages (default 2,000), each then
  acked. Reported: p50, p99 (target <= 2 ms).

Figures: one_worker messages/s (target >= 200,000), four_processes messages/s
(target >= 300,000), redelivery p50/p99 in ms.
"""

from __future__ import annotations

import multiprocessing
import time

import _common

import mqlog

BENCH = "queue_throughput"
TARGET_ONE_PER_S = 200_000
TARGET_FOUR_PER_S = 300_000
TARGET_REDELIVERY_P99_MS = 2.0
RECEIVE = 500


def fill(log: mqlog.Log, partitions: int, records: int) -> None:
    log.create_topic(_common.TOPIC, partitions=partitions, durability="none")
    values = _common.payloads(10_000)
    per_partition = records // partitions
    for partition in range(partitions):
        done = 0
        while done < per_partition:
            chunk = values[: min(len(values), per_partition - done)]
            log.append(_common.TOPIC, partition, chunk)
            done += len(chunk)


def drain(log: mqlog.Log) -> int:
    """Receive and ack one by one until nothing is left; return how many."""
    handled = 0
    with log.queue("bench", [_common.TOPIC]) as queue:
        while True:
            messages = queue.receive(RECEIVE, timeout=0)
            if not messages:
                return handled
            for message in messages:
                message.ack()
            handled += len(messages)


def one_worker(records: int) -> float:
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        fill(log, 1, records)
        with _common.stopwatch() as elapsed:
            handled = drain(log)
        assert handled == records, (handled, records)
    return records / elapsed[0]


def _worker(path: str, ready, start, results) -> None:
    with mqlog.open(path) as log:
        for partition in range(4):
            log.end_offset(_common.TOPIC, partition)  # open partitions before the clock
        ready.release()
        start.wait()
        results.put(drain(log))


def four_processes(records: int) -> float:
    context = multiprocessing.get_context("spawn")
    with _common.temporary_log_dir(BENCH) as path:
        with mqlog.open(path) as log:
            fill(log, 4, records)
        ready, start, results = context.Semaphore(0), context.Event(), context.Queue()
        workers = [context.Process(target=_worker, args=(path, ready, start, results))
                   for _ in range(4)]
        for worker in workers:
            worker.start()
        for _ in workers:
            ready.acquire()
        began = time.perf_counter()
        start.set()
        handled = sum(results.get(timeout=600) for _ in workers)
        elapsed = time.perf_counter() - began
        for worker in workers:
            worker.join()
        expected = (records // 4) * 4
        assert handled == expected, (handled, expected)
    return expected / elapsed


def redelivery(samples: int) -> list[int]:
    """Per message: receive it, nack it with no delay, time until it is received
    again (it is the lowest unfinished offset, so it comes first), ack it."""
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log:
        log.create_topic(_common.TOPIC, durability="none")
        log.append(_common.TOPIC, 0, _common.payloads(samples))
        waits = []
        with log.queue("bench", [_common.TOPIC]) as queue:
            for _ in range(samples):
                [message] = queue.receive(1, timeout=1)
                began = time.perf_counter_ns()
                message.nack(delay_s=0)
                [again] = queue.receive(1, timeout=1)
                waits.append(time.perf_counter_ns() - began)
                assert again.offset == message.offset and again.delivery_count == 2
                again.ack()
        return waits


def main() -> None:
    args = _common.arguments(
        __doc__, records=[1_000_000], quick=[40_000],
        extra=lambda parser: parser.add_argument("--samples", type=int, default=None))
    samples = args.samples or (200 if args.quick else 2_000)
    shared = {"durability": "none", "value_bytes": _common.VALUE_BYTES, "receive": RECEIVE}
    _common.emit(BENCH, "one_worker_messages_per_s", one_worker(args.records), "messages/s",
                 records=args.records, target_min=TARGET_ONE_PER_S, **shared)
    _common.emit(BENCH, "four_processes_messages_per_s", four_processes(args.records),
                 "messages/s", records=args.records, target_min=TARGET_FOUR_PER_S,
                 workers=4, partitions=4, **shared)
    waits = redelivery(samples)
    _common.emit(BENCH, "redelivery_p50_ms", _common.percentile_us(waits, 50) / 1000, "ms",
                 records=samples, **shared)
    _common.emit(BENCH, "redelivery_p99_ms", _common.percentile_us(waits, 99) / 1000, "ms",
                 records=samples, target_max=TARGET_REDELIVERY_P99_MS, **shared)


if __name__ == "__main__":
    main()
