"""``--help`` of every command: flags are shown without a value."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from mqlog.cli import app

from ._cli import run


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The words of every command and group under ``group``, and its own ``()``."""
    paths = [prefix]
    for name, command in getattr(group, "commands", {}).items():
        paths.extend(command_paths(command, (*prefix, name)))
    return paths


def test_no_help_shows_a_flag_as_taking_a_value(runner: CliRunner) -> None:
    paths = command_paths(typer.main.get_command(app))
    assert ("topics", "create") in paths and ("tail",) in paths and ("dlq",) in paths
    for path in paths:
        result = run(runner, *path, "--help", env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.stderr)
        assert "--help" in result.stdout
        assert "<bool>" not in result.stdout, f"`mqlog {' '.join(path)} --help` shows <bool>"
