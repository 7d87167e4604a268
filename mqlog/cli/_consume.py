"""``mqlog consume TOPIC --group G``: print records as a member of a consumer group,
committing what was printed."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from mqlog.cli._app import app, open_log
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
from mqlog.consumer import Consumer
from mqlog.errors import CommitFailedError

#: The client id of ``mqlog consume`` members (``lag`` shows their host and pid).
CLIENT_ID = "mqlog-consume"


@app.command()
def consume(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Topic name.", show_default=False)],
    group: Annotated[str, typer.Option("--group", "-g", help="Consumer group to join.",
                                       show_default=False)],
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
    json_output: JsonFormatOption = False,
    key: KeyOption = False,
    headers: HeadersOption = False,
    grep: GrepOption = None,
) -> None:
    """Print records as a member of consumer group GROUP, committing what was printed.

    Prints the records of the partitions the group gives this member and commits
    after each printed batch (at-least-once). Ctrl-C leaves the group; its
    partitions go to the other members.
    """
    printer = RecordPrinter(chosen_format(output_format, json_output), key, headers,
                            compile_grep(grep))
    try:
        with open_log(ctx) as log, log.consumer(
            group, [topic], client_id=CLIENT_ID,
            auto_offset_reset="earliest" if from_beginning else "latest",
        ) as consumer:
            _run(consumer, printer, topic, max_records, timeout)
    except KeyboardInterrupt:
        return


def _run(consumer: Consumer, printer: RecordPrinter, topic: str, max_records: int | None,
         timeout: float | None) -> None:
    """Poll, print, commit until ``max_records`` are printed or ``timeout`` passes idle."""
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
        printed += printer.write(topic, ((m.partition, m) for m in messages))
        try:
            consumer.commit()
        except CommitFailedError as error:  # the group moved a partition meanwhile
            err_console.print(f"mqlog: warning: {error}", markup=False, soft_wrap=True)


def _room(max_records: int | None, printed: int) -> int | None:
    return None if max_records is None else max_records - printed
