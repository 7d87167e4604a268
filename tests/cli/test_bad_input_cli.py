"""A command that fails on bad input creates nothing and changes nothing, and says
why in one line with the bad-input exit code (2), never with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog.cli._app import EXIT_USAGE
from tests._directory import snapshot
from tests.cli._cli import run


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize(("args", "message"), [
    (["bad name"], "topic name 'bad name' has characters outside [a-zA-Z0-9._-]"),
    (["__x"], "topic name '__x' starts with '__', reserved for internal topics"),
    (["x", "--partitions", "0"], "partitions must be an int from 1 to 10000, not 0"),
    (["x", "--segment-bytes", "10"],
     "segment_bytes must be between 4096 and 2147483647, not 10"),
])
def test_topics_create_with_bad_input_creates_no_directory(runner, tmp_path: Path, args,
                                                           message) -> None:
    """``mqlog --dir newdir topics create 'bad name'`` used to create newdir."""
    new = tmp_path / "newdir"
    result = run(runner, "-d", new, "topics", "create", *args)
    assert (result.exit_code, result.stderr) == (EXIT_USAGE, f"mqlog: error: {message}\n")
    assert not new.exists()


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A log whose topic ``jobs`` holds records that are not dead letters."""
    with mqlog.open(tmp_path, durability="none", segment_bytes=64 * 1024) as log:
        log.create_topic("jobs")
        log.append("jobs", 0, [b"a", b"b"])
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["list", "jobs"], "topic 'jobs' is not a dead-letter topic: its record 0@0 has no "
                       "dlq.topic and dlq.partition headers"),
    (["redrive", "jobs"], "topic 'jobs' is not a dead-letter topic: its record 0@0 has no "
                          "dlq.topic and dlq.partition headers"),
    (["show", "jobs", "1"], "topic 'jobs' is not a dead-letter topic: its record 0@0 has "
                            "no dlq.topic and dlq.partition headers"),
    (["purge", "jobs"], "topic 'jobs' is not a dead-letter topic: its record 0@0 has no "
                        "dlq.topic and dlq.partition headers"),
])
def test_dlq_commands_refuse_a_topic_that_is_not_a_dead_letter_topic(runner, plain, args,
                                                                     message) -> None:
    """``mqlog dlq redrive jobs`` printed a KeyError traceback and left a queue group."""
    before = snapshot(plain)
    result = run(runner, "-d", plain, "dlq", *args)
    assert (result.exit_code, result.stderr) == (EXIT_USAGE, f"mqlog: error: {message}\n")
    assert result.stdout == ""
    assert snapshot(plain) == before
    assert not (plain / "queues").exists()
