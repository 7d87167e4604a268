"""Write every command's ``--help`` into docs/cli.md: ``python -m mqlog.cli.docgen``.

Run it (in a checkout, with the package's Python: ``.venv/bin/python -m
mqlog.cli.docgen``) after changing a command, an option or a help text, and
commit docs/cli.md with the change; ``make test`` fails while a block is stale
or missing (tests/cli/test_docgen.py runs ``--check``).

docs/cli.md is hand-written prose around generated blocks, one per command
(and one for ``mqlog`` itself, under "Global options")::

    <!-- BEGIN GENERATED: mqlog topics create --help -->
    ```text
    (the output of ``mqlog topics create --help``)
    ```
    <!-- END GENERATED -->

A run rewrites what is between the markers and nothing else. A command
without a block gets one right under its section's heading (``## `mqlog
topics create NAME```); a command without a section gets a new section at
the end of the file, whose prose is then to be written. The block of a
command that no longer exists is removed. ``--check`` writes nothing: it
lists what is stale, missing or left over, and exits 1 if anything is.

The help is rendered in a child process with a fixed environment (100
columns, no colour, no terminal), because typer reads the terminal's width
and colour settings when it is imported: the blocks come out the same on
every machine, terminal and CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import typer
from typer.core import TyperGroup

import mqlog

#: The file the blocks are in, in a checkout.
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
#: The command that rewrites it, as the messages give it.
REGENERATE = "python -m mqlog.cli.docgen"
#: Width the help is rendered at.
COLUMNS = 100
#: The heading of the section that holds the help of ``mqlog`` itself.
ROOT_SECTION = "## Global options"
#: Environment variables that change how help is rendered (colours, width, a
#: terminal forced on); the child process runs without them.
_RENDERING_VARIABLES = ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE", "GITHUB_ACTIONS",
                        "TTY_COMPATIBLE", "TTY_INTERACTIVE", "_TYPER_FORCE_DISABLE_TERMINAL",
                        "JUPYTER_COLUMNS", "MQLOG_DIR")

_BLOCK = re.compile(r"^<!-- BEGIN GENERATED: (mqlog(?: [a-z][a-z-]*)*) --help -->\n"
                    r".*?^<!-- END GENERATED -->\n", re.M | re.S)
_HEADING = re.compile(r"^## `mqlog ([a-z][a-z -]*?)(?: [A-Z\[].*?)?`[ \t]*$", re.M)


def command_paths() -> list[str]:
    """``mqlog`` and every command under it, as typed: ``mqlog topics create``
    (command groups such as ``mqlog topics`` only list their commands: no block)."""
    from mqlog.cli import app

    paths = ["mqlog"]

    def walk(group: TyperGroup, prefix: str) -> None:
        for name, command in sorted(group.commands.items()):
            if isinstance(command, TyperGroup):
                walk(command, f"{prefix} {name}")
            else:
                paths.append(f"{prefix} {name}")

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    walk(root, "mqlog")
    return paths


def block(path: str, help_text: str) -> str:
    """The generated block of one command."""
    return (f"<!-- BEGIN GENERATED: {path} --help -->\n```text\n{help_text}\n```\n"
            f"<!-- END GENERATED -->\n")


def render_help(paths: Iterable[str]) -> dict[str, str]:
    """``--help`` of each command path, rendered in a child process at COLUMNS
    columns without colour, trailing spaces and blank lines around it removed."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in _RENDERING_VARIABLES}
    source = str(Path(mqlog.__file__).resolve().parents[1])  # the mqlog imported here
    environment.update(COLUMNS=str(COLUMNS), TERMINAL_WIDTH=str(COLUMNS), NO_COLOR="1",
                       TERM="dumb", PYTHONIOENCODING="utf-8",
                       PYTHONPATH=os.pathsep.join(
                           filter(None, [source, environment.get("PYTHONPATH")])))
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from mqlog.cli.docgen import _print_help; "
                               "_print_help(sys.stdin.read().splitlines())"],
        input="\n".join(paths), capture_output=True, text=True, encoding="utf-8",
        env=environment, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"rendering --help failed: {child.stderr.strip()}")
    return json.loads(child.stdout)


def _print_help(paths: list[str]) -> None:
    """In the child process: print ``{path: help}`` of ``paths`` as JSON."""
    from mqlog.cli import app

    helps = {}
    for path in paths:
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = app(args=[*path.split()[1:], "--help"], prog_name="mqlog",
                       standalone_mode=False)
        if code != 0:
            raise RuntimeError(f"{path} --help exited with {code}")
        lines = [line.rstrip() for line in captured.getvalue().splitlines()]
        helps[path] = "\n".join(lines).strip("\n")
    print(json.dumps(helps))


def update(text: str, helps: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` (docs/cli.md) with the blocks of ``helps`` ({command path: help}), and
    one line per block that was stale, missing or left over (none: up to date)."""
    problems = []
    present = set()

    def replace(match: re.Match[str]) -> str:
        path = match.group(1)
        present.add(path)
        if path not in helps:
            problems.append(f"`{path} --help`: a block for a command that does not exist")
            return ""
        fresh = block(path, helps[path])
        if match.group(0) != fresh:
            problems.append(f"`{path} --help`: the block differs from the current help")
        return fresh

    text = _BLOCK.sub(replace, text)
    for path, help_text in helps.items():
        if path not in present:
            text, where = _insert(text, path, block(path, help_text))
            problems.append(f"`{path} --help`: no block (its place: {where})")
    return text, problems


def _insert(text: str, path: str, new_block: str) -> tuple[str, str]:
    """``text`` with ``new_block`` under the heading of ``path``'s section (or in a new
    section at the end), and where it went."""
    if path == "mqlog":
        heading = re.search(rf"^{re.escape(ROOT_SECTION)}[ \t]*$", text, re.M)
    else:
        heading = next((m for m in _HEADING.finditer(text)
                        if f"mqlog {m.group(1)}" == path), None)
    if heading is None:
        section = f"## `{path}`\n\n{new_block}"
        return f"{text.rstrip(chr(10))}\n\n{section}", "a new section at the end"
    end = heading.end() + 1
    return f"{text[:end]}\n{new_block}{text[end:]}", "under its section's heading"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the blocks of docs/cli.md (``--check``: only say what is out of date)."""
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a block is stale, missing or extra")
    parser.add_argument("--doc", type=Path, default=DOC, help=f"default: {DOC}")
    arguments = parser.parse_args(argv)
    text = arguments.doc.read_text(encoding="utf-8")
    updated, problems = update(text, render_help(command_paths()))
    for problem in problems:
        print(f"{arguments.doc}: {problem}{'' if arguments.check else ': rewritten'}",
              file=sys.stderr)
    if arguments.check:
        if problems:
            print(f"run `{REGENERATE}` to rewrite them", file=sys.stderr)
        return 1 if problems else 0
    if updated != text:
        arguments.doc.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
