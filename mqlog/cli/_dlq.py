"""``mqlog dlq list|show|redrive`` and ``mqlog queues describe``: dead letters and
the depth of queue groups."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

import mqlog
from mqlog.cli._app import app, open_log
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json, format_ms, short_repr
from mqlog.consumer import check_dead_letter_topic, dead_letter_origin
from mqlog.headers import (
    DEAD_LETTER_HEADERS,
    DEAD_LETTER_PARTITION,
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_TOPIC,
)

dlq_app = typer.Typer(help="List, show and redrive dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
queues_app = typer.Typer(help="Describe queue groups.", no_args_is_help=True)
app.add_typer(queues_app, name="queues")

DlqArgument = Annotated[str, typer.Argument(help="Dead-letter topic, e.g. orders.dlq.",
                                            show_default=False)]


def _dead_letters(log: mqlog.Log, topic: str):
    for description in log.describe_topic(topic).partitions:
        for record in log.iter(topic, description.partition, description.start_offset):
            yield description.partition, record


def _origin(record: mqlog.Record) -> dict:
    headers = record.headers
    return {name.removeprefix(DEAD_LETTER_PREFIX): (headers.get(name) or b"").decode(
        errors="replace") for name in DEAD_LETTER_HEADERS}


@dlq_app.command("list")
def list_dead_letters(ctx: typer.Context, topic: DlqArgument,
                      json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """One line per dead letter: where it is, where it came from, how often it was
    delivered and the last nack's reason."""
    with open_log(ctx, reading=True) as log:
        check_dead_letter_topic(log.engine, topic)
        letters = list(_dead_letters(log, topic))
    if json_output:
        for partition, record in letters:
            emit_json({"partition": partition, "offset": record.offset,
                       "origin": _origin(record)})
        return
    table = Table("PARTITION", "OFFSET", "FROM", "DELIVERIES", "REASON", "LAST DELIVERY")
    for partition, record in letters:
        origin = _origin(record)
        last = origin["last_delivery_ms"]
        table.add_row(str(partition), str(record.offset),
                      f"{origin['topic']}/{origin['partition']}@{origin['offset']}",
                      origin["delivery_count"], origin["reason"],
                      format_ms(int(last)) if last.isdigit() else "")
    console.print(table)
    console.print(f"{len(letters):,} dead letters in {topic}", markup=False)


@dlq_app.command("show")
def show(ctx: typer.Context, topic: DlqArgument,
         offset: Annotated[int, typer.Argument(help="Offset of the dead letter.")],
         partition: Annotated[int, typer.Option("--partition", "-p",
                                                help="Partition of the dead letter.")] = 0,
         json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print one dead letter: its key, value, headers and origin."""
    with open_log(ctx, reading=True) as log:
        [record] = log.read(topic, partition, offset, max_records=1) or [None]
    if record is None:
        raise mqlog.OffsetOutOfRangeError(
            f"no dead letter at {topic}/{partition}@{offset}", offset=offset,
            start_offset=offset, end_offset=offset)
    if dead_letter_origin(record) is None:
        raise mqlog.ConfigError(f"{topic}/{partition}@{offset} is not a dead letter: it has no "
                                f"{DEAD_LETTER_TOPIC} and {DEAD_LETTER_PARTITION} headers")
    origin = _origin(record)
    if json_output:
        emit_json({"partition": partition, "offset": record.offset, "origin": origin,
                   "key": short_repr(record.key, 1 << 20),
                   "value": short_repr(record.value, 1 << 20)})
        return
    for name, value in origin.items():
        console.print(f"{name}: {value}", markup=False, soft_wrap=True)
    console.print(f"key: {short_repr(record.key, 200)}", markup=False, soft_wrap=True)
    console.print(f"value: {short_repr(record.value, 2000)}", markup=False, soft_wrap=True)


@dlq_app.command("redrive")
def redrive(ctx: typer.Context, topic: DlqArgument,
            offsets: Annotated[list[int] | None, typer.Option(
                "--offset", help="Only these dead-letter offsets (repeat the option).")] = None,
            json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Move dead letters back to their original topic and partition (all of them, or
    those at --offset); each is redriven once."""
    with open_log(ctx) as log:
        moved = log.redrive(topic, offsets=offsets or None)
    if json_output:
        emit_json({"topic": topic, "redriven": moved})
    else:
        console.print(f"redriven {moved:,} dead letters from {topic}", markup=False)


@queues_app.command("describe")
def describe_queue(ctx: typer.Context,
                   group: Annotated[str, typer.Argument(help="Queue group name.")],
                   json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Per partition of a queue group: position, end offset, lag, and ready / in
    flight / delayed / expired / dead-lettered counts."""
    with open_log(ctx, reading=True) as log:
        rows = log.describe_queue(group)
    if json_output:
        for row in rows:
            emit_json(row)
        return
    table = Table("TOPIC", "PARTITION", "POSITION", "END", "LAG", "READY", "IN FLIGHT",
                  "DELAYED", "EXPIRED", "DEAD")
    for row in rows:
        table.add_row(row["topic"], str(row["partition"]), f"{row['position']:,}",
                      f"{row['end_offset']:,}", f"{row['lag']:,}", f"{row['ready']:,}",
                      f"{row['in_flight']:,}", f"{row['delayed']:,}", f"{row['expired']:,}",
                      f"{row['dead_lettered']:,}")
    console.print(table)
