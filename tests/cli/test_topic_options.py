"""``topics create`` and ``topics alter`` have one option per TopicConfig field, made
from the field: its flag, type, help text and TopicConfig's validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import mqlog
from mqlog.cli import _topic_options, app
from mqlog.cli._app import EXIT_USAGE
from mqlog.cli._topic_options import flag
from mqlog.logstore import TopicConfig
from mqlog.logstore.config import TopicSetting, topic_settings
from tests._directory import snapshot

from ._cli import json_lines, run

SETTINGS = topic_settings()
TOPIC = "jobs"


def command(path: str) -> Any:
    group = typer.main.get_command(app)
    for name in path.split():
        group = group.commands[name]
    return group


def other_value(setting: TopicSetting) -> Any:
    """A valid value of ``setting`` that is not its default."""
    if setting.choices:
        return next(choice for choice in setting.choices if choice != setting.default)
    if setting.type is bool:
        return not setting.default
    if setting.type is float:
        return 0.25
    return 3 * 4096 if setting.default is None else setting.default + 4096


def cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-1" if value is None else str(value)


def bad_values(setting: TopicSetting) -> list[str]:
    """Values the option's type or TopicConfig rejects."""
    if setting.choices or setting.type is bool:
        return ["bogus"]
    return ["-5", "abc"]


def test_every_topic_config_field_has_a_create_and_an_alter_option() -> None:
    assert [s.name for s in SETTINGS] == [f.name for f in dataclasses.fields(TopicConfig)]
    for path in ("topics create", "topics alter"):
        options = {opt: param for param in command(path).params for opt in param.opts}
        for setting in SETTINGS:
            assert flag(setting) in options, f"`mqlog {path}` has no {flag(setting)}"
            assert setting.help in options[flag(setting)].help, "help text from TopicConfig"
    # the two that the hand-written options missed, and the spellings scripts use
    for spelling in ("--message-ttl-ms", "--dead-letter-expired", "--segment-bytes",
                     "--retention-ms", "--cleanup-policy", "--min-cleanable-dirty-ratio"):
        assert spelling in {s for p in command("topics create").params for s in p.opts}


def test_create_help_gives_the_defaults() -> None:
    create = {param.name: param.help for param in command("topics create").params}
    assert create["segment_bytes"].endswith("Default: 134217728.")
    assert create["durability"].endswith("Default: interval.")
    assert create["retention_ms"].endswith("-1: keep everything (the default).")
    assert create["dead_letter_expired"].endswith("Default: no.")
    alter = {param.name: param.help for param in command("topics alter").params}
    assert not any("default" in alter[s.name] for s in SETTINGS)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_values_round_trip_through_create_and_alter(runner: CliRunner, tmp_path: Path,
                                                    setting: TopicSetting) -> None:
    value = other_value(setting)
    created = run(runner, "-d", tmp_path, "topics", "create", TOPIC, flag(setting),
                  cli_value(value), "--json")
    assert created.exit_code == 0, created.stderr
    (document,) = json_lines(created.stdout)
    assert document["config"] == {**dataclasses.asdict(TopicConfig()), setting.name: value}
    with mqlog.open(tmp_path) as log:
        assert getattr(log.describe_topic(TOPIC).config, setting.name) == value

    back = setting.default
    altered = run(runner, "-d", tmp_path, "topics", "alter", TOPIC, flag(setting),
                  cli_value(back), "--json")
    assert altered.exit_code == 0, altered.stderr
    (document,) = json_lines(altered.stdout)
    assert document["config"] == dataclasses.asdict(TopicConfig())


def test_alter_changes_only_the_options_given(runner: CliRunner, tmp_path: Path) -> None:
    with mqlog.open(tmp_path) as log:
        log.create_topic(TOPIC, message_ttl_ms=5000, dead_letter_expired=True,
                         retention_bytes=10**9, cleanup_policy="compact")
    result = run(runner, "-d", tmp_path, "topics", "alter", TOPIC, "--retention-ms", "60000",
                 "--dead-letter-expired", "no")
    assert result.exit_code == 0, result.stderr
    with mqlog.open(tmp_path) as log:
        assert log.describe_topic(TOPIC).config == TopicConfig(
            message_ttl_ms=5000, dead_letter_expired=False, retention_bytes=10**9,
            cleanup_policy="compact", retention_ms=60000)
    unset = run(runner, "-d", tmp_path, "topics", "alter", TOPIC, "--message-ttl-ms", "-1")
    assert unset.exit_code == 0 and "message_ttl_ms = None" in unset.stdout


@pytest.mark.parametrize(("setting", "bad"),
                         [(s, bad) for s in SETTINGS for bad in bad_values(s)],
                         ids=lambda v: v.name if isinstance(v, TopicSetting) else v)
def test_bad_values_exit_2_and_change_nothing(runner: CliRunner, tmp_path: Path,
                                              setting: TopicSetting, bad: str) -> None:
    new = tmp_path / "new"
    created = run(runner, "-d", new, "topics", "create", TOPIC, flag(setting), bad)
    assert created.exit_code == EXIT_USAGE, created.stdout
    assert created.stderr.startswith("mqlog: error: ") and len(created.stderr.splitlines()) == 1
    assert not new.exists()

    existing = tmp_path / "log"
    with mqlog.open(existing) as log:
        log.create_topic(TOPIC)
    before = snapshot(existing)
    altered = run(runner, "-d", existing, "topics", "alter", TOPIC, "-p", "2", flag(setting),
                  bad)
    assert altered.exit_code == EXIT_USAGE, altered.stdout
    assert altered.stderr.startswith("mqlog: error: ") and len(altered.stderr.splitlines()) == 1
    assert snapshot(existing) == before


def test_a_range_error_names_the_setting(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "-d", tmp_path, "topics", "create", TOPIC, "--message-ttl-ms", "0")
    assert (result.exit_code, result.stderr) == (
        EXIT_USAGE, "mqlog: error: message_ttl_ms must be >= 1, not 0\n")


def test_a_field_added_to_topic_config_is_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """The options come from topic_settings() alone: a new setting is a new option."""
    added = TopicSetting("compression_level", int, (), True, None, "How hard to squeeze.",
                         "no compression")
    monkeypatch.setattr(_topic_options, "topic_settings", lambda: (*SETTINGS, added))
    seen = {}
    demo = typer.Typer()

    @demo.command()
    @_topic_options.topic_config_options(show_defaults=True)
    def create(name: str, *, config: dict[str, object]) -> None:
        seen.update(config)

    result = CliRunner().invoke(demo, ["x", "--compression-level", "3", "--flush-ms", "7"])
    assert result.exit_code == 0, result.output
    assert seen == {"compression_level": 3, "flush_ms": 7}
    assert CliRunner().invoke(demo, ["x", "--compression-level", "-1"]).exit_code == 0
    assert seen["compression_level"] is None
    assert "How hard to squeeze. -1: no compression (the default)." in " ".join(
        CliRunner().invoke(demo, ["--help"], env={"COLUMNS": "300"}).output.split())
