"""``mqlog groups list|describe|delete``: the consumer and queue groups of --dir."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

import mqlog
from mqlog.cli._app import EXIT_FAILED, EXIT_NOT_FOUND, CliError, app, open_log, settings
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json, format_age
from mqlog.consumer import GroupDescription, is_queue_group

groups_app = typer.Typer(help="List, describe and delete consumer and queue groups.",
                         no_args_is_help=True)
app.add_typer(groups_app, name="groups")

GroupArgument = Annotated[str, typer.Argument(help="Group name (consumer or queue group).",
                                              show_default=False)]


def require_group(log: mqlog.Log, group: str) -> None:
    """Raise "unknown group" (exit 3) unless the group has members or offsets."""
    if group not in log.list_groups():
        raise CliError(f"unknown group {group!r}", EXIT_NOT_FOUND)


@groups_app.command("list")
def list_groups(ctx: typer.Context, json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print the group names (consumer groups with members or committed offsets, and
    queue groups), one per line; --json adds each group's kind."""
    with open_log(ctx, reading=True) as log:
        names = log.list_groups()
        on_cluster = settings(ctx).cluster_url is not None  # a cluster has no queue groups
        kinds = {name: "queue" if not on_cluster and is_queue_group(log.engine, name)
                 else "consumer" for name in names}
    for name in names:
        if json_output:
            emit_json({"name": name, "kind": kinds[name]})
        else:
            console.print(name, markup=False, soft_wrap=True)


@groups_app.command("describe")
def describe(ctx: typer.Context, group: GroupArgument,
             json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print a group's state, members and each partition's committed offset and lag
    (queue groups: position, lag and ready / in-flight / delayed / dead-lettered)."""
    with open_log(ctx, reading=True) as log:
        require_group(log, group)
        description = log.describe_group(group)
    if json_output:
        emit_json(group_json(description))
        return
    if description.kind == "queue":
        console.print(f"queue group {group}: {description.state}, "
                      f"{len(description.members)} workers, lag {description.total_lag:,}",
                      markup=False, soft_wrap=True)
    else:
        console.print(f"group {group}: {description.state}, generation "
                      f"{description.generation}, {len(description.members)} members, "
                      f"lag {description.total_lag:,}", markup=False, soft_wrap=True)
    if description.members:
        console.print(_members_table(description))
    else:
        console.print("no live members", markup=False)
    console.print(_queue_partitions_table(description) if description.kind == "queue"
                  else _partitions_table(description))


@groups_app.command("delete")
def delete(
    ctx: typer.Context,
    group: GroupArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
) -> None:
    """Forget a group and its committed offsets (refused while it has live members)."""
    with open_log(ctx) as log:
        require_group(log, group)
        if not yes and not typer.confirm(f"Delete group {group!r} and its committed offsets?"):
            console.print("not deleted", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILED)
        log.delete_group(group)
    console.print(f"deleted group {group!r}", markup=False, soft_wrap=True)


def group_json(description: GroupDescription) -> dict:
    """A group description as one JSON object."""
    queue = description.kind == "queue"
    return {
        "group": description.group, "kind": description.kind, "state": description.state,
        "generation": description.generation, "total_lag": description.total_lag,
        "members": [
            {"member_id": m.member_id, "client_id": m.client_id, "host": m.host, "pid": m.pid,
             "assignment": [{"topic": t, "partition": p} for t, p in m.assignment]}
            for m in description.members
        ],
        "partitions": [
            {"topic": p.topic, "partition": p.partition, "committed_offset": p.committed_offset,
             "end_offset": p.end_offset, "lag": p.lag,
             "oldest_unconsumed_age_ms": p.oldest_unconsumed_age_ms, "member_id": p.member_id,
             **({"ready": p.ready, "in_flight": p.in_flight, "delayed": p.delayed,
                 "expired": p.expired, "dead_lettered": p.dead_lettered} if queue else {})}
            for p in description.partitions
        ],
    }


def _members_table(description: GroupDescription) -> Table:
    if description.kind == "queue":
        return _workers_table(description)
    table = Table(title="members")
    for column in ("MEMBER-ID", "CLIENT-ID", "HOST", "PID", "PARTITIONS"):
        table.add_column(column, justify="right" if column == "PID" else "left")
    for member in description.members:
        owned = ", ".join(f"{topic}/{partition}" for topic, partition in member.assignment)
        table.add_row(member.member_id, member.client_id, member.host, str(member.pid),
                      owned or "-")
    return table


def _partitions_table(description: GroupDescription) -> Table:
    table = Table(title="partitions")
    for column in ("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "AGE",
                   "MEMBER-ID"):
        table.add_column(column, justify="left" if column in ("TOPIC", "MEMBER-ID") else "right")
    for p in description.partitions:
        table.add_row(p.topic, str(p.partition),
                      "-" if p.committed_offset is None else f"{p.committed_offset:,}",
                      f"{p.end_offset:,}", f"{p.lag:,}", format_age(p.oldest_unconsumed_age_ms),
                      p.member_id or "-")
    return table


def _workers_table(description: GroupDescription) -> Table:
    """A queue group's workers: each shares every partition, so none are listed."""
    table = Table(title="workers")
    for column in ("MEMBER-ID", "HOST", "PID"):
        table.add_column(column, justify="right" if column == "PID" else "left")
    for member in description.members:
        table.add_row(member.member_id, member.host, str(member.pid))
    return table


def _queue_partitions_table(description: GroupDescription) -> Table:
    """Headings on two lines and one space between columns fit 80 columns; EXPIRED
    only shows when some record expired."""
    with_expired = any(p.expired for p in description.partitions)
    table = Table(title="partitions", box=box.SIMPLE_HEAD, padding=0)
    columns = ["TOPIC", "PARTITION", "POSITION", "LOG-END-\nOFFSET", "LAG", "READY",
               "IN-\nFLIGHT", "DELAYED", "DEAD-\nLETTERED", "AGE"]
    if with_expired:
        columns.insert(-2, "EXPIRED")
    for column in columns:  # numbers keep their width; a long topic name folds
        topic = column == "TOPIC"
        table.add_column(column, justify="left" if topic else "right", overflow="fold",
                         no_wrap=not topic, min_width=5 if topic else None)
    for p in description.partitions:
        cells = [p.topic, str(p.partition), f"{p.committed_offset:,}", f"{p.end_offset:,}",
                 f"{p.lag:,}", f"{p.ready:,}", f"{p.in_flight:,}", f"{p.delayed:,}",
                 f"{p.dead_lettered:,}", format_age(p.oldest_unconsumed_age_ms)]
        if with_expired:
            cells.insert(-2, f"{p.expired:,}")
        table.add_row(*cells)
    return table
