"""The replay scripts of examples/ run as they are, on logs with known content."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import mqlog

from ._helpers import START_MS, TOPIC, value

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, EXAMPLES / name, *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=EXAMPLES)


def test_rebuild_projection_and_hand_over_to_a_group(log_dir: Path) -> None:
    rng = random.Random(7)
    expected: dict[str, float] = {}
    with mqlog.open(log_dir) as log, log.producer() as producer:
        log.create_topic("payments", partitions=3)
        for _ in range(300):
            account, amount = f"acct-{rng.randrange(12)}", rng.randrange(-500, 1000) / 10
            expected[account] = expected.get(account, 0) + amount
            producer.send("payments", json.dumps({"account": account, "amount": amount}),
                          key=account)
    result = example("rebuild_projection.py", log_dir, "payments", "--group", "balances")
    assert result.returncode == 0, result.stderr
    balances = json.loads(result.stdout)
    assert list(balances) == sorted(expected)
    assert balances == {account: round(total, 2) for account, total in expected.items()}
    with mqlog.open(log_dir) as log:
        ends = {p.partition: p.end_offset for p in log.describe_topic("payments").partitions}
        assert sum(ends.values()) == 300
        assert {p.partition: p.committed_offset
                for p in log.describe_group("balances").partitions} == ends


def test_replay_window_calls_the_handler_for_the_window_only(built: Path) -> None:
    result = example("replay_window.py", built, TOPIC, "--start", "2023-11-14T22:13:20.028Z",
                     "--end", "2023-11-14T22:13:20.030Z")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"2023-11-14T22:13:20Z 0:{n} {value(n).decode()}" for n in range(140, 150)]
    assert result.stderr == "replayed 10 records\n"
    everything = example("replay_window.py", built, TOPIC, "--start", "5000d")
    assert everything.stderr == "replayed 151 records\n"


def test_copy_range_into_another_directory(built: Path, tmp_path: Path) -> None:
    target = tmp_path / "backup"
    result = example("copy_range.py", built, TOPIC, target, "--from-offset", 100,
                     "--to-offset", 120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "partition 0: 20 records\npartition 1: 0 records\n"
    with mqlog.open(target) as log:
        copied = log.read(TOPIC, 0, 0, max_records=100)
        assert [(r.offset, r.value, r.timestamp) for r in copied] == [
            (n - 100, value(n), START_MS + n // 5) for n in range(100, 120)]
        assert log.end_offset(TOPIC, 1) == 0


def test_value_stats_from_columnar_reads(built: Path) -> None:
    result = example("value_stats.py", built, TOPIC)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    minute = START_MS // 60_000 * 60_000
    assert stats["partitions"]["0"] == {
        "records": 150, "offsets": [0, 149], "timestamps_ms": [START_MS, START_MS + 29],
        "value_bytes": 150 * 40, "value_mean": 40.0, "value_p50": 40.0, "value_p99": 40.0,
        "value_max": 40, "busiest_minute_ms": minute, "busiest_minute_records": 150}
    assert stats["partitions"]["1"]["value_bytes"] == len(b"hello")
    assert (stats["topic"]["records"], stats["topic"]["value_bytes"]) == (151, 6005)
    later = json.loads(example("value_stats.py", built, TOPIC, "--since-offset", 140).stdout)
    assert later["partitions"]["0"]["offsets"] == [140, 149]
    assert later["partitions"]["1"] == {"records": 0}
