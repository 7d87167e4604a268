"""Run every benchmark script, save their figures and print a markdown summary.

Each script runs in its own process (so one's page cache, maps and threads do
not colour the next) with the default sizes, or the small ones with
``--quick``. Their JSON lines are written to ``bench/results/latest.jsonl``
(or ``--output``) and summarised as a markdown table on stdout. A script that
fails is reported and makes the exit status 1; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
#: The scripts, in the order the figures are numbered.
SCRIPTS = ("append_batch", "read_sequential", "append_always_threads", "recovery_open", "seek",
           "producer_send", "consumer_poll", "latency_e2e", "rebalance", "describe_group",
           "queue_throughput", "metrics_scrape", "aio_bench", "flush_partitions")
DEFAULT_OUTPUT = os.path.join(HERE, "results", "latest.jsonl")


def run_script(name: str, quick: bool) -> list[dict]:
    """Run one script; return its figures (raises CalledProcessError on failure)."""
    command = [sys.executable, os.path.join(HERE, f"{name}.py")] + (["--quick"] if quick else [])
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def verdict(figure: dict) -> str:
    """'met', 'missed' or '' (no target) for one figure."""
    if "target_min" in figure:
        return "met" if figure["value"] >= figure["target_min"] else "missed"
    if "target_max" in figure:
        return "met" if figure["value"] <= figure["target_max"] else "missed"
    return ""


def target_text(figure: dict) -> str:
    if "target_min" in figure:
        return f">= {figure['target_min']:,}"
    if "target_max" in figure:
        return f"<= {figure['target_max']:,}"
    return ""


def _value_text(value: float) -> str:
    return f"{value:,}" if abs(value) >= 1000 else f"{value:g}"


def markdown_table(figures: list[dict]) -> str:
    """The figures as a markdown table: one row each, with target and verdict."""
    rows = ["| bench | metric | records | value | unit | target | result |",
            "|---|---|---:|---:|---|---|---|"]
    for figure in figures:
        rows.append(
            f"| {figure['bench']} | {figure['metric']} | {figure['records']:,} | "
            f"{_value_text(figure['value'])} | {figure['unit']} | {target_text(figure)} | "
            f"{verdict(figure)} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where to write the JSON lines")
    parser.add_argument("--only", action="append", choices=SCRIPTS,
                        help="run just this script (repeatable)")
    args = parser.parse_args()
    figures, failed = [], []
    for name in args.only or SCRIPTS:
        try:
            figures.extend(run_script(name, args.quick))
        except subprocess.CalledProcessError as error:
            print(f"{name}: failed with exit status {error.returncode}", file=sys.stderr)
            failed.append(name)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        handle.writelines(json.dumps(figure) + "\n" for figure in figures)
    if figures:
        print(f"Machine: {figures[0]['machine']}; Python {figures[0]['python']}\n")
    print(markdown_table(figures))
    if failed:
        print(f"\nFailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
