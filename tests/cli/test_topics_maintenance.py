"""``mqlog topics truncate|retention|compact``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog

from ._cli import json_lines, run

T = "events"


@pytest.fixture
def log_path(log_dir: Path) -> Path:
    """Topic T: 2 partitions, 10 and 4 records of 1000 bytes, 3 per 4096-byte segment;
    topic "kv": compacted, 12 records over 3 keys."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic(T, partitions=2, segment_bytes=4096)
        for _ in range(10):
            log.append(T, 0, [b"r" * 1000])
        for _ in range(4):
            log.append(T, 1, [b"r" * 1000])
        log.create_topic("kv", segment_bytes=4096, cleanup_policy="compact",
                         min_cleanable_dirty_ratio=0.01)
        for offset in range(12):
            log.append("kv", 0, [mqlog.Record(b"v" * 1000, key=b"k%d" % (offset % 3))])
    return log_dir


def starts(path: Path, topic: str = T) -> list[int]:
    with mqlog.open(path, read_only=True) as log:
        return [p.start_offset for p in log.describe_topic(topic).partitions]


def snapshot(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_truncate_one_partition(runner: CliRunner, log_path: Path) -> None:
    result = run(runner, "-d", log_path, "topics", "truncate", T, "-p", "0", "--before", "7")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{T}/0: start offset 0 -> 7\n"
    assert starts(log_path) == [7, 0]


def test_truncate_every_partition_to_its_end(runner: CliRunner, log_path: Path) -> None:
    result = run(runner, "-d", log_path, "topics", "truncate", T, "--before", "-1", "--json")
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout) == [
        {"topic": T, "partition": 0, "previous_start_offset": 0, "start_offset": 10},
        {"topic": T, "partition": 1, "previous_start_offset": 0, "start_offset": 4}]
    assert starts(log_path) == [10, 4]


def test_truncate_below_the_start_says_unchanged(runner: CliRunner, log_path: Path) -> None:
    run(runner, "-d", log_path, "topics", "truncate", T, "-p", "0", "--before", "5")
    result = run(runner, "-d", log_path, "topics", "truncate", T, "-p", "0", "--before", "2")
    assert result.exit_code == 0
    assert result.stdout == f"{T}/0: start offset 5 (unchanged)\n"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--before", "5"], 3, f"cannot delete records before offset 5 of {T}/1: its end offset "
                           "is 4"),
    (["--before", "11", "-p", "0"], 3, "its end offset is 10"),
    (["--before", "1", "-p", "2"], 3, f"topic '{T}' has no partition 2 (it has 2)"),
    (["--before", "-2"], 2, "--before must be an offset or -1, not -2"),
    (["--before", "x"], 2, "Invalid value"),
    ([], 2, "Missing option '--before'"),
])
def test_truncate_bad_input_changes_nothing(runner: CliRunner, log_path: Path, args: list[str],
                                            code: int, message: str) -> None:
    with mqlog.open(log_path) as log:  # partitions opened once: preallocation done
        log.describe_topic(T)
    before = snapshot(log_path)
    result = run(runner, "-d", log_path, "topics", "truncate", T, *args)
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(log_path) == before


def test_truncate_an_unknown_topic(runner: CliRunner, log_path: Path) -> None:
    result = run(runner, "-d", log_path, "topics", "truncate", "nope", "--before", "1")
    assert (result.exit_code, result.stderr) == (3, "mqlog: error: unknown topic 'nope'\n")


def test_retention_runs_now_and_says_what_it_deleted(runner: CliRunner,
                                                     log_path: Path) -> None:
    with mqlog.open(log_path, apply_retention=False) as log:  # not applied yet
        log.alter_topic(T, retention_bytes=5000)
    result = run(runner, "-d", log_path, "topics", "retention", T)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{T}: 1 segment deleted (start offsets 0: 0 -> 3)\n"
    assert starts(log_path) == [3, 0]
    again = run(runner, "-d", log_path, "topics", "retention", "--json")
    assert json_lines(again.stdout) == [
        {"topic": T, "segments_deleted": 0, "start_offsets": starts(log_path)},
        {"topic": "kv", "segments_deleted": 0, "start_offsets": [0]}]


def test_compact_runs_now(runner: CliRunner, log_path: Path) -> None:
    result = run(runner, "-d", log_path, "topics", "compact", "--json")
    assert result.exit_code == 0, result.output
    [line] = json_lines(result.stdout)
    assert line["topic"] == "kv" and line["segments_rewritten"] > 0
    with mqlog.open(log_path, read_only=True) as log:
        assert log.describe_topic("kv").partitions[0].end_offset == 12
    human = run(runner, "-d", log_path, "topics", "compact", "kv")
    assert human.stdout == "kv: 0 segments rewritten\n"


def test_compact_a_topic_that_is_not_compacted(runner: CliRunner, log_path: Path) -> None:
    result = run(runner, "-d", log_path, "topics", "compact", T)
    assert result.exit_code == 2
    assert result.stderr == (f"mqlog: error: topic '{T}' is not compacted (cleanup policy "
                             "'delete')\n")
