"""The typer application; commands are registered by the modules beside this one.

Errors are turned into exit codes in one place, :meth:`_Group.invoke`, which
wraps every command: an expected failure (an ``MqlogError`` or an ``OSError``)
becomes one line on stderr and a documented exit code, so scripts can tell
"damage found" from "no such topic" from "bad option". ``--debug`` adds the
traceback. Anything else is a bug and keeps Python's traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import mqlog
from mqlog.cli._output import err_console, one_line
from mqlog.errors import (
    ConfigError,
    InvalidTopicError,
    MqlogError,
    UnknownPartitionError,
    UnknownTopicError,
)

#: A check failed (verify or dump found damage, the demo lost a record), or the
#: user declined a confirmation.
EXIT_FAILED = 1
#: Bad command line: unknown option, bad value, invalid topic name or config.
EXIT_USAGE = 2
#: The log directory, file, topic or partition does not exist.
EXIT_NOT_FOUND = 3
#: Any other mqlog or operating-system error.
EXIT_ERROR = 4

DEFAULT_DIR = "mqlog-data"


def exit_code_for(error: BaseException) -> int:
    """The documented exit code of an expected failure."""
    if isinstance(error, (ConfigError, InvalidTopicError)):
        return EXIT_USAGE
    if isinstance(error, (FileNotFoundError, NotADirectoryError, UnknownTopicError,
                          UnknownPartitionError)):
        return EXIT_NOT_FOUND
    return EXIT_ERROR


@dataclasses.dataclass(frozen=True)
class Settings:
    """The global options, kept on the typer context for the commands."""

    directory: Path
    debug: bool = False


class _Group(TyperGroup):
    """The root command group: maps expected errors to a message and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (MqlogError, OSError) as error:
            if isinstance(ctx.obj, Settings) and ctx.obj.debug:
                err_console.print_exception()
            err_console.print(f"mqlog: error: {one_line(error)}", markup=False, soft_wrap=True)
            raise typer.Exit(exit_code_for(error)) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Option(
        "--dir", "-d", envvar="MQLOG_DIR", show_envvar=True,
        help="The log directory.",
    )] = Path(DEFAULT_DIR),
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of an error too.",
    )] = False,
) -> None:
    """mqlog: a Kafka-style partitioned log, embedded and multi-process."""
    ctx.obj = Settings(directory, debug)


def settings(ctx: typer.Context) -> Settings:
    """The global options of this invocation (set by the app callback, which always runs)."""
    found = ctx.find_object(Settings)
    assert found is not None, "the app callback did not run"
    return found


@contextmanager
def open_log(ctx: typer.Context, create: bool = False) -> Iterator[mqlog.Log]:
    """Open the --dir log for one command; a missing directory is "not found"
    (exit 3) unless ``create``."""
    directory = settings(ctx).directory
    if not create and not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist",
                                os.fspath(directory))
    with mqlog.open(directory, create=create) as log:
        yield log


def main() -> None:
    """Entry point of the ``mqlog`` console script."""
    app(prog_name="mqlog")
