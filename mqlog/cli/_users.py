"""``mqlog users add|remove|list``: the users file that ``mqlog serve`` checks
SASL logins against (PLAIN and SCRAM-SHA-256).

The file is named by ``--file`` or ``MQLOG_USERS_FILE``, never defaulted into
the log directory: credentials do not belong with data that is copied,
shared between accounts and backed up, and ``mqlog serve`` takes the same
variable. The file holds SCRAM-SHA-256 salted keys only, never a password,
and is written whole (temporary file, fsync, rename) with mode 0600.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mqlog.cli._app import EXIT_NOT_FOUND, EXIT_USAGE, CliError, app
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json
from mqlog.server.auth import (
    DEFAULT_ITERATIONS,
    MAX_ITERATIONS,
    MIN_ITERATIONS,
    Credentials,
    check_iterations,
    check_user_name,
    load_users,
    remove_user,
    set_user,
)

users_app = typer.Typer(
    help="Manage the users file of mqlog serve (SASL PLAIN and SCRAM-SHA-256 logins).",
    no_args_is_help=True)
app.add_typer(users_app, name="users")

FileOption = Annotated[Path, typer.Option(
    "--file", "-f", envvar="MQLOG_USERS_FILE", show_envvar=True, show_default=False,
    help="The users file (JSON; created by the first 'users add').")]
NameArgument = Annotated[str, typer.Argument(help="User name.", show_default=False)]


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_password(password_stdin: bool) -> str:
    """The new password: the first line of stdin, or asked twice without echo."""
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: stdin is empty", EXIT_USAGE)
        return line.removesuffix("\n").removesuffix("\r")
    if not _stdin_is_terminal():
        raise CliError("no terminal to ask the password on: pipe it with --password-stdin",
                       EXIT_USAGE)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def add(
    name: NameArgument,
    file: FileOption,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin instead "
                                 "of asking for it (twice, without echo).")] = False,
    iterations: Annotated[int, typer.Option(
        "--iterations", help=f"PBKDF2 iterations of the SCRAM-SHA-256 keys "
                             f"({MIN_ITERATIONS}..{MAX_ITERATIONS}); each PLAIN login "
                             f"costs the server one derivation.")] = DEFAULT_ITERATIONS,
) -> None:
    """Add a user, or give an existing user a new password.

    The next login uses it (a running server reads the file again when it
    changes); connections already logged in stay."""
    check_user_name(name)
    check_iterations(iterations)
    credentials = Credentials.from_password(_read_password(password_stdin), iterations)
    replaced = set_user(file, name, credentials)
    console.print(f"{'replaced' if replaced else 'added'} user {name} in {file}",
                  markup=False, soft_wrap=True)


@users_app.command("remove")
def remove(name: NameArgument, file: FileOption) -> None:
    """Remove a user.

    The next login as that user fails; connections already logged in stay
    until they close."""
    if not remove_user(file, name):
        raise CliError(f"no user {name!r} in {file}", EXIT_NOT_FOUND)
    console.print(f"removed user {name} from {file}", markup=False, soft_wrap=True)


@users_app.command("list")
def list_users(file: FileOption, json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print the user names, one per line; --json adds each one's iteration count."""
    users = load_users(file)
    for name in sorted(users):
        if json_output:
            emit_json({"name": name, "iterations": users[name].iterations})
        else:
            console.print(name, markup=False, soft_wrap=True)
