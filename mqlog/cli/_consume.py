"""``mqlog consume TOPIC... --group G``: print records as a member of a consumer group,
committing what was printed; or, with ``--partition``, read one partition itself."""

from __future__ import annotations

import re
import time
from typing import Annotated

import typer

import mqlog
from mqlog.cli._app import EXIT_USAGE, CliError, app, open_log
from mqlog.cli._format_string import FormatStringOption, check_format_choice
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
)
from mqlog.cli._tailing import Selection
from mqlog.consumer import Consumer, TopicPartition
from mqlog.errors import CommitFailedError, OffsetOutOfRangeError

#: The client id of ``mqlog consume`` members (``lag`` shows their host and pid).
CLIENT_ID = "mqlog-consume"


@app.command()
def consume(
    ctx: typer.Context,
    topics: Annotated[list[str], typer.Argument(
        help="Topic names; one starting with ^ is a regular expression (^orders\\.).",
        show_default=False, metavar="TOPIC")],
    group: Annotated[str | None, typer.Option(
        "--group", "-g", help="Consumer group to join (with --partition: whose offsets to "
                              "start from and commit).", show_default=False)] = None,
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", min=0, metavar="P",
        help="Read only partition P of the one topic, joining no group (as kcat -C -p).",
        show_default=False)] = None,
    offset: Annotated[int | None, typer.Option(
        "--offset", "-o", min=0, metavar="N", help="With --partition: start at offset N.",
        show_default=False)] = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Partitions the group never committed start at the first "
                                 "record (default: at the end, only new records).")] = False,
    max_records: Annotated[int | None, typer.Option(
        "--max-records", "-n", min=1, metavar="N", help="Stop after printing N records.",
        show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.0, metavar="SECS",
        help="Stop when no record arrives for SECS (default: wait forever).",
        show_default=False)] = None,
    output_format: FormatOption = RecordFormat.text,
    format_string: FormatStringOption = None,
    json_output: JsonFormatOption = False,
    key: KeyOption = False,
    headers: HeadersOption = False,
    grep: GrepOption = None,
) -> None:
    """Print records as a member of consumer group GROUP, committing what was printed.

    Prints the records of the partitions the group gives this member and commits
    after each printed batch (at-least-once). Ctrl-C leaves the group; its
    partitions go to the other members. With --partition it reads that one
    partition itself, from --offset, and commits only if a --group is given.
    """
    output_format = chosen_format(output_format, json_output)
    selection = Selection.parse(topics)
    _check_choices(selection, group, partition, offset, from_beginning)
    check_format_choice(format_string, output_format, key, headers)
    printer = RecordPrinter(output_format, key, headers, compile_grep(grep), format_string,
                            show_topic=selection.several)
    try:
        with open_log(ctx) as log, log.consumer(
            group, client_id=CLIENT_ID,
            auto_offset_reset="earliest" if from_beginning else "latest",
        ) as consumer:
            if partition is None:
                consumer.subscribe(_subscription(log, selection))
            else:
                _assign(log, consumer, TopicPartition(selection.names[0], partition), offset)
            _run(consumer, printer, max_records, timeout)
    except KeyboardInterrupt:
        return


def _check_choices(selection: Selection, group: str | None, partition: int | None,
                   offset: int | None, from_beginning: bool) -> None:
    if offset is not None and partition is None:
        raise CliError("--offset needs --partition", EXIT_USAGE)
    if offset is not None and from_beginning:
        raise CliError("choose one starting point, not --offset and --from-beginning",
                       EXIT_USAGE)
    if partition is not None and selection.several:
        raise CliError("--partition needs exactly one topic", EXIT_USAGE)
    if partition is None and group is None:
        raise CliError("give --group G, or --partition P to read one partition without a "
                       "group", EXIT_USAGE)


def _subscription(log: mqlog.Log, selection: Selection) -> list[str] | re.Pattern:
    """What the member subscribes to: the names, or one pattern matching the names and
    the regular expressions (from the start of a name, as ``tail`` matches them)."""
    if not selection.patterns:
        return list(selection.names)
    for name in selection.names:
        log.describe_topic(name)  # UnknownTopicError now, as for a list of names
    return re.compile("|".join([f"(?:{pattern.pattern}).*" for pattern in selection.patterns]
                               + [re.escape(name) for name in selection.names]))


def _assign(log: mqlog.Log, consumer: Consumer, tp: TopicPartition, offset: int | None) -> None:
    """Read ``tp`` alone, from ``offset`` (which must lie in the partition) if given."""
    start, end = log.start_offset(tp.topic, tp.partition), log.end_offset(tp.topic,
                                                                          tp.partition)
    consumer.assign([tp])
    if offset is not None:
        if not start <= offset <= end:
            raise OffsetOutOfRangeError(
                f"offset {offset} is out of range for {tp.topic}/{tp.partition}: valid "
                f"offsets are {start}..{end}", offset=offset, start_offset=start,
                end_offset=end)
        consumer.seek(tp, offset)


def _run(consumer: Consumer, printer: RecordPrinter, max_records: int | None,
         timeout: float | None) -> None:
    """Poll, print (and commit, with a group) until ``max_records`` are printed or
    ``timeout`` passes idle."""
    printed = 0
    idle_since = time.monotonic()
    while max_records is None or printed < max_records:
        wait = FOLLOW_WAIT_S if timeout is None else max(
            min(idle_since + timeout - time.monotonic(), FOLLOW_WAIT_S), 0.0)
        messages = consumer.poll(timeout=wait, max_records=_room(max_records, printed))
        if not messages:
            if timeout is not None and time.monotonic() - idle_since >= timeout:
                return
            check_stdout_open()
            continue
        idle_since = time.monotonic()
        printed += printer.write_items((m.topic, m.partition, m) for m in messages)
        if consumer.group is None:
            continue
        try:
            consumer.commit()
        except CommitFailedError as error:  # the group moved a partition meanwhile
            err_console.print(f"mqlog: warning: {error}", markup=False, soft_wrap=True)


def _room(max_records: int | None, printed: int) -> int | None:
    return None if max_records is None else max_records - printed
