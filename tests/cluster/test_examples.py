"""The programs of examples/ run unchanged on a Kafka cluster: given a kafka:// URL
where they take a log directory (tests/cli/test_examples.py runs them on
directories), against ``mqlog serve`` and Tansu."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqlog

from .conftest import Broker, skip_on_tansu, unique
from .test_log_api import TANSU_TIME

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_MS = 1_700_000_000_000


def example(name: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, EXAMPLES / name, *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=EXAMPLES)


@pytest.fixture
def log(broker: Broker) -> Iterator[mqlog.Log]:
    with mqlog.open(broker.url) as opened:
        yield opened


@pytest.fixture
def payments(log: mqlog.Log) -> str:
    """A topic of 3 partitions: payments of 4 accounts, 4 per partition, one record
    per batch, stamped START_MS + 10 * n."""
    name = unique("payments")
    log.create_topic(name, 3)
    with log.producer() as producer:
        for n in range(12):
            payment = {"account": f"acct-{n % 4}", "amount": n}
            producer.send(name, json.dumps(payment), key=f"acct-{n % 4}", partition=n % 3,
                          timestamp=START_MS + 10 * n).result(30)
    return name


def test_rebuild_projection(broker: Broker, log: mqlog.Log, payments: str) -> None:
    group = unique("balances")
    result = example("rebuild_projection.py", broker.url, payments, "--group", group)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {f"acct-{a}": sum(n for n in range(12) if n % 4 == a)
                                         for a in range(4)}
    assert [p.committed_offset for p in log.describe_group(group).partitions] == [4, 4, 4]


def test_copy_range(broker: Broker, log: mqlog.Log, payments: str) -> None:
    target = unique("copy")
    result = example("copy_range.py", broker.url, payments, broker.url, "--target-topic",
                     target, "--from-offset", 1, "--to-offset", 3)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"partition {p}: 2 records" for p in range(3)]
    copied = log.read(target, 0, 0)
    original = log.read(payments, 0, 1, max_records=2)
    assert [(r.key, r.value, r.timestamp) for r in copied] == [
        (r.key, r.value, r.timestamp) for r in original]


def test_value_stats(broker: Broker, payments: str) -> None:
    result = example("value_stats.py", broker.url, payments)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert [stats["partitions"][str(p)]["records"] for p in range(3)] == [4, 4, 4]
    assert stats["partitions"]["0"]["offsets"] == [0, 3]
    assert stats["topic"]["records"] == 12


def test_replay_window(broker: Broker, payments: str) -> None:
    skip_on_tansu(broker, TANSU_TIME)
    result = example("replay_window.py", broker.url, payments,
                     "--start", "2023-11-14T22:13:20.030Z", "--end", "2023-11-14T22:13:20.070Z")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "replayed 4 records\n"
    assert sorted(line.split()[1] for line in result.stdout.splitlines()) == [
        "0:1", "0:2", "1:1", "2:1"]  # n = 3, 4, 5, 6: partition n % 3, offset n // 3
