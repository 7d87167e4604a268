"""mqlog seek beyond one topic and one target: --all-topics, --to-current, a reset
plan exported and applied (kafka-consumer-groups' CSV), --delete, and offsets out
of range (beyond the end: refused; before the start: clamped with a warning)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog.consumer import TopicPartition

from ._cli import json_lines, run
from ._helpers import TOPIC, snapshot
from .test_groups import GROUP, committed


@pytest.fixture
def two_topics(built: Path) -> Path:
    """The known log plus topic ``audit`` (3 records); group ``billing`` committed at
    orders/0: 100, orders/1: 1, audit/0: 2."""
    with mqlog.open(built) as log:
        log.create_topic("audit")
        log.append("audit", 0, [b"a", b"b", b"c"])
        log.alter_offsets(GROUP, {TopicPartition(TOPIC, 0): 100, TopicPartition(TOPIC, 1): 1,
                                  TopicPartition("audit", 0): 2})
    return built


def all_committed(path: Path) -> dict[tuple[str, int], int | None]:
    with mqlog.open(path) as log:
        return {(p.topic, p.partition): p.committed_offset
                for p in log.describe_group(GROUP).partitions}


BEFORE = {("audit", 0): 2, (TOPIC, 0): 100, (TOPIC, 1): 1}


def test_all_topics_to_earliest_moves_every_topic_of_the_group(runner: CliRunner,
                                                               two_topics: Path) -> None:
    result = run(runner, "-d", two_topics, "seek", GROUP, "--all-topics", "--to-earliest",
                 "--execute", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(r["topic"], r["partition"], r["new_offset"]) for r in json_lines(result.stdout)] \
        == [("audit", 0, 0), (TOPIC, 0, 0), (TOPIC, 1, 0)]
    assert all_committed(two_topics) == {("audit", 0): 0, (TOPIC, 0): 0, (TOPIC, 1): 0}


def test_to_current_commits_the_end_where_nothing_was(runner: CliRunner, built: Path) -> None:
    with mqlog.open(built) as log:
        log.alter_offsets(GROUP, {TopicPartition(TOPIC, 0): 100})
    result = run(runner, "-d", built, "seek", GROUP, "-t", TOPIC, "--to-current", "--execute")
    assert result.exit_code == 0, result.stderr
    assert committed(built) == {0: 100, 1: 1}


def test_export_then_apply_a_reset_plan(runner: CliRunner, two_topics: Path,
                                        tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    result = run(runner, "-d", two_topics, "seek", GROUP, "-t", TOPIC, "-t", "audit",
                 "--shift-by", "-1", "--export", plan)
    assert result.exit_code == 0, result.stderr
    assert "dry run" in result.stdout
    assert plan.read_text() == f"audit,0,1\n{TOPIC},0,99\n{TOPIC},1,0\n"
    assert all_committed(two_topics) == BEFORE  # a dry run: only the file was written
    stdout = run(runner, "-d", two_topics, "seek", GROUP, "--all-topics", "--to-latest",
                 "--export", "-")
    assert stdout.stdout == f"audit,0,3\n{TOPIC},0,150\n{TOPIC},1,1\n"
    assert stdout.stderr == "nothing changed: add --execute to apply\n"
    plan.write_text(f"{TOPIC},0,42\n\n{GROUP},audit,0,3\n")  # both CSV forms of Kafka's tool
    applied = run(runner, "-d", two_topics, "seek", GROUP, "--from-file", plan, "--execute")
    assert applied.exit_code == 0, applied.stderr
    assert all_committed(two_topics) == {("audit", 0): 3, (TOPIC, 0): 42, (TOPIC, 1): 1}
    from_stdin = run(runner, "-d", two_topics, "seek", GROUP, "--from-file", "-", "--execute",
                     input=f"{TOPIC},1,0\n")
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert all_committed(two_topics)[TOPIC, 1] == 0


@pytest.mark.parametrize(("text", "message"), [
    ("orders,0\n", "line 1: expected topic,partition,new-offset, not 'orders,0'"),
    ("orders,0,1\norders,x,1\n", "line 2: partition and offset must be whole numbers >= 0, "
                                 "not 'x' and '1'"),
    ("orders,0,1\norders,0,2\n", "line 2: orders/0 is listed twice"),
    ("other,orders,0,1\n", "line 1: a row of group 'other', not 'billing'"),
    ("\n", "no offsets in the reset plan"),
])
def test_a_bad_reset_plan_changes_nothing(runner: CliRunner, two_topics: Path, tmp_path: Path,
                                          text: str, message: str) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(text)
    before = snapshot(two_topics)
    result = run(runner, "-d", two_topics, "seek", GROUP, "--from-file", plan, "--execute")
    prefix = ": " if message.startswith("no ") else " "
    assert (result.exit_code, result.stderr) == (2, f"mqlog: error: {plan}{prefix}{message}\n")
    assert snapshot(two_topics) == before


def test_a_plan_beyond_the_end_is_refused_and_below_the_start_clamped(
        runner: CliRunner, two_topics: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(f"{TOPIC},0,10\naudit,0,4\n")
    result = run(runner, "-d", two_topics, "seek", GROUP, "--from-file", plan, "--execute")
    assert (result.exit_code, result.stderr) == (
        3, "mqlog: error: offset 4 is beyond the end of audit/0 (3): a group cannot have "
           "consumed records not written yet\n")
    assert all_committed(two_topics) == BEFORE
    back = run(runner, "-d", two_topics, "seek", GROUP, "-t", TOPIC, "-p", "1",
               "--shift-by", "-5", "--execute")
    assert back.exit_code == 0
    assert back.stderr == f"mqlog: warning: {TOPIC}/1: offset -4 is before the log start: " \
                          f"using 0\n"
    assert all_committed(two_topics)[TOPIC, 1] == 0


def test_delete_forgets_a_topics_offsets(runner: CliRunner, two_topics: Path) -> None:
    dry = run(runner, "-d", two_topics, "seek", GROUP, "-t", TOPIC, "-p", "1", "--delete")
    assert dry.exit_code == 0, dry.stderr
    assert "offsets to forget (dry run)" in dry.stdout and "forget" in dry.stdout
    assert all_committed(two_topics) == BEFORE
    done = run(runner, "-d", two_topics, "seek", GROUP, "-t", TOPIC, "--delete", "--execute",
               "--json")
    assert json_lines(done.stdout) == [
        {"group": GROUP, "topic": TOPIC, "partition": number, "current_offset": current,
         "new_offset": None, "executed": True} for number, current in ((0, 100), (1, 1))]
    assert all_committed(two_topics) == {("audit", 0): 2}


def test_delete_is_refused_while_a_member_owns_the_topic(runner: CliRunner,
                                                         two_topics: Path) -> None:
    with mqlog.open(two_topics) as log, log.consumer(GROUP, [TOPIC], client_id="busy") as member:
        member.poll(0)
        result = run(runner, "-d", two_topics, "seek", GROUP, "-t", TOPIC, "--delete",
                     "--execute")
        assert result.exit_code == 4
        assert result.stderr.startswith(
            f"mqlog: error: cannot delete the offsets of group '{GROUP}' for {TOPIC} while "
            f"live members own its partitions: busy-")
        assert run(runner, "-d", two_topics, "seek", GROUP, "-t", "audit", "--delete",
                   "--execute").exit_code == 0
    assert all_committed(two_topics) == {(TOPIC, 0): 100, (TOPIC, 1): 1}


@pytest.mark.parametrize(("options", "message"), [
    (["--to-latest"], "give --topic T (repeat for several) or --all-topics"),
    (["-t", TOPIC, "--all-topics", "--to-latest"],
     "give --topic T (repeat for several) or --all-topics"),
    (["--all-topics", "-p", "0", "--to-latest"], "--partition needs exactly one --topic"),
    (["-t", TOPIC, "-t", "audit", "-p", "0", "--to-latest"],
     "--partition needs exactly one --topic"),
    (["-t", TOPIC, "--from-file", "x.csv"], "--from-file names its topics and partitions: "
                                            "drop --topic, --all-topics and --partition"),
    (["-t", TOPIC, "--delete", "--export", "x.csv"],
     "--delete forgets offsets: there is no reset plan to --export"),
    (["-t", TOPIC, "--to-latest", "--export", "-", "--json"],
     "--export - and --json both write to stdout: choose one"),
])
def test_seek_scope_errors(runner: CliRunner, two_topics: Path, options: list[str],
                           message: str) -> None:
    result = run(runner, "-d", two_topics, "seek", GROUP, *options)
    assert (result.exit_code, result.stderr) == (2, f"mqlog: error: {message}\n")
    assert all_committed(two_topics) == BEFORE


def test_a_missing_plan_file_is_not_found(runner: CliRunner, two_topics: Path,
                                          tmp_path: Path) -> None:
    result = run(runner, "-d", two_topics, "seek", GROUP, "--from-file", tmp_path / "nope.csv")
    assert (result.exit_code, result.stderr) == (
        3, f"mqlog: error: No such file or directory: {tmp_path / 'nope.csv'}\n")
