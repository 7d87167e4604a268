"""``mqlog dlq list|show|redrive`` and ``mqlog queues describe``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from tests.cli._cli import json_lines, run


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def dead(tmp_path: Path) -> Path:
    """A log whose queue group 'w' dead-lettered offsets 0 and 1 of 'jobs'."""
    with mqlog.open(tmp_path, durability="none") as log:
        log.create_topic("jobs")
        log.append("jobs", 0, [b"a", mqlog.Record(b"b", key=b"k")])
        with log.queue("w", ["jobs"], max_deliveries=1) as queue:
            for message in queue.receive(10):
                message.nack(delay_s=0, reason="boom")
            assert queue.receive(10) == []
    return tmp_path


def test_list_names_origin_deliveries_and_reason(runner, dead):
    result = run(runner, "-d", dead, "dlq", "list", "jobs.dlq", "--json")
    assert result.exit_code == 0, result.output
    letters = json_lines(result.stdout)
    assert [(d["partition"], d["offset"]) for d in letters] == [(0, 0), (0, 1)]
    assert [(d["origin"]["topic"], d["origin"]["partition"], d["origin"]["offset"],
             d["origin"]["delivery_count"], d["origin"]["reason"], d["state"])
            for d in letters] == [
        ("jobs", 0, 0, 1, "boom", "pending"), ("jobs", 0, 1, 1, "boom", "pending")]
    assert all(isinstance(d["origin"]["last_delivery_ms"], int) for d in letters)
    table = run(runner, "-d", dead, "dlq", "list", "jobs.dlq")
    assert table.exit_code == 0 and "2 dead letters in jobs.dlq" in table.stdout


def test_show_prints_one_dead_letter(runner, dead):
    result = run(runner, "-d", dead, "dlq", "show", "jobs.dlq", "1")
    assert result.exit_code == 0, result.output
    assert "reason: boom" in result.stdout and "value: b'b'" in result.stdout
    assert "key: b'k'" in result.stdout
    missing = run(runner, "-d", dead, "dlq", "show", "jobs.dlq", "7")
    assert missing.exit_code == 3
    assert "out of range" in missing.stderr


def test_redrive_moves_dead_letters_back_once(runner, dead):
    result = run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--offset", "1", "--json")
    assert json_lines(result.stdout) == [{"topic": "jobs.dlq", "redriven": 1, "dry_run": False}]
    again = run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--json")
    assert json_lines(again.stdout) == [  # offset 0 only
        {"topic": "jobs.dlq", "redriven": 1, "dry_run": False}]
    with mqlog.open(dead) as log:
        back = log.read("jobs", 0, 2)
    assert [(r.key, r.value) for r in back] == [(b"k", b"b"), (None, b"a")]
    assert all(not name.startswith("dlq.") for r in back for name in r.headers)


def test_queues_describe_counts_dead_letters(runner, dead):
    result = run(runner, "-d", dead, "queues", "describe", "w", "--json")
    assert result.exit_code == 0, result.output
    [row] = json_lines(result.stdout)
    assert (row["topic"], row["position"], row["end_offset"], row["lag"],
            row["dead_lettered"]) == ("jobs", 2, 2, 0, 2)
    unknown = run(runner, "-d", dead, "queues", "describe", "nope")
    assert unknown.exit_code == 3 and "unknown queue group 'nope'" in unknown.stderr
