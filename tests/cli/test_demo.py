"""mqlog demo: small runs through the CLI and the library; the full size under MQLOG_SOAK."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from mqlog.cli import _demo_run, app
from mqlog.cli._demo_run import WRITER_BATCH, run_demo


def test_run_demo_checks_everything_and_reports_progress() -> None:
    calls: list[tuple[str, int, int]] = []
    result = run_demo(1003, lambda *call: calls.append(call), crash_seconds=0.1)
    assert result.failures == ()
    assert result.ok is True
    bulk, crash = result.bulk, result.crash
    assert (bulk.records, bulk.partitions, bulk.value_bytes, bulk.segments) == (1003, 4, 100, 4)
    assert bulk.append_seconds > 0 and bulk.read_seconds > 0
    assert [call for call in calls if call[0] == "append"][-1] == ("append", 1003, 1003)
    assert [call for call in calls if call[0] == "read"][-1] == ("read", 1003, 1003)
    assert crash.acked_appends >= 1
    assert crash.acked_records == crash.acked_appends * WRITER_BATCH
    assert crash.survived_records >= crash.acked_records
    assert crash.survived_records % WRITER_BATCH == 0  # whole batches only: no torn append
    assert crash.lost_records == 0
    assert crash.appended_after_recovery is True
    assert result.verify_errors == 0


def test_demo_command_json() -> None:
    result = CliRunner().invoke(app, ["demo", "--records", "2000", "--json"])
    assert result.exit_code == 0, result.stderr
    (document,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert document["type"] == "demo" and document["ok"] is True
    assert document["bulk"]["records"] == 2000
    assert document["crash"]["lost_records"] == 0
    assert document["crash"]["survived_records"] >= document["crash"]["acked_records"] > 0
    assert document["verify_errors"] == 0 and document["failures"] == []
    assert document["append_records_per_s"] > 0 and document["read_records_per_s"] > 0


def test_demo_command_table_and_failure_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost acknowledged record must fail the demo (exit 1, named on stderr)."""
    monkeypatch.setattr(_demo_run, "_count_lost", lambda log, acked_end, end: 3)
    result = CliRunner().invoke(app, ["demo", "-n", "500"])
    assert result.exit_code == 1
    assert "acked records lost" in result.stdout and "FAILED" in result.stdout
    assert "FAILED: 3 of " in result.stderr
    assert "acknowledged records were lost in the crash" in result.stderr


def test_demo_rejects_zero_records() -> None:
    result = CliRunner().invoke(app, ["demo", "--records", "0"])
    assert result.exit_code == 2


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("MQLOG_SOAK"), reason="set MQLOG_SOAK=1 to run")
def test_full_size_demo_is_well_under_a_minute() -> None:
    began = time.monotonic()
    result = run_demo(1_000_000)
    assert result.ok, result.failures
    assert result.bulk.records == 1_000_000
    assert time.monotonic() - began < 30
