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


def test_list_shows_states_and_pending_hides_the_handled(runner, dead):
    assert run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--offset", "0").exit_code == 0
    listed = json_lines(run(runner, "-d", dead, "dlq", "list", "jobs.dlq", "--json").stdout)
    assert [(d["offset"], d["state"]) for d in listed] == [(0, "redriven"), (1, "pending")]
    pending = run(runner, "-d", dead, "dlq", "list", "jobs.dlq", "--pending", "--json")
    assert [d["offset"] for d in json_lines(pending.stdout)] == [1]
    table = run(runner, "-d", dead, "dlq", "list", "jobs.dlq")
    assert "STATE" in table.stdout and "redriven" in table.stdout
    shown = run(runner, "-d", dead, "dlq", "show", "jobs.dlq", "0")
    assert "state: redriven" in shown.stdout


def test_purge_and_dry_runs(runner, dead):
    dry = run(runner, "-d", dead, "dlq", "purge", "jobs.dlq", "--dry-run", "--json")
    assert json_lines(dry.stdout) == [{"topic": "jobs.dlq", "purged": 2, "dry_run": True}]
    assert run(runner, "-d", dead, "dlq", "list", "jobs.dlq", "--pending", "--json").stdout.count(
        "\n") == 2
    purged = run(runner, "-d", dead, "dlq", "purge", "jobs.dlq", "-p", "0", "--offset", "1")
    assert purged.exit_code == 0 and "purged 1 dead letters" in purged.stdout
    redrive = run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--dry-run")
    assert "would redrive 1 dead letters" in redrive.stdout
    with mqlog.open(dead) as log:
        assert log.end_offset("jobs", 0) == 2  # the dry run moved nothing


def test_redrive_to_another_topic_by_reason(runner, dead):
    with mqlog.open(dead) as log:
        log.create_topic("retry")
    none = run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--reason", "^nothing",
               "--to", "retry")
    assert none.exit_code == 0 and "redriven 0 dead letters" in none.stdout
    moved = run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--reason", "bo+m",
                "--to", "retry", "--json")
    assert json_lines(moved.stdout) == [{"topic": "jobs.dlq", "redriven": 2, "dry_run": False}]
    with mqlog.open(dead) as log:
        assert [r.value for r in log.read("retry", 0, 0)] == [b"a", b"b"]
    missing = run(runner, "-d", dead, "dlq", "redrive", "jobs.dlq", "--to", "nope")
    assert missing.exit_code == 3
    bad = run(runner, "-d", dead, "dlq", "list", "jobs.dlq", "--reason", "(")
    assert bad.exit_code == 2 and "regular expression" in bad.stderr
