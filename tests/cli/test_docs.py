"""docs/cli.md documents every command the typer app registers, with its options."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from mqlog.cli import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def commands(group, prefix: str = "") -> dict[str, object]:
    """Every leaf command as 'topics list' -> click command, recursively."""
    found = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found.update(commands(command, path + " "))
        else:
            found[path] = command
    return found


def sections(text: str) -> dict[str, str]:
    """Body of each '## `mqlog ...`' section, keyed by the command after 'mqlog '."""
    parts = re.split(r"^## `mqlog ([a-z ]+?)(?: [A-Z\[].*?)?`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_command_has_a_section_naming_each_option() -> None:
    documented = sections(DOC.read_text())
    registered = commands(typer.main.get_command(app))
    assert sorted(registered) == [
        "consume", "demo", "dlq list", "dlq purge", "dlq redrive", "dlq show", "dump",
        "groups delete", "groups describe", "groups list", "lag", "metrics", "mirror",
        "produce", "queues ack",
        "queues claim", "queues describe", "queues pending", "queues receive", "repair", "replay",
        "seek", "serve", "stats", "tail", "topics alter", "topics compact", "topics create",
        "topics delete", "topics describe", "topics list", "topics retention",
        "topics truncate", "users add", "users list", "users remove", "verify"]
    for name, command in registered.items():
        assert name in documented, f"docs/cli.md has no section for `mqlog {name}`"
        for parameter in command.params:
            for flag in parameter.opts:
                if flag.startswith("--"):
                    assert flag in documented[name], f"`mqlog {name}`: {flag} not documented"


def test_global_options_and_exit_codes_are_documented() -> None:
    text = DOC.read_text()
    for option in ("--dir", "-d", "MQLOG_DIR", "--debug", "--help", "--install-completion",
                   "--show-completion"):
        assert option in text
    for code in (*range(5), 130):
        assert re.search(rf"^\| {code} \|", text, flags=re.M), f"exit code {code}"
