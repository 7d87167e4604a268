"""Smoke test of the mirror benchmark (bench/mirror_bench.py): a tiny run prints one
well-formed line per destination, and the copies it made verified equal. Values
are not judged (the test machine is no benchmark machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
ROOT = BENCH_DIR.parent


def test_a_tiny_run_prints_both_destinations() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, "mirror_bench.py", "--records", "3000",
                           "--repeat", "1"], cwd=BENCH_DIR, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["destination"] for line in lines] == ["embedded", "mqlog-serve"]
    for line in lines:
        assert line["records"] == 3000
        assert line["records_per_s"] > 0 and line["cpu_us_per_record"] > 0
        assert {"verify_records_per_s", "load_1m", "load_1m_start", "python"} <= line.keys()
