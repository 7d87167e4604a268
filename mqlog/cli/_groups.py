"""``mqlog groups list|describe|delete``: the consumer groups of --dir."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

import mqlog
from mqlog.cli._app import EXIT_FAILED, EXIT_NOT_FOUND, CliError, app, open_log
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json, format_age
from mqlog.consumer._admin import GroupDescription

groups_app = typer.Typer(help="List, describe and delete consumer groups.",
                         no_args_is_help=True)
app.add_typer(groups_app, name="groups")

GroupArgument = Annotated[str, typer.Argument(help="Consumer group name.", show_default=False)]


def require_group(log: mqlog.Log, group: str) -> None:
    """Raise "unknown group" (exit 3) unless the group has members or offsets."""
    if group not in log.list_groups():
        raise CliError(f"unknown group {group!r}", EXIT_NOT_FOUND)


@groups_app.command("list")
def list_groups(ctx: typer.Context, json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print the group names (groups with members or committed offsets), one per line."""
    with open_log(ctx) as log:
        names = log.list_groups()
    for name in names:
        if json_output:
            emit_json({"name": name})
        else:
            console.print(name, markup=False, soft_wrap=True)


@groups_app.command("describe")
def describe(ctx: typer.Context, group: GroupArgument,
             json_output: Annotated[bool, JSON_OPTION] = False) -> None:
    """Print a group's state, members and each partition's committed offset and lag."""
    with open_log(ctx) as log:
        require_group(log, group)
        description = log.describe_group(group)
    if json_output:
        emit_json(group_json(description))
        return
    console.print(f"group {group}: {description.state}, generation {description.generation}, "
                  f"{len(description.members)} members, lag {description.total_lag:,}",
                  markup=False, soft_wrap=True)
    if description.members:
        console.print(_members_table(description))
    else:
        console.print("no live members", markup=False)
    console.print(_partitions_table(description))


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
    return {
        "group": description.group, "state": description.state,
        "generation": description.generation, "total_lag": description.total_lag,
        "members": [
            {"member_id": m.member_id, "client_id": m.client_id, "host": m.host, "pid": m.pid,
             "assignment": [{"topic": t, "partition": p} for t, p in m.assignment]}
            for m in description.members
        ],
        "partitions": [
            {"topic": p.topic, "partition": p.partition, "committed_offset": p.committed_offset,
             "end_offset": p.end_offset, "lag": p.lag,
             "oldest_unconsumed_age_ms": p.oldest_unconsumed_age_ms, "member_id": p.member_id}
            for p in description.partitions
        ],
    }


def _members_table(description: GroupDescription) -> Table:
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
