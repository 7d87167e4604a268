"""Smoke test of the cluster wrapper benchmark (bench/cluster_bench.py): a tiny run on
both brokers prints one well-formed line per workload and broker. Values are not
judged (the test machine is no benchmark machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
ROOT = BENCH_DIR.parent


def test_a_tiny_run_prints_both_clients_on_both_brokers() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, "cluster_bench.py", "--records", "2000",
                           "--repeat", "1"], cwd=BENCH_DIR, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["target"], line["workload"]) for line in lines] == [
        (target, workload) for target in ("mqlog-none", "tansu")
        for workload in ("send", "send_kept", "poll")]
    for line in lines:
        assert line["raw_records_per_s"] > 0 and line["wrapper_records_per_s"] > 0
        assert line["raw_cpu_us_per_record"] > 0 and line["wrapper_cpu_us_per_record"] > 0
        assert {"overhead_pct", "cpu_overhead_pct", "load_1m", "records", "python",
                "machine"} <= line.keys()
