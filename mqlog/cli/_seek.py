"""``mqlog seek GROUP --topic T``: move a group's committed offsets (dry run by default)."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from mqlog.cli._app import EXIT_USAGE, CliError, app, open_log
from mqlog.cli._groups import GroupArgument, require_group
from mqlog.cli._options import JSON_OPTION, parse_datetime, parse_duration
from mqlog.cli._output import console, emit_json, err_console
from mqlog.consumer import TopicPartition


@app.command()
def seek(
    ctx: typer.Context,
    group: GroupArgument,
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic whose offsets move.",
                                       show_default=False)],
    partitions: Annotated[list[int] | None, typer.Option(
        "--partition", "-p", help="Only this partition (repeat for several; default: all).",
        show_default=False)] = None,
    to_earliest: Annotated[bool, typer.Option(
        "--to-earliest", help="To the first record still in the log.")] = False,
    to_latest: Annotated[bool, typer.Option(
        "--to-latest", help="To the end: skip everything not yet consumed.")] = False,
    to_offset: Annotated[int | None, typer.Option(
        "--to-offset", min=0, metavar="N", help="To offset N (kept within each partition).",
        show_default=False)] = None,
    shift_by: Annotated[int | None, typer.Option(
        "--shift-by", metavar="±N", help="By N records: negative goes back, positive skips.",
        show_default=False)] = None,
    to_datetime: Annotated[datetime.datetime | None, typer.Option(
        "--to-datetime", parser=parse_datetime, metavar="ISO-8601",
        help="To the first record at or after this time (local time if no zone).",
        show_default=False)] = None,
    by_duration: Annotated[datetime.timedelta | None, typer.Option(
        "--by-duration", parser=parse_duration, metavar="DURATION",
        help="To the first record of the last DURATION (1h: an hour ago).",
        show_default=False)] = None,
    execute: Annotated[bool, typer.Option(
        "--execute/--dry-run", help="Apply the change (default: only show it).")] = False,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Reset a group's committed offsets, as kafka-consumer-groups --reset-offsets.

    Shows each partition's current and new offset; changes nothing unless
    --execute. Refused (exit 4) while the group has live members.
    """
    target = _target(to_earliest=to_earliest, to_latest=to_latest, to_offset=to_offset,
                     shift_by=shift_by, to_datetime=to_datetime, by_duration=by_duration)
    with open_log(ctx) as log:
        require_group(log, group)
        plan = log.reset_offsets(group, topic, partitions, dry_run=not execute, **target)
        members = [] if execute else log.describe_group(group).members
    if json_output:
        for tp, (current, new) in plan.items():
            emit_json({"group": group, "topic": tp.topic, "partition": tp.partition,
                       "current_offset": current, "new_offset": new, "executed": execute})
    else:
        console.print(_table(group, plan, execute))
        if not execute:
            console.print("nothing changed: add --execute to apply", markup=False, soft_wrap=True)
    if members:
        err_console.print(
            f"warning: group {group!r} has live members ("
            + ", ".join(f"{m.member_id} pid {m.pid} on {m.host}" for m in members)
            + "): --execute is refused until they stop", markup=False, soft_wrap=True)


def _target(**given: Any) -> dict[str, Any]:
    """The reset_offsets keyword for the one target option given."""
    chosen = {name: value for name, value in given.items()
              if value is not None and value is not False}
    if len(chosen) != 1:
        names = ", ".join("--" + name.replace("_", "-") for name in given)
        raise CliError(f"give exactly one of {names}", EXIT_USAGE)
    (name, value), = chosen.items()
    if name in ("to_earliest", "to_latest"):
        return {"to": name[3:]}
    if name in ("to_offset", "to_datetime"):
        return {"to": value}
    return {name: value}


def _table(group: str, plan: dict[TopicPartition, tuple[int | None, int]],
           executed: bool) -> Table:
    table = Table(title=f"group {group}: " + ("offsets reset" if executed else "dry run"))
    for column in ("TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET", "CHANGE"):
        table.add_column(column, justify="left" if column == "TOPIC" else "right")
    for tp, (current, new) in plan.items():
        change = "-" if current is None else f"{new - current:+,}"
        table.add_row(tp.topic, str(tp.partition), "-" if current is None else f"{current:,}",
                      f"{new:,}", change)
    return table
