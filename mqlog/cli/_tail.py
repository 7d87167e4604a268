"""``mqlog tail TOPIC``: print the last records of a topic, optionally following it."""

from __future__ import annotations

import datetime
from typing import Annotated

import typer

import mqlog
from mqlog.cli._app import EXIT_FAILED, EXIT_USAGE, CliError, app, open_log
from mqlog.cli._options import epoch_ms, parse_datetime, parse_duration
from mqlog.cli._output import err_console
from mqlog.cli._records import (
    FOLLOW_WAIT_S,
    Follower,
    FormatOption,
    GrepOption,
    HeadersOption,
    JsonFormatOption,
    KeyOption,
    RecordFormat,
    RecordPrinter,
    check_stdout_open,
    chosen_format,
    compile_grep,
    last_records,
    merged,
    offset_positions,
    partitions_of,
)

#: Records ``tail`` prints when no starting point is given.
DEFAULT_LINES = 10


@app.command()
def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic name.", show_default=False)],
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="Only this partition (default: all, merged by time).",
        show_default=False)] = None,
    lines: Annotated[int | None, typer.Option(
        "--lines", "-n", min=0, help=f"Print the last N records (default {DEFAULT_LINES}).",
        show_default=False)] = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Print from the first record still in the log.")] = False,
    offset: Annotated[int | None, typer.Option(
        "--offset", min=0, help="Print from this offset on (of each partition).",
        show_default=False)] = None,
    since: Annotated[datetime.timedelta | None, typer.Option(
        "--since", parser=parse_duration, metavar="DURATION",
        help="Print the records of the last DURATION: 15m, 2h, 1d.", show_default=False)]
    = None,
    at: Annotated[datetime.datetime | None, typer.Option(
        "--at", parser=parse_datetime, metavar="ISO-8601",
        help="Print from the first record at or after this time (local time if no zone).",
        show_default=False)] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing records as they are appended (Ctrl-C stops).")]
    = False,
    output_format: FormatOption = RecordFormat.text,
    json_output: JsonFormatOption = False,
    key: KeyOption = False,
    headers: HeadersOption = False,
    grep: GrepOption = None,
) -> None:
    """Print the last records of a topic, or from a chosen point; -f follows it.

    Partitions are merged in timestamp order. Works while producers and
    consumers run in other processes; -f wakes as soon as any process appends.
    Damaged records are skipped and reported on stderr (exit code 1 once the
    intact ones are printed; `mqlog repair` removes the damage).
    """
    starts = [name for name, given in (("--lines", lines is not None),
                                       ("--from-beginning", from_beginning),
                                       ("--offset", offset is not None),
                                       ("--since", since is not None), ("--at", at is not None))
              if given]
    if len(starts) > 1:
        raise CliError(f"choose one starting point, not {' and '.join(starts)}", EXIT_USAGE)
    printer = RecordPrinter(chosen_format(output_format, json_output), key, headers,
                            compile_grep(grep))
    damage = _DamageReport()
    try:
        with open_log(ctx, reading=True) as log:
            numbers = partitions_of(log, topic, partition)
            ends = {number: log.end_offset(topic, number) for number in numbers}
            if starts and starts[0] != "--lines":
                begin = _positions(log, topic, numbers, from_beginning, offset, since, at,
                                   strict=partition is not None)
                printer.write(topic, merged(log, topic, begin, ends, damage))
            else:
                printer.write(topic, last_records(log, topic, ends, _lines(lines), damage))
            if follow:
                follower = Follower(log, topic, ends, damage)
                while True:
                    if not printer.write(topic, follower.next_chunk(FOLLOW_WAIT_S)):
                        check_stdout_open()
    except KeyboardInterrupt:
        return  # Ctrl-C ends following: a normal way to stop
    if damage.ranges:
        raise typer.Exit(EXIT_FAILED)


class _DamageReport:
    """Told of each damaged range a read skips: says so on stderr and counts it."""

    def __init__(self) -> None:
        self.ranges = 0

    def __call__(self, error: mqlog.CorruptRecordError) -> None:
        self.ranges += 1
        err_console.print(f"mqlog: warning: {error.topic}/{error.partition}: {error} "
                          f"(skipped; 'mqlog repair' moves damaged batches aside)",
                          markup=False, soft_wrap=True)


def _lines(lines: int | None) -> int:
    return DEFAULT_LINES if lines is None else lines


def _positions(log: mqlog.Log, topic: str, numbers: list[int], from_beginning: bool,
               offset: int | None, since: datetime.timedelta | None,
               at: datetime.datetime | None, strict: bool) -> dict[int, int]:
    """Where each partition starts for --from-beginning, --offset, --since or --at."""
    if from_beginning:
        return {number: log.start_offset(topic, number) for number in numbers}
    if offset is not None:
        return offset_positions(log, topic, numbers, offset, strict)
    moment_ms = epoch_ms(at) if at is not None else (
        log.now_ms() - int(since.total_seconds() * 1000))
    return {number: log.offset_for_time(topic, number, moment_ms) for number in numbers}
