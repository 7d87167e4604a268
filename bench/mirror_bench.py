"""``mqlog mirror`` throughput: records/s from an embedded log to ``mqlog serve``,
and to another log directory as the baseline; JSON lines on stdout.

Workload: a log directory with one topic of 3 partitions holding ``--records``
records in all (default 300,000): 100-byte values, 8-byte keys, a header on
every fourth record, their own timestamps. Each run mirrors the whole topic
with :class:`mqlog.mirror.Mirror` (what ``mqlog mirror SRC DST`` runs, without
the progress bar) into a fresh destination -- a log directory, or ``mqlog
serve`` over a fresh directory (started by kafka_bench.brokers, topics created
by the mirror with their default durability) -- then verifies it (counts and
checksums of both sides; the verification's time is reported apart).
``--repeat`` runs per destination (default 3); the median is reported.

Figures: ``records_per_s`` (copy, wall clock), ``cpu_us_per_record`` (this
process: the mirror, librdkafka's threads included; the server's own CPU is
not counted) and ``verify_records_per_s``. Every line carries the 1-minute load
average: this machine is shared, so the rates are noisy; CPU per record is
steadier.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from kafka_bench import brokers

import mqlog
from mqlog import Record
from mqlog.mirror import Mirror

BENCH = "mirror"
TOPIC = "events"
PARTITIONS = 3
CHUNK = 10_000


def build_source(path: str, records: int) -> None:
    with mqlog.open(path) as log:
        log.create_topic(TOPIC, PARTITIONS)
        per_partition = records // PARTITIONS
        for partition in range(PARTITIONS):
            for first in range(0, per_partition, CHUNK):
                log.append(TOPIC, partition, [
                    Record(os.urandom(100), key=b"%08d" % index,
                           headers={"n": b"%d" % index} if index % 4 == 0 else None,
                           timestamp=1_700_000_000_000 + index)
                    for index in range(first, min(first + CHUNK, per_partition))])


def one_run(source_path: str, destination: str) -> dict[str, float]:
    with mqlog.open(source_path, apply_retention=False) as source, \
            mqlog.open(destination) as target:
        job = Mirror(source, target, source_name=source_path)
        job.start()
        wall, cpu = time.perf_counter(), time.process_time()
        copied = job.copy()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        checked = time.perf_counter()
        checks = job.verify()
        checked = time.perf_counter() - checked
    if not all(check.ok for check in checks):
        raise RuntimeError(f"the mirror differs: {checks}")
    return {"records": copied, "records_per_s": copied / wall,
            "cpu_us_per_record": cpu / copied * 1e6,
            "verify_records_per_s": 2 * copied / checked}


def measure(target: str, source_path: str, repeat: int,
            destination: Callable[[int], AbstractContextManager[str]]) -> dict:
    load = round(os.getloadavg()[0], 2)
    runs = []
    for attempt in range(repeat):
        with destination(attempt) as where:
            runs.append(one_run(source_path, where))
    return {"bench": BENCH, "source": "embedded", "destination": target,
            "records": runs[0]["records"],
            "records_per_s": round(statistics.median(r["records_per_s"] for r in runs)),
            "cpu_us_per_record": round(statistics.median(r["cpu_us_per_record"]
                                                         for r in runs), 2),
            "verify_records_per_s": round(statistics.median(r["verify_records_per_s"]
                                                            for r in runs)),
            "runs": repeat, "load_1m_start": load, "load_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "machine": platform.machine()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="30,000 records, one run")
    args = parser.parse_args()
    records, repeat = (30_000, 1) if args.quick else (args.records, args.repeat)
    with tempfile.TemporaryDirectory(prefix="mqlog-bench-mirror-",
                                     dir=os.environ.get("MQLOG_BENCH_DIR")) as work:
        source_path = os.path.join(work, "source")
        build_source(source_path, records)

        def directory(attempt: int) -> AbstractContextManager[str]:
            return nullcontext(os.path.join(work, f"copy-{attempt}"))

        print(json.dumps(measure("embedded", source_path, repeat, directory)), flush=True)

        def served(_attempt: int) -> AbstractContextManager[str]:
            return _url(brokers.mqlog_serve("mqlog-none", []))

        print(json.dumps(measure("mqlog-serve", source_path, repeat, served)), flush=True)
    return 0


class _url(AbstractContextManager[str]):
    """A started broker, as the kafka:// URL of its listener."""

    def __init__(self, started: AbstractContextManager[brokers.Broker]) -> None:
        self._started = started

    def __enter__(self) -> str:
        return f"kafka://{self._started.__enter__().bootstrap}"

    def __exit__(self, *exc_info: object) -> None:
        self._started.__exit__(*exc_info)


if __name__ == "__main__":
    sys.exit(main())
