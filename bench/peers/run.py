"""Side-by-side benchmark of mqlog and the systems users would run instead on one
machine: Redis Streams, NATS JetStream, persist-queue and litequeue.

Run from ``bench/`` as ``python -m peers`` (``make bench-peers`` installs the
peers, then does that). Redis and NATS are started on 127.0.0.1 with their data
in a temporary directory (under ``$MQLOG_BENCH_DIR`` if set) and stopped at the
end, also on failure or Ctrl-C. A system whose server binary or Python client
is missing is skipped with a note (``--strict``: that is an error).

For each message size (100 B and 1 KiB by default) and each system at each of
its durability settings:

1. produce ``--records`` messages, one per call and in the system's batch,
   pipeline or async form (1,000 per call, pipeline or window);
2. consume a backlog of ``--records`` messages with acknowledgement: the
   stream form (1,000 per poll/fetch, one commit or ack per batch) and the
   queue form (one message per call, each acked), where the system has it;
3. end-to-end latency (p50, p99, p99.9) at a fixed rate with producer and
   consumer in separate processes: ``--rate`` (5,000/s), or the highest of
   2,000, 1,000, 500, ... /s that is at most half of both the system's
   single-call produce rate (step 1) and the rate of the consume form its
   latency consumer uses (step 2); a run whose consumer falls behind (see
   peers.latency) is repeated one step lower, three times at most. mqlog runs
   at every rate a peer of its durability class ran at.

Every timed loop stops after ``--max-seconds`` (the row then shows how many
records it did); a loop that took under MIN_TOTAL_S is repeated (fresh state)
up to MAX_RUNS times and the median run is reported. Durability classes:
"fsync" (flushed before the call returns) and "relaxed" (page cache, flushed
on a timer); ratios mqlog/peer pair each peer figure with the mqlog figure of
the same workload, size and class (relaxed: mqlog ``interval``, 1 s).

Output: JSON lines (``--output``), the markdown tables (stdout and ``.md`` next
to the JSON lines) and PNG plots (``--plots-dir``, ``--no-plots`` to skip).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import _common

from peers import core, latency, report, servers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUTPUT = os.path.join(REPO, "bench", "results", "peers.jsonl")
DEFAULT_PLOTS = os.path.join(REPO, "docs", "img")
SYSTEMS = ("mqlog", "redis", "nats", "persist-queue", "litequeue")
RECORDS = 100_000
MAX_SECONDS = 2.0
LATENCY_SECONDS = 3.0
RATE = 5000
#: Lower latency rates tried, highest first, for a system that cannot sustain RATE.
RATE_LADDER = (5000, 2000, 1000, 500, 200, 100, 50, 20, 10)
#: A rate is used only if the single-call produce rate and the latency consumer's consume
#: rate are both at least this many times it.
RATE_HEADROOM = 2.0
MIN_TOTAL_S = 1.0
MAX_RUNS = 3
#: Python modules and server binaries each system needs.
NEEDS = {
    "mqlog": ((), ()),
    "redis": (("redis", "hiredis"), ("redis-server",)),
    "nats": (("nats",), ("nats-server",)),
    "persist-queue": (("persistqueue",), ()),
    "litequeue": (("litequeue",), ()),
}


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=RECORDS,
                        help=f"messages per produce/consume case (default {RECORDS:,})")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024],
                        help="message sizes in bytes (default 100 1024)")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS),
                        help="systems to run (default: all)")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS,
                        help=f"time cap of one timed loop (default {MAX_SECONDS})")
    parser.add_argument("--rate", type=int, default=RATE,
                        help=f"latency send rate, messages/s (default {RATE:,})")
    parser.add_argument("--latency-seconds", type=float, default=LATENCY_SECONDS,
                        help=f"measured part of each latency run (default {LATENCY_SECONDS})")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke run: 200 records, 0.2 s caps, latency runs of 0.1 s "
                             "warm-up + 0.2 s at 500/s, no repeats")
    parser.add_argument("--strict", action="store_true",
                        help="fail when a system's server or client is missing")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="JSON lines file")
    parser.add_argument("--plots-dir", default=DEFAULT_PLOTS, help="where the PNGs go")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    args = parser.parse_args(argv)
    args.warmup_seconds = latency.WARMUP_S
    if args.tiny:
        args.records, args.max_seconds, args.latency_seconds = 200, 0.2, 0.2
        args.rate, args.warmup_seconds = min(args.rate, 500), 0.1
    return args


def missing_parts(system: str) -> list[str]:
    """What ``system`` needs and this machine lacks (modules, binaries)."""
    modules, binaries = NEEDS[system]
    lacking = [f"Python module {m}" for m in modules if importlib.util.find_spec(m) is None]
    return lacking + [f"{b} binary" for b in binaries if servers.find_binary(b) is None]


# -- adapters -----------------------------------------------------------------------------


def start_adapters(systems: list[str], root: str, stack: ExitStack,
                   versions: dict[str, str]) -> list[core.Adapter]:
    """Start the servers the systems need and build one adapter per setting."""
    adapters: list[core.Adapter] = []
    for system in systems:
        made = _adapters_of(system, root, stack, versions)
        for adapter in made:
            stack.callback(adapter.close)
        adapters.extend(made)
    return adapters


def _adapters_of(system: str, root: str, stack: ExitStack,
                 versions: dict[str, str]) -> list[core.Adapter]:
    if system == "mqlog":
        from peers.mqlog_adapter import MqlogAdapter
        versions["mqlog"] = _package_version("mqlog")
        return [MqlogAdapter(durability, root) for durability in ("none", "interval", "always")]
    if system == "redis":
        from peers.redis_adapter import RedisAdapter
        server = stack.enter_context(servers.redis_server(
            servers.find_binary("redis-server"), os.path.join(root, "redis")))
        versions["Redis Streams"] = (f"{server.version}; redis-py {_package_version('redis')}"
                                     f" with hiredis {_package_version('hiredis')}")
        return [RedisAdapter(server.port, fsync) for fsync in ("everysec", "always")]
    if system == "nats":
        from peers.nats_adapter import NatsAdapter
        server = stack.enter_context(servers.nats_server(
            servers.find_binary("nats-server"), os.path.join(root, "nats")))
        versions["NATS JetStream"] = f"{server.version}; nats-py {_package_version('nats-py')}"
        return [NatsAdapter(server.url)]
    from peers import sqlite_adapters
    versions[system] = f"{system} {_package_version(system)}; SQLite {_sqlite_version()}"
    kind = (sqlite_adapters.PersistQueueAdapter if system == "persist-queue"
            else sqlite_adapters.LitequeueAdapter)
    return [kind(synchronous, root) for synchronous in ("NORMAL", "FULL")]


def _package_version(name: str) -> str:
    """The installed distribution's version ("?" when run from a source tree)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def _sqlite_version() -> str:
    import sqlite3
    return sqlite3.sqlite_version


# -- measuring ------------------------------------------------------------------------------


def base_figure(adapter: core.Adapter, size: int) -> dict:
    setting = adapter.setting
    figure = {"bench": "peers", "system": setting.system, "durability": setting.durability,
              "sync_class": setting.sync_class, "value_bytes": size,
              "load_1m": round(os.getloadavg()[0], 2)}
    if setting.reference:
        figure["reference"] = True
    return figure


def throughput(adapter: core.Adapter, case: core.Case, size: int, records: int,
               cap_s: float, repeat: bool) -> dict:
    """Run ``case`` (again while quick, see MIN_TOTAL_S); the median run's figure."""
    count = case.backlog or records
    runs: list[tuple[int, float]] = []
    while True:
        case.prepare(count)
        start = time.perf_counter()
        done = case.run(count, start + cap_s)
        runs.append((done, time.perf_counter() - start))
        if not repeat or len(runs) >= MAX_RUNS or sum(s for _, s in runs) >= MIN_TOTAL_S:
            break
    runs.sort(key=lambda run: run[0] / run[1])
    done, seconds = runs[len(runs) // 2]
    figure = base_figure(adapter, size) | {
        "workload": case.workload, "form": case.form, "call": case.call,
        "metric": "records_per_s", "value": report.significant(done / seconds),
        "unit": "records/s", "records": done, "seconds": round(seconds, 4),
        "runs": len(runs), "capped": done < count}
    if case.workload == "consume":
        figure["backlog"] = count
    if case.backlog is not None:
        figure["fixed_backlog"] = True
    if case.note:
        figure["note"] = case.note
    return figure


def latency_figures(adapter: core.Adapter, run: latency.LatencyRun, size: int) -> list[dict]:
    shared = base_figure(adapter, size) | {
        "workload": "latency", "form": "single", "call": adapter.latency_calls,
        "rate": run.rate, "records": len(run.latencies_ns), "sent": run.sent,
        "received": run.received, "kept_up": run.kept_up, "unit": "ms"}
    return [shared | {"metric": f"{name}_ms", "value": report.significant(
                run.percentile_ms(percent))}
            for name, percent in (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))]


def latency_rate(adapter: core.Adapter, size: int, figures: list[dict], rate: int) -> int:
    """``rate``, or the highest ladder rate that both the system's single-call
    produce and its consume form of the latency consumer (measured earlier in
    this run, at any backlog) sustain with RATE_HEADROOM."""
    setting = adapter.setting
    mine = [f for f in figures if f["system"] == setting.system and f["value_bytes"] == size
            and f["durability"] == setting.durability]
    single = [f["value"] for f in mine if f["workload"] == "produce" and f["form"] == "single"]
    consume = [f["value"] for f in mine if f["workload"] == "consume"
               and f["form"] == adapter.latency_consume_form]
    limit = min(single[:1] + [max(consume, default=float("inf"))])
    for step in RATE_LADDER:
        if step <= rate and limit >= RATE_HEADROOM * step:
            return step
    return RATE_LADDER[-1]


def run_latency(adapter: core.Adapter, size: int, rate: int, args: argparse.Namespace,
                root: str) -> list[dict]:
    """A latency run at ``rate``; one ladder step lower (three times at most) while
    the consumer falls behind."""
    output = os.path.join(root, "latencies.npy")
    for _attempt in range(4):
        run = latency.measure(adapter, rate, args.latency_seconds, size, output,
                              args.warmup_seconds)
        lower = [step for step in RATE_LADDER if step < rate]
        if run.kept_up or not lower:
            break
        _common.progress(f"  {adapter.setting.system}: fell behind at {rate}/s, "
                         f"trying {lower[0]}/s")
        rate = lower[0]
    return latency_figures(adapter, run, size)


def run_all(args: argparse.Namespace, adapters: list[core.Adapter], root: str) -> list[dict]:
    figures: list[dict] = []
    for size in args.sizes:
        values = core.values_of(size)
        for adapter in adapters:
            for case in adapter.cases(values):
                figure = throughput(adapter, case, size, args.records, args.max_seconds,
                                    repeat=not args.tiny)
                _common.progress(f"{size:>5} B  {figure['system']:<15} {figure['call'][:44]:<44}"
                                 f" {figure['sync_class']:<7} {figure['value']:>12,} rec/s")
                figures.append(figure)
    for size in args.sizes:
        rates: dict[str, set[int]] = {core.FSYNC: set(), core.RELAXED: set()}
        for adapter in sorted(adapters, key=lambda a: a.setting.system == "mqlog"):
            setting = adapter.setting
            if setting.system == "mqlog":
                if not setting.reference:
                    continue  # the page-cache setting: its throughput rows suffice
                chosen = sorted({args.rate} | rates[setting.sync_class], reverse=True)
            else:
                chosen = [latency_rate(adapter, size, figures, args.rate)]
            for rate in chosen:
                found = run_latency(adapter, size, rate, args, root)
                rates[setting.sync_class].add(found[0]["rate"])
                _common.progress(f"{size:>5} B  {setting.system:<15} latency at "
                                 f"{found[0]['rate']}/s: p50 {found[0]['value']} ms, p99 "
                                 f"{found[1]['value']} ms, p99.9 {found[2]['value']} ms")
                figures.extend(found)
    return figures


# -- the run --------------------------------------------------------------------------------


@contextmanager
def terminated_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so that cleanup also runs when the run is stopped."""
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def choose_systems(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The systems that can run here, and why the others cannot."""
    chosen, skipped = [], {}
    for system in args.systems:
        lacking = missing_parts(system)
        if lacking:
            skipped[system] = ", ".join(lacking)
        else:
            chosen.append(system)
    if skipped and args.strict:
        raise SystemExit("missing: " + "; ".join(f"{s}: {why}" for s, why in skipped.items()))
    for system, why in skipped.items():
        _common.progress(f"skipping {system}: no {why}")
    return chosen, skipped


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    systems, skipped = choose_systems(args)
    started = time.monotonic()
    load_before = os.getloadavg()
    versions: dict[str, str] = {}
    root = tempfile.mkdtemp(prefix="mqlog-peers-", dir=os.environ.get("MQLOG_BENCH_DIR"))
    try:
        with terminated_as_exit(), ExitStack() as stack:
            adapters = start_adapters(systems, root, stack, versions)
            figures = run_all(args, adapters, root)
    except KeyboardInterrupt:
        _common.progress("interrupted: servers stopped, temporary data removed")
        return 130
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report.add_ratios(figures)
    context = {"machine": _common.machine(), "python": platform.python_version(),
               "versions": versions, "skipped": skipped, "records": args.records,
               "max_seconds": args.max_seconds, "load_before": load_before,
               "load_after": os.getloadavg(), "seconds": round(time.monotonic() - started, 1),
               "command": " ".join(["python -m peers", *(argv if argv is not None
                                                         else sys.argv[1:])]).strip()}
    for figure in figures:
        figure.update(python=context["python"], machine=context["machine"])
    write_outputs(args, figures, context)
    return 0


def write_outputs(args: argparse.Namespace, figures: list[dict], context: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        handle.writelines(json.dumps(figure) + "\n" for figure in figures)
    markdown = report.markdown(figures, context)
    with open(os.path.splitext(args.output)[0] + ".md", "w") as handle:
        handle.write(markdown)
    print(markdown)
    if not args.no_plots:
        from peers import plots
        for path in plots.draw(figures, args.plots_dir):
            _common.progress(f"plot: {path}")
