"""mqlog users add|remove|list: the users file of mqlog serve from the command line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqlog.cli import _users
from mqlog.server.auth import UserStore, load_users

from ._cli import json_lines, run


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return tmp_path / "users.json"


def add(runner: CliRunner, users_file: Path, name: str, password: str, *options: str):
    return run(runner, "users", "add", name, "--file", users_file, "--password-stdin",
               *options, input=password + "\n")


def test_add_list_remove(runner: CliRunner, users_file: Path) -> None:
    result = add(runner, users_file, "alice", "wonderland")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"added user alice in {users_file}\n"
    assert add(runner, users_file, "bob", "builder", "--iterations", "5000").exit_code == 0
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    listed = run(runner, "users", "list", "--file", users_file)
    assert listed.exit_code == 0 and listed.stdout == "alice\nbob\n"
    listed = run(runner, "users", "list", "--file", users_file, "--json")
    assert json_lines(listed.stdout) == [{"name": "alice", "iterations": 4096},
                                         {"name": "bob", "iterations": 5000}]
    store = UserStore(users_file)
    assert store.check_password("alice", "wonderland")
    assert store.check_password("bob", "builder")
    result = run(runner, "users", "remove", "alice", "--file", users_file)
    assert result.exit_code == 0 and result.stdout == f"removed user alice from {users_file}\n"
    assert list(load_users(users_file)) == ["bob"]


def test_add_again_replaces_the_password(runner: CliRunner, users_file: Path) -> None:
    add(runner, users_file, "alice", "wonderland")
    result = add(runner, users_file, "alice", "looking glass\r")
    assert result.exit_code == 0 and result.stdout.startswith("replaced user alice")
    store = UserStore(users_file)
    assert store.check_password("alice", "looking glass")
    assert not store.check_password("alice", "wonderland")


def test_the_file_comes_from_the_environment(runner: CliRunner, users_file: Path) -> None:
    result = run(runner, "users", "add", "alice", "--password-stdin", input="x\n",
                 env={"MQLOG_USERS_FILE": str(users_file)})
    assert result.exit_code == 0, result.output
    assert list(load_users(users_file)) == ["alice"]


def test_the_prompt_asks_twice_without_echo(runner: CliRunner, users_file: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_users, "_stdin_is_terminal", lambda: True)
    result = run(runner, "users", "add", "alice", "--file", users_file,
                 input="wonderland\nwonderland\n")
    assert result.exit_code == 0, result.output
    assert "wonderland" not in result.output
    assert UserStore(users_file).check_password("alice", "wonderland")


@pytest.mark.parametrize(("args", "stdin", "code", "message"), [
    (["add", "alice", "--password-stdin"], "", 2, "--password-stdin: stdin is empty"),
    (["add", "alice", "--password-stdin"], "\n", 2, "the password is empty"),
    (["add", "a b", "--password-stdin"], "x\n", 2, "names cannot hold whitespace"),
    (["add", "alice", "--password-stdin", "--iterations", "10"], "x\n", 2,
     "iterations 10 is outside 4096..1000000"),
    (["remove", "alice"], None, 2, "does not exist"),
    (["list"], None, 2, "does not exist"),
])
def test_bad_input_is_one_line_and_writes_nothing(runner: CliRunner, users_file: Path,
                                                  args: list[str], stdin: str | None,
                                                  code: int, message: str) -> None:
    result = run(runner, "users", *args, "--file", users_file, input=stdin)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("mqlog: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not users_file.exists()


def test_no_terminal_and_no_password_stdin(runner: CliRunner, users_file: Path) -> None:
    result = run(runner, "users", "add", "alice", "--file", users_file, input="x\n")
    assert result.exit_code == 2
    assert "pipe it with --password-stdin" in result.stderr
    assert not users_file.exists()


def test_remove_an_unknown_user_is_not_found(runner: CliRunner, users_file: Path) -> None:
    add(runner, users_file, "alice", "wonderland")
    before = users_file.read_bytes()
    result = run(runner, "users", "remove", "bob", "--file", users_file)
    assert result.exit_code == 3
    assert "no user 'bob'" in result.stderr
    assert users_file.read_bytes() == before


def test_a_damaged_file_is_named(runner: CliRunner, users_file: Path) -> None:
    users_file.write_text('{\n  "alice": {"salt": "x"}\n}\n')
    result = run(runner, "users", "list", "--file", users_file)
    assert result.exit_code == 2
    assert f"users file {users_file}, line 2, user 'alice': missing" in result.stderr
    result = add(runner, users_file, "bob", "builder")
    assert result.exit_code == 2
    assert users_file.read_text() == '{\n  "alice": {"salt": "x"}\n}\n'


def test_file_is_required(runner: CliRunner) -> None:
    result = run(runner, "users", "list", env={"MQLOG_USERS_FILE": None})
    assert result.exit_code == 2
    assert "Missing option '--file'" in result.stderr
