"""``mqlog dlq list|show|redrive|purge`` and ``mqlog queues describe``: dead
letters and the depth of queue groups."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

import mqlog
from mqlog.cli._app import app, open_log
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json, format_ms, short_repr
from mqlog.consumer import dead_letter_at
from mqlog.headers import DEAD_LETTER_HEADERS, DEAD_LETTER_PREFIX

dlq_app = typer.Typer(help="List, show, redrive and purge dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
queues_app = typer.Typer(help="Queue groups: depth, pending messages, claim, receive, ack.",
                         no_args_is_help=True)
app.add_typer(queues_app, name="queues")

DlqArgument = Annotated[str, typer.Argument(help="Dead-letter topic, e.g. orders.dlq.",
                                            show_default=False)]


PartitionOption = Annotated[int | None, typer.Option(
    "--partition", "-p", help="Only dead letters of this partition of the dead-letter topic.")]
ReasonOption = Annotated[str | None, typer.Option(
    "--reason", metavar="PATTERN",
    help="Only dead letters whose reason matches this regular expression.")]
OffsetsOption = Annotated[list[int] | None, typer.Option(
    "--offset", help="Only these dead-letter offsets (repeat the option).")]
DryRunOption = Annotated[bool, typer.Option(
    "--dry-run", help="Only count the dead letters it would handle; write nothing.")]


def _origin(record: mqlog.Record) -> dict:
    headers = record.headers
    assert headers is not None  # read from the log: a mapping, maybe empty
    return {name.removeprefix(DEAD_LETTER_PREFIX): (headers.get(name) or b"").decode(
        errors="replace") for name in DEAD_LETTER_HEADERS}


def letter_json(letter: mqlog.DeadLetter) -> dict:
    """A dead letter as the JSON object of ``dlq list --json``: numbers as numbers."""
    return {"partition": letter.partition, "offset": letter.offset, "state": letter.state,
            "origin": {"topic": letter.origin_topic, "partition": letter.origin_partition,
                       "offset": letter.origin_offset,
                       "delivery_count": letter.delivery_count, "reason": letter.reason,
                       "first_delivery_ms": letter.first_delivery_ms,
                       "last_delivery_ms": letter.last_delivery_ms}}


@dlq_app.command("list")
def list_dead_letters(ctx: typer.Context, topic: DlqArgument,
                      partition: PartitionOption = None, reason: ReasonOption = None,
                      pending: Annotated[bool, typer.Option(
                          "--pending", help="Only pending ones (hide redriven and purged).")]
                      = False,
                      json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """One line per dead letter: where it is, where it came from, how often it was
    delivered, the last nack's reason and its state (pending, redriven, purged)."""
    with open_log(ctx, reading=True) as log:
        letters = log.dead_letters(topic, partition=partition, reason=reason,
                                   pending_only=pending)
    if json_output:
        for letter in letters:
            emit_json(letter_json(letter))
        return
    table = Table("PARTITION", "OFFSET", "FROM", "DELIVERIES", "REASON", "LAST DELIVERY",
                  "STATE")
    for letter in letters:
        last = letter.last_delivery_ms
        table.add_row(str(letter.partition), str(letter.offset),
                      f"{letter.origin_topic}/{letter.origin_partition}@{letter.origin_offset}",
                      "" if letter.delivery_count is None else str(letter.delivery_count),
                      letter.reason, "" if last is None else format_ms(last), letter.state)
    console.print(table)
    console.print(f"{len(letters):,} dead letters in {topic}", markup=False)


@dlq_app.command("show")
def show(ctx: typer.Context, topic: DlqArgument,
         offset: Annotated[int, typer.Argument(help="Offset of the dead letter.")],
         partition: Annotated[int, typer.Option("--partition", "-p",
                                                help="Partition of the dead letter.")] = 0,
         json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print one dead letter: its origin, state, key and value."""
    with open_log(ctx, reading=True) as log:
        letter = dead_letter_at(log.engine, topic, partition, offset)
    record = letter.record
    if json_output:
        emit_json({**letter_json(letter), "key": short_repr(record.key, 1 << 20),
                   "value": short_repr(record.value, 1 << 20)})
        return
    for name, value in _origin(record).items():
        console.print(f"{name}: {value}", markup=False, soft_wrap=True)
    console.print(f"state: {letter.state}", markup=False, soft_wrap=True)
    console.print(f"key: {short_repr(record.key, 200)}", markup=False, soft_wrap=True)
    console.print(f"value: {short_repr(record.value, 2000)}", markup=False, soft_wrap=True)


@dlq_app.command("redrive")
def redrive(ctx: typer.Context, topic: DlqArgument, offsets: OffsetsOption = None,
            partition: PartitionOption = None, reason: ReasonOption = None,
            to: Annotated[str | None, typer.Option(
                "--to", metavar="TOPIC",
                help="Append them to this topic instead of where they came from.")] = None,
            dry_run: DryRunOption = False,
            json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Move pending dead letters back to their original topic and partition (or to
    --to): all of them, or those the options select; each is redriven once."""
    with open_log(ctx, reading=dry_run) as log:
        moved = log.redrive(topic, offsets=offsets or None, partition=partition,
                            reason=reason, to=to, dry_run=dry_run)
    if json_output:
        emit_json({"topic": topic, "redriven": moved, "dry_run": dry_run})
    else:
        verb = "would redrive" if dry_run else "redriven"
        console.print(f"{verb} {moved:,} dead letters from {topic}", markup=False)


@dlq_app.command("purge")
def purge(ctx: typer.Context, topic: DlqArgument, offsets: OffsetsOption = None,
          partition: PartitionOption = None, reason: ReasonOption = None,
          dry_run: DryRunOption = False,
          json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Give pending dead letters up (all, or those the options select): marked
    purged, never redriven. Their records stay until retention deletes them."""
    with open_log(ctx, reading=dry_run) as log:
        purged = log.purge_dead_letters(topic, offsets or None, partition=partition,
                                        reason=reason, dry_run=dry_run)
    if json_output:
        emit_json({"topic": topic, "purged": purged, "dry_run": dry_run})
    else:
        verb = "would purge" if dry_run else "purged"
        console.print(f"{verb} {purged:,} dead letters of {topic}", markup=False)


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
            emit_json(dataclasses.asdict(row))
        return
    table = Table("TOPIC", "PARTITION", "POSITION", "END", "LAG", "READY", "IN FLIGHT",
                  "DELAYED", "EXPIRED", "DEAD")
    for row in rows:
        table.add_row(row.topic, str(row.partition), f"{row.position:,}",
                      f"{row.end_offset:,}", f"{row.lag:,}", f"{row.ready:,}",
                      f"{row.in_flight:,}", f"{row.delayed:,}", f"{row.expired:,}",
                      f"{row.dead_lettered:,}")
    console.print(table)
