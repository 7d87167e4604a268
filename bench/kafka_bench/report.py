"""Markdown tables of runs: ``python -m kafka_bench.report RESULTS.jsonl [MORE.jsonl ...]``.

With several files (runs of the same command), each cell is the median of the
runs (kafka_bench.results).

One column per target (in the order TARGETS, then any other), one row per
workload, record size and partition count: produce and consume records/s
(MB/s), the first record after ``subscribe()`` in seconds (or the timeout),
end-to-end latency p50 / p99 / p99.9 in ms per producer ``linger.ms``; then a
table of the connections figures. A measurement that failed shows its error's
first words (a target that did not start: that error in every row); one not
run shows "—".
"""

from __future__ import annotations

import sys

from kafka_bench.brokers import TARGETS
from kafka_bench.results import combined

NAMES = {"mqlog-none": "mqlog serve, none", "mqlog-always": "mqlog serve, always",
         "tansu": "Tansu 0.6.0", "embedded": "embedded API"}
MISSING = "—"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _cell(figure: dict | None) -> str:
    if figure is None:
        return MISSING
    if "error" in figure:
        return "failed: " + figure["error"].split("\n")[0][:60]
    kind = figure["measurement"]
    if kind in ("produce", "consume"):
        return f"{_number(figure['msgs_per_s'])} ({_number(figure['mb_per_s'])} MB/s)"
    if kind == "first_record":
        return (f"timeout > {figure['wait_s']:g} s" if figure["timed_out"]
                else f"{figure['seconds']:.3g} s")
    return " / ".join(_number(figure[k]) for k in ("p50_ms", "p99_ms", "p999_ms"))


def _row_key(figure: dict) -> tuple:
    order = ("produce", "consume", "first_record", "latency")
    return (order.index(figure["measurement"]), figure["value_bytes"], figure["partitions"],
            figure.get("linger_ms", -1))


def _row_name(key: tuple) -> str:
    kind, size, partitions, linger_ms = key
    names = ("produce, records/s", "consume, records/s", "first record after subscribe",
             f"latency p50 / p99 / p99.9 ms, linger.ms={linger_ms}")
    return f"{names[kind]} | {size:,} B | {partitions}"


def throughput_table(figures: list[dict], targets: list[str]) -> str:
    unstarted = {f["target"]: f for f in figures if f["measurement"] == "start"}
    rows: dict[tuple, dict[str, dict]] = {}
    for figure in figures:
        if figure["measurement"] in ("produce", "consume", "first_record", "latency"):
            rows.setdefault(_row_key(figure), {})[figure["target"]] = figure
    lines = ["| workload | size | partitions | " + " | ".join(NAMES.get(t, t) for t in targets)
             + " |", "|---|---:|---:|" + "---:|" * len(targets)]
    for key in sorted(rows):
        lines.append(f"| {_row_name(key)} | "
                     + " | ".join(_cell(rows[key].get(t) or unstarted.get(t)) for t in targets)
                     + " |")
    return "\n".join(lines)


def connections_table(figures: list[dict], targets: list[str]) -> str:
    by_target = {f["target"]: f for f in figures if f["measurement"] == "connections"}
    lines = ["| broker | phase | RSS MiB | CPU % | sockets |", "|---|---|---:|---:|---:|"]
    for target in targets:
        figure = by_target.get(target)
        if figure is None or "error" in figure:
            continue
        phases = (("before", "no client"),
                  ("with_idle", f"{figure['idle_connections']:,} idle connections"),
                  ("with_active", f"+ {figure['active_producers']} producers x "
                                  f"{figure['active_rate']}/s"))
        for key, label in phases:
            sample = figure[key]
            lines.append(f"| {NAMES.get(target, target)} | {label} | "
                         f"{sample['rss_kib'] / 1024:,.0f} | {sample['cpu_percent']:.3g} | "
                         f"{sample['sockets']:,} |")
    return "\n".join(lines)


def render(figures: list[dict]) -> str:
    present = list(dict.fromkeys(f["target"] for f in figures))
    targets = [t for t in TARGETS if t in present] + [t for t in present if t not in TARGETS]
    return throughput_table(figures, targets) + "\n\n" + connections_table(figures, targets)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m kafka_bench.report RESULTS.jsonl [MORE.jsonl ...]",
              file=sys.stderr)
        return 2
    print(render(combined(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
