"""mqlog tail and mqlog repair on a log with a damaged batch: tail prints the intact
records and reports the damage on stderr; repair is a dry run unless --execute,
after which verify passes and every intact record is still there."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ._cli import run
from ._helpers import (
    BATCHES,
    RECORDS_PER_BATCH,
    TOPIC,
    batch_position,
    flip_byte,
    partition_dir,
    segment_file,
    snapshot,
)

#: The damaged batch: the third of segment 0, offsets 10..14.
DAMAGED = range(10, 15)
ALL = BATCHES * RECORDS_PER_BATCH


def _damage(root: Path) -> None:
    flip_byte(segment_file(root, 0), batch_position(2) + 100)


def _offsets(stdout: str) -> list[int]:
    return [int(line.split()[0].split(":")[1]) for line in stdout.splitlines()
            if line.startswith("0:")]


def test_tail_prints_the_intact_records_and_reports_the_damage(runner: CliRunner,
                                                               built: Path) -> None:
    _damage(built)
    result = run(runner, "-d", built, "tail", TOPIC, "--from-beginning")
    assert result.exit_code == 1
    assert _offsets(result.stdout) == [n for n in range(ALL) if n not in DAMAGED]
    assert "offsets 10..14 cannot be read" in result.stderr
    assert "mqlog repair" in result.stderr


def test_repair_is_a_dry_run_by_default(runner: CliRunner, built: Path) -> None:
    _damage(built)
    before = snapshot(built)
    result = run(runner, "-d", built, "repair")
    assert result.exit_code == 1, result.stderr
    assert "offsets 10..14" in result.stdout and "DRY RUN" in result.stdout
    assert snapshot(built) == before


def test_repair_execute_then_verify_passes(runner: CliRunner, built: Path) -> None:
    _damage(built)
    result = run(runner, "-d", built, "repair", "--execute", "--json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["first_offset"], r["next_offset"]) for r in lines if r["type"] == "range"] == [
        (10, 15)]
    [quarantine] = lines[-1]["quarantine_files"]
    assert Path(quarantine).parent == partition_dir(built)
    assert run(runner, "-d", built, "verify").exit_code == 0
    result = run(runner, "-d", built, "tail", TOPIC, "--from-beginning")
    assert result.exit_code == 0, result.stderr
    assert _offsets(result.stdout) == [n for n in range(ALL) if n not in DAMAGED]
    again = run(runner, "-d", built, "repair")
    assert again.exit_code == 0 and "nothing to repair" in again.stdout


def test_repair_of_an_unknown_topic_is_not_found(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "repair", "--topic", "nope")
    assert result.exit_code == 3
