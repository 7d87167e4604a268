"""``mqlog tail TOPIC...``: print the last records of topics, optionally following them."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable
from typing import Annotated

import typer

import mqlog
from mqlog.cli._app import EXIT_FAILED, EXIT_USAGE, CliError, app, open_log
from mqlog.cli._format_string import FormatStringOption, check_format_choice
from mqlog.cli._options import Moment, epoch_ms, parse_datetime, parse_duration, parse_moment
from mqlog.cli._output import err_console
from mqlog.cli._records import (
    FOLLOW_WAIT_S,
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
    offset_positions,
    partitions_of,
)
from mqlog.cli._tailing import Bounds, Follower, Item, Selection, last_items, merged
from mqlog.consumer import TopicPartition

#: Records ``tail`` prints when no starting point is given.
DEFAULT_LINES = 10


@app.command()
def tail(
    ctx: typer.Context,
    topics: Annotated[list[str], typer.Argument(
        help="Topic names; one starting with ^ is a regular expression (^orders\\.).",
        show_default=False, metavar="TOPIC")],
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
    count: Annotated[int | None, typer.Option(
        "--count", "-c", min=1, metavar="N", help="Stop after printing N records.",
        show_default=False)] = None,
    until: Annotated[Moment | None, typer.Option(
        "--until", parser=parse_moment, metavar="TIME",
        help="Stop before the first record at or after TIME (of each partition): an ISO "
             "8601 time or a duration ago (5m).", show_default=False)] = None,
    to_offset: Annotated[int | None, typer.Option(
        "--to-offset", min=0, metavar="N", help="Stop before offset N (of each partition).",
        show_default=False)] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing records as they are appended (Ctrl-C stops).")]
    = False,
    output_format: FormatOption = RecordFormat.text,
    format_string: FormatStringOption = None,
    json_output: JsonFormatOption = False,
    key: KeyOption = False,
    headers: HeadersOption = False,
    grep: GrepOption = None,
) -> None:
    """Print the last records of topics, or from a chosen point; -f follows them.

    Partitions are merged in timestamp order. Works while producers and
    consumers run in other processes; -f wakes as soon as any process appends,
    reads partitions added later, and waits for a deleted topic to come back.
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
    output_format = chosen_format(output_format, json_output)
    selection = Selection.parse(topics)
    if partition is not None and selection.several:
        raise CliError("--partition needs exactly one topic", EXIT_USAGE)
    check_format_choice(format_string, output_format, key, headers)
    if offset is not None and to_offset is not None and to_offset < offset:
        raise CliError(f"--to-offset {to_offset} is before --offset {offset}", EXIT_USAGE)
    printer = RecordPrinter(output_format, key, headers, compile_grep(grep), format_string,
                            show_topic=selection.several)
    damage = _DamageReport()
    try:
        with open_log(ctx, reading=True) as log:
            now = log.now_ms()
            bounds = Bounds(to_offset, None if until is None else until.epoch_ms(now))
            _check_window(since, at, bounds, now)
            ends = {TopicPartition(name, number): log.end_offset(name, number)
                    for name in selection.topics(log)
                    for number in partitions_of(log, name, partition)}
            stops = {tp: bounds.end(log, tp, end) for tp, end in ends.items()}
            items: Iterable[Item]
            if starts and starts[0] != "--lines":
                begin = _positions(log, list(ends), from_beginning, offset, since, at,
                                   strict=partition is not None)
                items = merged(log, begin, {tp: max(stop, begin[tp]) for tp, stop in
                                            stops.items()}, damage)
            else:
                items = last_items(log, stops, _lines(lines), damage)
            printed = printer.write_items(_limited(printer, items, count))
            if follow and (count is None or printed < count):
                _follow(log, selection, partition, stops, bounds, printer, damage,
                        None if count is None else count - printed)
    except KeyboardInterrupt:
        return  # Ctrl-C ends following: a normal way to stop
    if damage.ranges:
        raise typer.Exit(EXIT_FAILED)


def _follow(log: mqlog.Log, selection: Selection, partition: int | None,
            positions: dict[TopicPartition, int], bounds: Bounds, printer: RecordPrinter,
            damage: _DamageReport, count: int | None) -> None:
    """Print what is appended after ``positions`` until ``count`` records are printed
    (None: no limit), the bounds are reached, or Ctrl-C."""
    follower = Follower(log, selection, partition, positions, bounds, damage, _tell)
    while True:
        found = follower.next_chunk(FOLLOW_WAIT_S)
        printed = printer.write_items(_limited(printer, found, count))
        if count is not None:
            count -= printed
            if count <= 0:
                return
        if follower.finished(found_nothing=not found):
            return
        if not printed:
            check_stdout_open()


def _limited(printer: RecordPrinter, items: Iterable[Item], count: int | None
             ) -> Iterable[Item]:
    """The first ``count`` of the items the printer prints (all when None)."""
    if count is None:
        return items
    return itertools.islice((item for item in items if printer.matches(item[2])), count)


def _tell(message: str) -> None:
    """A change of the followed topics, on stderr."""
    err_console.print(f"mqlog: {message}", markup=False, soft_wrap=True)


def _check_window(since: datetime.timedelta | None, at: datetime.datetime | None,
                  bounds: Bounds, now_ms: int) -> None:
    """A window that ends before it starts cannot be meant: a usage error."""
    if bounds.until_ms is None:
        return
    if at is not None:
        begin_ms = epoch_ms(at)
    elif since is not None:
        begin_ms = now_ms - int(since.total_seconds() * 1000)
    else:
        return
    if bounds.until_ms < begin_ms:
        raise CliError("--until is before the start (--since or --at): the window is empty",
                       EXIT_USAGE)


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


def _positions(log: mqlog.Log, tps: list[TopicPartition], from_beginning: bool,
               offset: int | None, since: datetime.timedelta | None,
               at: datetime.datetime | None, strict: bool) -> dict[TopicPartition, int]:
    """Where each partition starts for --from-beginning, --offset, --since or --at."""
    if from_beginning:
        return {tp: log.start_offset(tp.topic, tp.partition) for tp in tps}
    if offset is not None:
        positions = {}
        for topic in dict.fromkeys(tp.topic for tp in tps):
            numbers = [tp.partition for tp in tps if tp.topic == topic]
            positions.update({TopicPartition(topic, number): position for number, position in
                              offset_positions(log, topic, numbers, offset, strict).items()})
        return positions
    if at is not None:
        moment_ms = epoch_ms(at)
    else:
        assert since is not None  # the caller gives one of the four starts
        moment_ms = log.now_ms() - int(since.total_seconds() * 1000)
    return {tp: log.offset_for_time(tp.topic, tp.partition, moment_ms) for tp in tps}
