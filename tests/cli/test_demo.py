"""mqlog demo: one small run with real processes; the checks, the views and the failure
exit without processes; the default size under MQLOG_SOAK."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import mqlog
from mqlog import Record
from mqlog.cli import _demo, app
from mqlog.cli._demo_run import (
    PARTITIONS,
    TOPIC,
    DemoResult,
    PartitionView,
    Snapshot,
    WorkerView,
    read_ledgers,
    read_topic,
    run_demo,
)


def test_small_demo_processes_every_order_despite_a_killed_worker() -> None:
    result = CliRunner().invoke(app, ["demo", "--records", "600", "--seconds", "1", "--json"])
    assert result.exit_code == 0, result.stderr
    (document,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (document["type"], document["ok"], document["failures"]) == ("demo", True, [])
    assert (document["records"], document["acknowledged"], document["in_log"]) == (600, 600, 600)
    assert document["unique_processed"] == 600 and document["lost"] == 0
    assert document["processed"] == 600 + document["duplicates"]
    assert document["customers_split"] == 0 and 0 < document["customers"] <= 500
    assert document["killed_worker"] == "worker-2" and len(document["killed_partitions"]) == 2
    assert 0 < document["takeover_seconds"] < 5
    assert document["verify_errors"] == 0
    assert document["produce_records_per_s"] > 0 and document["consume_records_per_s"] > 0
    assert "SIGKILL worker-2" in result.stderr and "taken over in" in result.stderr
    # Not a terminal: the live view, printed once, ends its line before stdout's table.
    assert result.stderr.endswith("\n")


def test_read_topic_and_ledgers_find_lost_and_split_orders(tmp_path: Path) -> None:
    with mqlog.open(tmp_path / "log") as log:
        log.create_topic(TOPIC, partitions=PARTITIONS)
        for partition, number, customer in ((0, 1, b"c1"), (0, 2, b"c1"), (3, 3, b"c1"),
                                            (3, 4, b"c2"), (3, 4, b"c2")):
            log.append(TOPIC, partition, [Record(json.dumps({"order": f"p0-{number}"}).encode(),
                                                 key=customer)])
        offsets, customers, split = read_topic(log)
    assert offsets == {(0, 0), (0, 1), (3, 0), (3, 1)}  # (3, 2) repeats order p0-4
    assert (customers, split) == (2, 1)
    (tmp_path / "a.ledger").write_text("0 0\n0 1\n3 0\n")
    (tmp_path / "b.ledger").write_text("3 0\n3 1")  # killed while writing its last line
    assert read_ledgers([tmp_path / "a.ledger", tmp_path / "b.ledger", tmp_path / "c"]) == [
        (0, 0), (0, 1), (3, 0), (3, 0)]


def failed_result() -> DemoResult:
    return DemoResult(600, 600, 600, 599, 599, 1, 100, 0, "worker-2", (1, 4), 0.3, 1.0, 1.2,
                      5.0, 0, ("1 orders were never processed (lost)",))


def test_demo_failure_exits_1_and_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_demo, "run_demo", lambda records, seconds, on_snapshot: failed_result())
    result = CliRunner().invoke(app, ["demo", "-n", "600"])
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "worker-2, owning partitions 1,4" in result.stdout
    assert result.stderr.splitlines()[-1] == "FAILED: 1 orders were never processed (lost)"


def test_live_view_shows_lag_owners_and_events() -> None:
    snapshot = Snapshot(3.5, 600, 400, 350, 4, [
        PartitionView(0, "worker-1", 100, 120), PartitionView(1, None, None, 80)],
        [WorkerView("worker-1", 11, "running", (0,)), WorkerView("worker-2", 12, "killed", ())],
        ["   2.0s  SIGKILL worker-2 (pid 12) owning partitions 1 at 300 orders committed"])
    console = Console(record=True, width=100)
    console.print(_demo._view(snapshot))
    text = console.export_text()
    assert "produced 400/600   committed 350   lag 100   generation 4" in text  # 20 + 80
    assert "worker-1 │       100 │ 120 │  20" in text
    assert "│ -        │         - │  80 │  80" in text
    assert "killed" in text and "SIGKILL worker-2 (pid 12)" in text


def test_demo_rejects_too_few_records() -> None:
    result = CliRunner().invoke(app, ["demo", "--records", "2"])
    assert result.exit_code == 2


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("MQLOG_SOAK"), reason="set MQLOG_SOAK=1 to run")
def test_default_demo_is_under_a_minute() -> None:
    result = run_demo(_demo.DEFAULT_RECORDS, _demo.DEFAULT_SECONDS)
    assert result.ok, result.failures
    assert result.unique_processed == result.acknowledged == _demo.DEFAULT_RECORDS
    assert result.total_seconds < 60
