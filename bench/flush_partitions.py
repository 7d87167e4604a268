"""Making several partitions durable at once: one syncfs against one fdatasync each.

Workload: one topic of ``--partitions`` partitions (default 8) with
durability="always". Each round appends one record of 100 bytes to every
partition with ``flush=False`` and then makes all of them durable, the way
``mqlog serve`` answers produce requests that wait on several partitions:

* ``threads``: ``Engine.make_durable`` for each partition, all at once in a
  pool of as many threads (how the server flushed before flush cycles);
* ``one_by_one``: ``Engine.make_durable`` for each partition in turn;
* ``together``: one ``Engine.make_durable_together`` call for all of them
  (one syncfs where Linux offers it).

Timed: ``--records`` rounds of each, after 20 rounds of warm-up, on a fresh
log directory each; the median of ``--repeat`` runs is reported.

Figures: rounds/s and the mean time per round (µs) of each way, and the 50th
and 99th percentiles of the flush alone (µs; the appends not counted) over
all runs' rounds: the tail a producer waiting on a flush sees.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import _common
import numpy as np

import mqlog

BENCH = "flush_partitions"
WARMUP_ROUNDS = 20
WAYS = ("threads", "one_by_one", "together")


def run_once(way: str, rounds: int, partitions: int, flushes: list[float]) -> float:
    """Seconds for ``rounds`` rounds of appending to every partition and making
    them durable ``way``; each round's flush time (s) goes to ``flushes``."""
    value = bytes(_common.VALUE_BYTES)
    with _common.temporary_log_dir(BENCH) as path, mqlog.open(path) as log, \
            ThreadPoolExecutor(partitions) as pool:
        log.create_topic(_common.TOPIC, partitions, durability="always")
        engine = log.engine
        numbers = range(partitions)

        def round_() -> float:
            ends = [engine.append(_common.TOPIC, n, [value], flush=False) + 1 for n in numbers]
            flush_started = time.perf_counter()
            if way == "together":
                failures = engine.make_durable_together(
                    [(_common.TOPIC, n, end) for n, end in zip(numbers, ends, strict=True)])
                assert not failures, failures
            elif way == "threads":
                list(pool.map(lambda n: engine.make_durable(_common.TOPIC, n, ends[n]), numbers))
            else:
                for n in numbers:
                    engine.make_durable(_common.TOPIC, n, ends[n])
            return time.perf_counter() - flush_started

        for _ in range(WARMUP_ROUNDS):
            round_()
        started = time.perf_counter()
        for _ in range(rounds):
            flushes.append(round_())
        return time.perf_counter() - started


def main() -> None:
    args = _common.arguments(
        __doc__, records=[2_000], quick=[100], repeat=3,
        extra=lambda parser: parser.add_argument(
            "--partitions", type=int, default=8, help="partitions flushed per round (8)"))
    rounds, partitions = args.records, args.partitions
    for way in WAYS:
        runs: list[float] = []
        flushes: list[float] = []
        for _ in range(args.repeat):
            runs.append(run_once(way, rounds, partitions, flushes))
            _common.progress(f"{way}: {rounds / runs[-1]:,.0f} rounds/s")
        seconds = _common.median(runs)
        _common.emit(BENCH, f"{way}_rounds_per_s", rounds / seconds, "rounds/s",
                     records=rounds * partitions, partitions=partitions)
        _common.emit(BENCH, f"{way}_round_us", seconds / rounds * 1e6, "µs",
                     records=rounds * partitions, partitions=partitions)
        for percentile in (50, 99):
            _common.emit(BENCH, f"{way}_flush_p{percentile}_us",
                         float(np.percentile(flushes, percentile)) * 1e6, "µs",
                         records=rounds * partitions, partitions=partitions)


if __name__ == "__main__":
    main()
