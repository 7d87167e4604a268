"""``mqlog queues pending|claim|receive|ack``: a queue group's messages in flight,
taking over stuck ones, and receiving and acking by receipt handle from scripts.

A claim from the command line takes the idle messages into a worker that
leaves when the command ends: like a worker that dies, it makes them available
to every worker at once (their lock is over), and the claim counted a delivery.
``receive`` holds its messages by receipt handle for ``--visibility``, so a
later ``ack`` (from any process) finishes them; see docs/queues.md.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from typer.models import OptionInfo

import mqlog
from mqlog.cli._app import open_log
from mqlog.cli._dlq import queues_app
from mqlog.cli._options import JSON_OPTION, parse_duration
from mqlog.cli._output import console, emit_json, format_age
from mqlog.cli._records import _text, record_json

GroupArgument = Annotated[str, typer.Argument(help="Queue group name.", show_default=False)]
TopicOption = Annotated[str | None, typer.Option("--topic", "-t", help="Only this topic.")]
PartitionOption = Annotated[int | None, typer.Option("--partition", "-p",
                                                     help="Only this partition.")]


def parse_seconds(text: str | float) -> float:
    """Seconds given as a number (``30``, ``0.5``) or a duration (``30s``, ``5m``)."""
    if isinstance(text, (int, float)):
        return float(text)
    try:
        return float(text)
    except ValueError:
        return parse_duration(text).total_seconds()


def _seconds_option(name: str, help_text: str) -> OptionInfo:
    return typer.Option(name, parser=parse_seconds, metavar="SECONDS", help=help_text)


@queues_app.command("pending")
def pending(
    ctx: typer.Context, group: GroupArgument,
    details: Annotated[bool, typer.Option(
        "--details", help="One line per pending message (implied by the filters).")] = False,
    topic: TopicOption = None, partition: PartitionOption = None,
    member: Annotated[int | None, typer.Option(
        "--member", help="Only messages held by this member id (0: receipt handles).")] = None,
    idle: Annotated[float | None, _seconds_option(
        "--idle", "Only messages idle at least this long: seconds, or 30s, 5m.")] = None,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1,
                                              help="At most this many messages.")] = None,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """The messages a queue group handed out and nobody finished yet (XPENDING): in
    short per partition and per owner, or one line each with --details."""
    filtered = any(v is not None for v in (topic, partition, member, idle, count))
    with open_log(ctx, reading=True) as log:
        if details or filtered:
            messages = log.pending(group, topic=topic, partition=partition, member_id=member,
                                   min_idle_s=idle or 0.0, limit=count)
            now_ms = log.now_ms()
        else:
            summary = log.pending_summary(group)
    if details or filtered:
        _print_messages(messages, now_ms, json_output)
    else:
        _print_summary(summary, json_output)


def _print_summary(summary: mqlog.PendingSummary, json_output: bool) -> None:
    if json_output:
        emit_json({"group": summary.group, "count": summary.count,
                   "oldest_idle_ms": summary.oldest_idle_ms,
                   "partitions": [{"topic": p.topic, "partition": p.partition, "count": p.count,
                                   "first_offset": p.first_offset,
                                   "last_offset": p.last_offset} for p in summary.partitions],
                   "members": [{"member_id": m, "count": c}
                               for m, c in sorted(summary.members.items())]})
        return
    console.print(f"{summary.count:,} pending in queue group {summary.group}"
                  + (f", oldest idle {format_age(summary.oldest_idle_ms)}"
                     if summary.oldest_idle_ms is not None else ""),
                  markup=False, soft_wrap=True)
    if not summary.count:
        return
    table = Table("TOPIC", "PARTITION", "PENDING", "FIRST", "LAST", title="partitions")
    for p in summary.partitions:
        table.add_row(p.topic, str(p.partition), str(p.count), str(p.first_offset),
                      str(p.last_offset))
    console.print(table)
    owners = Table("MEMBER-ID", "PENDING", title="owners")
    for member_id, count in sorted(summary.members.items()):
        owners.add_row(str(member_id), str(count))
    console.print(owners)


def _print_messages(messages: list[mqlog.PendingMessage], now_ms: int,
                    json_output: bool) -> None:
    if json_output:
        for m in messages:
            emit_json({"topic": m.topic, "partition": m.partition, "offset": m.offset,
                       "member_id": m.member_id, "idle_ms": m.idle_ms,
                       "delivery_count": m.delivery_count, "deadline_ms": m.deadline_ms,
                       "lock_expired": m.lock_expired})
        return
    table = Table("TOPIC", "PARTITION", "OFFSET", "MEMBER-ID", "IDLE", "DELIVERIES", "LOCK")
    for m in messages:
        table.add_row(m.topic, str(m.partition), str(m.offset), str(m.member_id),
                      format_age(m.idle_ms), str(m.delivery_count),
                      "expired" if m.lock_expired
                      else f"{format_age(max(m.deadline_ms - now_ms, 0))} left")
    console.print(table)
    console.print(f"{len(messages):,} pending messages", markup=False)


@queues_app.command("claim")
def claim(
    ctx: typer.Context, group: GroupArgument,
    idle: Annotated[float, _seconds_option(
        "--idle", "Claim messages idle at least this long: seconds, or 30s, 5m.")],
    topic: TopicOption = None, partition: PartitionOption = None,
    offsets: Annotated[list[int] | None, typer.Option(
        "--offset", help="Only these offsets (repeat the option).")] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1,
                                       help="At most this many messages.")] = 100,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Take over messages idle at least --idle from the workers holding them
    (XAUTOCLAIM). The command's worker leaves at once, so they become available to
    every worker now; the claim counts as a delivery."""
    with open_log(ctx) as log:
        topics = sorted({row.topic for row in log.describe_queue(group)})
        if not topics:
            claimed = []
        else:
            with log.queue(group, topics) as worker:
                claimed = [(m.topic, m.partition, m.offset, m.delivery_count)
                           for m in worker.claim(idle, count, topic=topic,
                                                 partition=partition, offsets=offsets)]
    for topic_name, number, offset, deliveries in claimed:
        if json_output:
            emit_json({"topic": topic_name, "partition": number, "offset": offset,
                       "delivery_count": deliveries})
        else:
            console.print(f"claimed {topic_name}/{number}@{offset} (delivery {deliveries})",
                          markup=False, soft_wrap=True)
    if not json_output:
        console.print(f"claimed {len(claimed):,} messages of queue group {group}: available "
                      f"to every worker now", markup=False, soft_wrap=True)


@queues_app.command("receive")
def receive(
    ctx: typer.Context, group: GroupArgument,
    topic: Annotated[str, typer.Argument(help="Topic to receive from.", show_default=False)],
    count: Annotated[int, typer.Option("--count", "-n", min=1,
                                       help="At most this many messages.")] = 1,
    visibility: Annotated[float, _seconds_option(
        "--visibility", "How long the messages stay held for their receipt handles.")] = 30.0,
    wait: Annotated[float, _seconds_option(
        "--wait", "How long to wait for a message when none is ready.")] = 0.0,
    max_deliveries: Annotated[int, typer.Option(
        "--max-deliveries", help="Dead-letter a message handed out more often.")] = 5,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Receive messages with receipt handles for a script: one line each (receipt,
    key and value, tab-separated), or --json objects with a "receipt" field. Ack them with
    'mqlog queues ack'; unacked, they come back after --visibility."""
    with open_log(ctx) as log:
        received = log.receive_with_receipts(
            group, topic, max_messages=count, visibility_s=visibility,
            timeout=wait, max_deliveries=max_deliveries)
    for item in received:
        message = item.message
        if json_output:
            emit_json({"receipt": item.receipt, "delivery_count": item.delivery_count,
                       **record_json(message.topic, message.partition, message)})
        else:
            sys.stdout.write(f"{item.receipt}\t{_text(message.key)}\t{_text(message.value)}\n")


@queues_app.command("ack")
def ack(
    ctx: typer.Context, group: GroupArgument,
    receipts: Annotated[list[str], typer.Argument(help="Receipt handles from 'queues receive'.",
                                                  show_default=False)],
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Ack messages by receipt handle. A stale handle (its lock ran out and the
    message was handed out again) fails with exit code 4, after the others are acked."""
    with open_log(ctx) as log:
        log.ack_receipts(group, receipts)
    if json_output:
        emit_json({"group": group, "acked": len(receipts)})
    else:
        console.print(f"acked {len(receipts):,} messages", markup=False)
