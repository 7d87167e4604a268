"""Bad input said plainly and checked first: a file as the log directory, produce's
target, inverted time windows; topics create --if-not-exists, produce -k, the
--json alias of tail and consume, and compacted topics counted by their records."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog

from ._cli import json_lines, run


@pytest.fixture
def two(log_dir: Path) -> Path:
    """A log with topic ``t`` of 2 partitions, empty."""
    with mqlog.open(log_dir) as log:
        log.create_topic("t", partitions=2)
    return log_dir


@pytest.fixture
def compacted(log_dir: Path) -> tuple[Path, int]:
    """Topic ``c``: 400 offsets, 32 keys, compacted; returns (directory, records present)."""
    with mqlog.open(log_dir) as log:
        log.create_topic("c", cleanup_policy="compact", segment_bytes=4096,
                         min_cleanable_dirty_ratio=0.01)
        for n in range(400):
            log.append("c", 0, [mqlog.Record(b"v%d" % n, key=b"k%d" % (n % 32))])
        log.compact("c")
        return log_dir, sum(1 for _ in log.iter("c", 0))


@pytest.mark.parametrize("args", [
    ["topics", "list"], ["topics", "create", "x"], ["stats", "--interval", "0"], ["lag"],
    ["tail", "t"], ["verify"], ["repair"], ["groups", "list"],
])
def test_a_file_as_the_log_directory_is_bad_input(runner: CliRunner, tmp_path: Path,
                                                  args: list[str]) -> None:
    path = tmp_path / "data"
    path.write_text("not a log\n")
    result = run(runner, "-d", path, *args)
    assert (result.exit_code, result.stderr) == (
        2, f"mqlog: error: {path} is a file, not a log directory\n")
    assert path.read_text() == "not a log\n"


def test_topics_create_if_not_exists(runner: CliRunner, log_dir: Path) -> None:
    first = run(runner, "-d", log_dir, "topics", "create", "t", "-p", "2", "--if-not-exists")
    assert (first.exit_code, first.stdout) == (0, "created topic 't' with 2 partitions\n")
    again = run(runner, "-d", log_dir, "topics", "create", "t", "-p", "2", "--if-not-exists")
    assert (again.exit_code, again.stdout) == (0, "topic 't' already exists with 2 partitions\n")
    [described] = json_lines(run(runner, "-d", log_dir, "topics", "create", "t", "-p", "2",
                                 "--if-not-exists", "--json").stdout)
    assert described["created"] is False and len(described["partitions"]) == 2
    differs = run(runner, "-d", log_dir, "topics", "create", "t", "-p", "3",
                  "--durability", "always", "--if-not-exists")
    assert (differs.exit_code, differs.stderr) == (
        4, "mqlog: error: topic 't' already exists with partitions 2 (asked 3), "
           "durability 'interval' (asked 'always')\n")
    without = run(runner, "-d", log_dir, "topics", "create", "t", "-p", "2")
    assert (without.exit_code, without.stderr) == (
        4, "mqlog: error: topic 't' already exists\n")


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown topic 'nope'"),
    (["t", "-p", "5"], "topic 't' has no partition 5: it has partitions 0..1"),
])
def test_produce_checks_its_target_before_reading_stdin(runner: CliRunner, two: Path,
                                                       args: list[str], message: str) -> None:
    for lines in ("", "a\nb\n"):
        result = run(runner, "-d", two, "produce", *args, input=lines)
        assert (result.exit_code, result.stdout, result.stderr) == (
            3, "", f"mqlog: error: {message}\n")


def test_produce_key_for_every_line_without_its_own(runner: CliRunner, two: Path) -> None:
    result = run(runner, "-d", two, "produce", "t", "-k", "user-1", "--key-sep", "|",
                 input="plain\nown|keyed\n")
    assert result.exit_code == 0, result.output
    with mqlog.open(two) as log:
        got = sorted((bytes(r.key), bytes(r.value)) for p in (0, 1) for r in log.iter("t", p))
    assert got == [(b"own", b"keyed"), (b"user-1", b"plain")]


def test_json_is_the_alias_of_format_json(runner: CliRunner, two: Path) -> None:
    run(runner, "-d", two, "produce", "t", "-p", "0", input="a\nb\n")
    by_format = run(runner, "-d", two, "tail", "t", "--format", "json").stdout
    assert run(runner, "-d", two, "tail", "t", "--json").stdout == by_format
    assert [r["offset"] for r in json_lines(by_format)] == [0, 1]
    consumed = run(runner, "-d", two, "consume", "t", "-g", "g", "--from-beginning",
                   "-n", "2", "--json")
    assert consumed.stdout == by_format
    both = run(runner, "-d", two, "tail", "t", "--json", "--format", "raw")
    assert (both.exit_code, both.stderr) == (
        2, "mqlog: error: --json and --format raw exclude each other\n")


def test_replay_rejects_a_window_that_ends_before_it_starts(runner: CliRunner,
                                                           two: Path) -> None:
    run(runner, "-d", two, "produce", "t", input="a\n")
    result = run(runner, "-d", two, "replay", "t", "--since", "1h", "--until", "2h",
                 "--to-topic", "u")
    assert result.exit_code == 2
    assert result.stderr.startswith("mqlog: error: the time window ends before it starts: "
                                    "--until is ")
    with mqlog.open(two) as log:
        assert "u" not in log.topics()  # bad input changes nothing


def test_compacted_topic_counts_records_not_offsets(runner: CliRunner,
                                                    compacted: tuple[Path, int]) -> None:
    path, present = compacted
    [stats] = json_lines(run(runner, "-d", path, "stats", "--interval", "0", "--json").stdout)
    assert stats["records"] == present
    [described] = json_lines(run(runner, "-d", path, "topics", "describe", "c", "--json").stdout)
    assert [p["record_count"] for p in described["partitions"]] == [present]
    table = run(runner, "-d", path, "topics", "describe", "c").stdout.splitlines()
    assert table[2].split() == ["0", "0", "400", str(present), *table[2].split()[4:]]
    replay = run(runner, "-d", path, "replay", "c", "--from-offset", "0", "--to-topic", "c2")
    assert replay.exit_code == 0, replay.output
    assert f"{present}/{present}" in replay.stderr and "/400" not in replay.stderr
