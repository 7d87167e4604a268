"""docs/cli.md's ``--help`` blocks: up to date (what ``make test`` checks), and how
``python -m mqlog.cli.docgen`` rewrites them around the hand-written prose."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqlog.cli import docgen
from mqlog.cli.docgen import REGENERATE, block, command_paths, render_help, update

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_every_command_has_an_up_to_date_help_block_in_docs_cli_md(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Also where the terminal would change the rendering (narrow, colours forced):
    the help is rendered at a fixed width without colour whatever the environment."""
    for name, value in (("COLUMNS", "40"), ("TERMINAL_WIDTH", "40"), ("FORCE_COLOR", "1"),
                        ("MQLOG_DIR", "/elsewhere")):
        monkeypatch.setenv(name, value)
    paths = command_paths()
    assert {"mqlog", "mqlog tail", "mqlog topics create", "mqlog dlq redrive"} <= set(paths)
    _, problems = update(DOC.read_text(encoding="utf-8"), render_help(paths))
    assert not problems, "\n".join(
        [f"docs/cli.md: {p}" for p in problems] + [f"run `{REGENERATE}` to rewrite them"])


PROSE = """# CLI

## Global options

Options before the command.

## `mqlog tail TOPIC`

Prints records.

## `mqlog topics create NAME`

Creates a topic.

{create}
Exit codes: 0.
"""


def test_a_stale_block_is_named_and_rewritten_and_the_prose_kept() -> None:
    helps = {"mqlog": "ROOT", "mqlog tail": "TAIL", "mqlog topics create": "CREATE v2"}
    current = update(PROSE.format(create=""), helps)[0]
    stale = current.replace("CREATE v2", "CREATE v1")
    text, problems = update(stale, helps)
    assert problems == ["`mqlog topics create --help`: the block differs from the current help"]
    assert text == current
    assert update(text, helps) == (text, [])  # a second run changes nothing


def test_a_missing_block_goes_under_its_heading_or_in_a_new_section() -> None:
    helps = {"mqlog": "ROOT", "mqlog tail": "TAIL", "mqlog topics create": "CREATE",
             "mqlog topics truncate": "TRUNCATE"}
    original = PROSE.format(create=block("mqlog topics create", "CREATE"))
    text, problems = update(original, helps)
    assert problems == [
        "`mqlog --help`: no block (its place: under its section's heading)",
        "`mqlog tail --help`: no block (its place: under its section's heading)",
        "`mqlog topics truncate --help`: no block (its place: a new section at the end)"]
    assert "## Global options\n\n" + block("mqlog", "ROOT") + "\nOptions before" in text
    assert "## `mqlog tail TOPIC`\n\n" + block("mqlog tail", "TAIL") + "\nPrints records." \
        in text
    assert text.endswith("Exit codes: 0.\n\n## `mqlog topics truncate`\n\n"
                         + block("mqlog topics truncate", "TRUNCATE"))
    assert text.count("BEGIN GENERATED: mqlog topics create --help") == 1
    for line in original.splitlines():
        assert line in text.splitlines()


def test_the_block_of_a_removed_command_is_removed() -> None:
    helps = {"mqlog": "ROOT", "mqlog tail": "TAIL"}
    original = PROSE.format(create=block("mqlog topics create", "CREATE"))
    text, problems = update(original, helps)
    assert "`mqlog topics create --help`: a block for a command that does not exist" in problems
    assert "CREATE" not in text and "Creates a topic.\n\n\nExit codes: 0." in text


def test_main_checks_or_rewrites_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(docgen, "command_paths", lambda: ["mqlog", "mqlog tail",
                                                          "mqlog topics create"])
    monkeypatch.setattr(docgen, "render_help", lambda paths: {p: p.upper() for p in paths})
    doc = tmp_path / "cli.md"
    doc.write_text(PROSE.format(create=""))
    assert docgen.main(["--check", "--doc", str(doc)]) == 1
    assert doc.read_text() == PROSE.format(create="")  # --check writes nothing
    errors = capsys.readouterr().err
    assert "`mqlog tail --help`: no block" in errors
    assert f"run `{REGENERATE}` to rewrite them" in errors
    assert docgen.main(["--doc", str(doc)]) == 0
    assert "MQLOG TOPICS CREATE" in doc.read_text()
    assert docgen.main(["--check", "--doc", str(doc)]) == 0
