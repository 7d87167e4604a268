"""Option parsing shared by the commands, the app's usage errors and shell completion."""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mqlog.cli._options import Moment, parse_datetime, parse_duration, parse_moment, parse_rate
from mqlog.cli._output import format_age, format_rate

from ._cli import MQLOG, run


@pytest.mark.parametrize(
    ("text", "ms"),
    [("15m", 900_000), ("2h", 7_200_000), ("1d", 86_400_000), ("1w", 604_800_000),
     ("1h30m", 5_400_000), ("500ms", 500), ("2.5s", 2500), (" 10S ", 10_000), ("0s", 0)],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == datetime.timedelta(milliseconds=ms)


@pytest.mark.parametrize("text", ["", "15", "m", "15 m", "1y", "-5m", "1h-30m", "15min"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a duration: use a number and a unit"):
        parse_duration(text)


def test_datetimes() -> None:
    utc = datetime.UTC
    assert parse_datetime("2026-11-22T17:15:00Z") == datetime.datetime(2026, 11, 22, 17, 15,
                                                                       tzinfo=utc)
    assert parse_datetime("2026-11-22 18:15:00+01:00").astimezone(utc) == (
        datetime.datetime(2026, 11, 22, 17, 15, tzinfo=utc))
    assert parse_datetime("2026-11-22") == datetime.datetime(2026, 11, 22)  # local time
    with pytest.raises(typer.BadParameter, match="'22.11.2026' is not an ISO 8601 date"):
        parse_datetime("22.11.2026")


def test_moments_and_rates() -> None:
    assert parse_moment("5m") == Moment(ago=datetime.timedelta(minutes=5))
    assert parse_moment("5m").epoch_ms(1_000_000) == 700_000
    at = parse_moment("1970-01-01T00:00:01Z")
    assert at.epoch_ms(0) == 1000
    with pytest.raises(typer.BadParameter, match="is neither a duration"):
        parse_moment("soon")
    assert (parse_rate("500"), parse_rate("2.5/s")) == (500.0, 2.5)
    for bad in ("0", "fast", "5/m", "-1"):
        with pytest.raises(typer.BadParameter, match="is not a rate"):
            parse_rate(bad)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "-"), (850, "850ms"), (12_340, "12.3s"), (303_000, "5m03s"),
     (7_500_000, "2h05m"), (273_600_000, "3d04h")],
)
def test_format_age(ms: int | None, text: str) -> None:
    assert format_age(ms) == text


def test_format_rate() -> None:
    assert (format_rate(None), format_rate(1234.6)) == ("-", "1,235/s")


def test_usage_errors_are_one_line_with_exit_2(runner: CliRunner, built: Path) -> None:
    result = run(runner, "-d", built, "bogus")
    assert (result.exit_code, result.stderr) == (
        2, "mqlog: error: No such command 'bogus'. (see 'mqlog --help')\n")
    result = run(runner, "-d", built, "topics", "describe")
    assert (result.exit_code, result.stderr) == (
        2, "mqlog: error: Missing argument 'name'. (see 'mqlog topics describe --help')\n")
    result = run(runner, "-d", built, "groups")
    assert result.exit_code == 2 and "Usage: mqlog groups" in result.stdout + result.stderr


def test_shell_completion(tmp_path: Path) -> None:
    """typer's completion: the script for bash, and completions of command names."""
    # typer's switch for tests: --show-completion takes the shell instead of detecting it
    named = dict(os.environ, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    script = subprocess.run([MQLOG, "--show-completion", "bash"], capture_output=True,
                            text=True, env=named, timeout=60)
    assert script.returncode == 0
    assert "complete -o default -F _mqlog_completion mqlog" in script.stdout
    env = dict(os.environ, _MQLOG_COMPLETE="complete_bash", COMP_WORDS="mqlog see",
               COMP_CWORD="1")
    words = subprocess.run([MQLOG], capture_output=True, text=True, env=env, timeout=60)
    assert words.stdout.split() == ["seek"]
