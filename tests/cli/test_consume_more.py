"""mqlog consume over several topics or a ^regular expression, and of one partition
(--partition, --offset) with or without a group."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog

from ._cli import run
from ._helpers import TOPIC, value
from .test_produce_consume import group_offsets


@pytest.fixture
def three_topics(built: Path) -> Path:
    """The known log plus ``orders.eu`` and ``audit``, one record each."""
    with mqlog.open(built) as log:
        for name in ("orders.eu", "audit"):
            log.create_topic(name)
            log.append(name, 0, [name.encode()])
    return built


def all_offsets(path: Path, group: str) -> dict[tuple[str, int], int | None]:
    with mqlog.open(path) as log:
        return {(p.topic, p.partition): p.committed_offset
                for p in log.describe_group(group).partitions}


def test_consume_a_regex_and_a_name(runner: CliRunner, three_topics: Path) -> None:
    result = run(runner, "-d", three_topics, "consume", r"^orders\.", "audit", "-g", "g",
                 "--from-beginning", "-n", "2", "-F", "%t:%s")
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["audit:audit", "orders.eu:orders.eu"]
    assert all_offsets(three_topics, "g") == {("audit", 0): 1, ("orders.eu", 0): 1}


def test_consume_several_topics_shows_the_topic(runner: CliRunner, three_topics: Path) -> None:
    result = run(runner, "-d", three_topics, "consume", "audit", "orders.eu", "-g", "g",
                 "--from-beginning", "-n", "2")
    assert sorted(line.split("  ")[0] for line in result.stdout.splitlines()) == [
        "audit/0:0", "orders.eu/0:0"]


def test_consume_one_partition_from_an_offset_without_a_group(runner: CliRunner,
                                                              built: Path) -> None:
    result = run(runner, "-d", built, "consume", TOPIC, "-p", "0", "--offset", "147",
                 "--format", "raw", "--timeout", "0.2")
    assert (result.exit_code, result.stdout) == (0, "".join(value(n).decode() + "\n"
                                                           for n in (147, 148, 149)))
    with mqlog.open(built) as log:
        assert log.list_groups() == []  # no group: nothing committed


def test_consume_one_partition_as_a_group(runner: CliRunner, built: Path) -> None:
    first = run(runner, "-d", built, "consume", TOPIC, "-p", "0", "-g", "g", "--offset", "10",
                "-n", "2", "--format", "raw")
    assert first.stdout == value(10).decode() + "\n" + value(11).decode() + "\n"
    assert group_offsets(built, "g") == {0: 12}
    again = run(runner, "-d", built, "consume", TOPIC, "-p", "0", "-g", "g", "-n", "1",
                "--format", "raw")  # no --offset: from the group's committed offset
    assert again.stdout == value(12).decode() + "\n"
    assert group_offsets(built, "g") == {0: 13}


@pytest.mark.parametrize(("args", "code", "message"), [
    ([TOPIC, "-g", "g", "--offset", "3"], 2, "--offset needs --partition"),
    ([TOPIC, "-p", "0", "--offset", "3", "--from-beginning"], 2,
     "choose one starting point, not --offset and --from-beginning"),
    ([TOPIC, "audit", "-p", "0"], 2, "--partition needs exactly one topic"),
    (["^orders", "-p", "0"], 2, "--partition needs exactly one topic"),
    ([TOPIC, "-p", "0", "--offset", "151"], 3,
     f"offset 151 is out of range for {TOPIC}/0: valid offsets are 0..150"),
    ([TOPIC, "-p", "2"], 3, f"topic '{TOPIC}' has no partition 2: it has partitions 0..1"),
    (["^(", "-g", "g"], 2, "Invalid value for 'TOPIC': bad regular expression '^(': missing ), "
                          "unterminated subpattern at position 1 (see 'mqlog consume --help')"),
    (["^orders", "nope", "-g", "g"], 3, "unknown topic 'nope'"),
])
def test_consume_choice_errors(runner: CliRunner, built: Path, args: list[str], code: int,
                               message: str) -> None:
    result = run(runner, "-d", built, "consume", *args)
    assert (result.exit_code, result.stderr) == (code, f"mqlog: error: {message}\n")
    with mqlog.open(built) as log:
        assert log.list_groups() == []
