"""``mqlog verify`` and ``mqlog stats`` show the recovery journal: what opening the
log cut, skipped or rebuilt (here: the active segment of partition 0 truncated
inside its last batch, so the open cut it and recorded its offsets as a gap)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog

from ._cli import json_lines, run
from ._helpers import BATCH_BYTES, RECORDS_PER_BATCH, SEGMENT_BASES, TOPIC, segment_file

LAST_BASE = SEGMENT_BASES[-1]


@pytest.fixture
def recovered(built: Path) -> Path:
    path = segment_file(built, LAST_BASE)
    size = path.stat().st_size
    os.truncate(path, size - 10)
    with mqlog.open(built) as log:
        assert log.end_offset(TOPIC, 0) == 150  # the end stays: the cut offsets are a gap
    return built


def test_verify_lists_the_journal_and_passes(runner: CliRunner, recovered: Path) -> None:
    result = run(runner, "-d", recovered, "verify")
    assert result.exit_code == 0, result.stdout
    assert "Recovery journal: 2 entries" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("RECOVERY")]
    first = 150 - RECORDS_PER_BATCH
    assert f"{TOPIC}/0: cut offsets {first}..149 ({BATCH_BYTES} bytes)" in lines[0]
    assert f"{TOPIC}/0: gap offsets {first}..149 in " in lines[1]
    assert "OK: no damage found" in result.stdout


def test_verify_json_has_one_line_per_journal_entry(runner: CliRunner,
                                                     recovered: Path) -> None:
    lines = json_lines(run(runner, "-d", recovered, "verify", "--json").stdout)
    recoveries = [line for line in lines if line["type"] == "recovery"]
    assert [(r["action"], r["topic"], r["partition"], r["first_offset"], r["end_offset"])
            for r in recoveries] == [("cut", TOPIC, 0, 145, 150), ("gap", TOPIC, 0, 145, 150)]
    assert recoveries[0]["file"] == str(segment_file(recovered, LAST_BASE))
    assert (lines[-1]["type"], lines[-1]["recoveries"], lines[-1]["ok"]) == ("summary", 2, True)


def test_stats_counts_and_lists_recoveries(runner: CliRunner, recovered: Path) -> None:
    [line] = json_lines(run(runner, "-d", recovered, "stats", "--interval", "0",
                            "--json").stdout)
    assert line["recoveries"] == 2
    table = run(runner, "-d", recovered, "stats", "--interval", "0").stdout
    assert "Recovery journal: 2 entries" in table
