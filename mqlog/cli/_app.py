"""The typer application; commands are registered by the modules beside this one.

Errors are turned into exit codes in one place, :meth:`_Group.invoke`, which
wraps every command: an expected failure (an ``MqlogError``, an ``OSError``, a
:class:`CliError` or a usage error of a subcommand) becomes one line on
stderr and a documented exit code, so scripts can tell "damage found" from
"no such topic" from "bad option". ``--debug`` adds the traceback. Anything
else is a bug and keeps Python's traceback. A closed stdout (``| head``) stops
the command quietly with exit code 141, as a tool killed by SIGPIPE reports.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import mqlog
from mqlog.cli._options import hide_flag_types
from mqlog.cli._output import err_console, one_line
from mqlog.cluster import is_cluster_url
from mqlog.errors import (
    ConfigError,
    InvalidTopicError,
    MqlogError,
    OffsetOutOfRangeError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsupportedError,
)

try:
    from typer._click import Context
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # typer before it vendored click (mypy checks against a newer one)
    from click import Context  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
    from click.exceptions import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
        NoArgsIsHelpError,
        UsageError,
    )

#: A check failed (verify or dump found damage, the demo lost a record, a lag is
#: over --max-lag, a replay command failed), or the user declined a confirmation.
EXIT_FAILED = 1
#: Bad command line: unknown option, bad value, invalid topic name or config.
EXIT_USAGE = 2
#: The log directory, file, topic, partition, group or offset does not exist.
EXIT_NOT_FOUND = 3
#: Any other mqlog or operating-system error.
EXIT_ERROR = 4
#: The reader of stdout went away (``mqlog tail -f T | head``): 128 + SIGPIPE, as
#: ``cat`` or ``seq`` report in the shell; a command that wrote all its output
#: before the reader left exits 0.
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
#: Interrupted with Ctrl-C before the end of a finite job (as shells report SIGINT).
EXIT_INTERRUPTED = 130

DEFAULT_DIR = "mqlog-data"


class CliError(Exception):
    """A failure the command line itself detects (bad input lines, an unknown
    group), with the exit code it stands for."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for(error: BaseException) -> int:
    """The documented exit code of an expected failure."""
    if isinstance(error, CliError):
        return error.exit_code
    if isinstance(error, (ConfigError, InvalidTopicError, UnsupportedError)):
        return EXIT_USAGE
    if isinstance(error, (FileNotFoundError, NotADirectoryError, UnknownTopicError,
                          UnknownGroupError,
                          UnknownPartitionError, OffsetOutOfRangeError)):
        return EXIT_NOT_FOUND
    return EXIT_ERROR


@dataclasses.dataclass(frozen=True)
class Settings:
    """The global options, kept on the typer context for the commands.
    ``cluster_url`` is --dir when it names a Kafka cluster (``kafka://``), else None."""

    directory: Path
    debug: bool = False
    cluster_url: str | None = None


class _Group(TyperGroup):
    """The root command group: maps expected errors to a message and an exit code,
    and shows flags without a type in every command's ``--help``."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        hide_flag_types(self, ctx)  # before --help, which parsing handles, is seen
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(EXIT_CLOSED_PIPE) from None
        except NoArgsIsHelpError:
            raise  # a command group without a subcommand: typer prints its help
        except UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "mqlog"
            _fail(ctx, error, f"{error.format_message()} (see '{where} --help')", EXIT_USAGE)
        except (MqlogError, OSError, CliError) as error:
            _fail(ctx, error, one_line(error), exit_code_for(error))


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that what is still buffered for the reader that
    went away is dropped at exit instead of raising BrokenPipeError again."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return  # not a file (a test's capture): nothing is flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _fail(ctx: Context, error: BaseException, message: str, code: int) -> None:
    """Print ``mqlog: error: message`` (after the traceback with --debug) and exit."""
    if isinstance(ctx.obj, Settings) and ctx.obj.debug:
        err_console.print_exception()
    err_console.print(f"mqlog: error: {' '.join(message.split())}", markup=False,
                      soft_wrap=True)
    raise typer.Exit(code) from None


app = typer.Typer(
    name="mqlog",
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    directory: Annotated[str, typer.Option(
        "--dir", "-d", envvar="MQLOG_DIR", show_envvar=True, metavar="PATH",
        help="The log directory, or a Kafka cluster: kafka://HOST:PORT[,...][?OPTION=VALUE...] "
             "(docs/cluster.md).",
    )] = DEFAULT_DIR,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of an error too.",
    )] = False,
) -> None:
    """mqlog: a Kafka-style partitioned log, embedded and multi-process."""
    ctx.obj = Settings(Path(directory), debug,
                       directory if is_cluster_url(directory) else None)


def settings(ctx: typer.Context) -> Settings:
    """The global options of this invocation (set by the app callback, which always runs)."""
    found = ctx.find_object(Settings)
    assert found is not None, "the app callback did not run"
    return found


def local_directory(ctx: typer.Context, command: str) -> Path:
    """The --dir log directory of a command that works on its files (verify,
    repair, serve): UnsupportedError (exit 2) when --dir is a Kafka cluster, and
    a file is bad input too (see :func:`check_not_a_file`)."""
    options = settings(ctx)
    if options.cluster_url is not None:
        raise UnsupportedError(f"mqlog {command}", "it works on a log directory's files, and "
                                                   "--dir is a Kafka cluster")
    check_not_a_file(options.directory)
    return options.directory


def check_not_a_file(directory: Path) -> None:
    """A file given as the log directory is bad input (exit 2), said as such."""
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory} is a file, not a log directory", EXIT_USAGE)


#: Why opening a log for writing fails where it can still be read: read-only
#: media (EROFS), another user's log (EACCES, EPERM).
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def open_log(ctx: typer.Context, create: bool = False,
             reading: bool = False) -> Iterator[mqlog.Log]:
    """Open the --dir log for one command; a missing directory is "not found"
    (exit 3) unless ``create``. A ``reading`` command never applies retention,
    and reads a log it may not write (read-only media, another user's) through
    a read-only open, which writes nothing at all. A Kafka cluster (--dir
    kafka://...) is opened as such, read-only for a ``reading`` command."""
    url = settings(ctx).cluster_url
    if url is not None:
        with mqlog.open(url, read_only=reading) as cluster:
            yield cluster
        return
    directory = settings(ctx).directory
    check_not_a_file(directory)
    if not create and not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist",
                                os.fspath(directory))
    if not reading:
        with mqlog.open(directory, create=create) as log:
            yield log
        return
    try:
        if not os.access(directory, os.W_OK):
            raise PermissionError(errno.EACCES, "not writable", os.fspath(directory))
        log = mqlog.open(directory, create=False, apply_retention=False)
    except OSError as error:
        if error.errno not in _NOT_WRITABLE:
            raise
        log = mqlog.open(directory, read_only=True)
    with log:
        yield log


def main() -> None:
    """Entry point of the ``mqlog`` console script."""
    app(prog_name="mqlog")
