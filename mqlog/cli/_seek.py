"""``mqlog seek GROUP --topic T``: move or forget a group's committed offsets (dry run
by default), as ``kafka-consumer-groups --reset-offsets`` / ``--delete-offsets``."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import mqlog
from mqlog.cli._app import EXIT_USAGE, CliError, app, open_log
from mqlog.cli._groups import GroupArgument, require_group
from mqlog.cli._options import JSON_OPTION, parse_datetime, parse_duration
from mqlog.cli._output import console, emit_json, err_console
from mqlog.cli._reset_plan import STDIO, read_plan, write_plan
from mqlog.consumer import TopicPartition

#: A plan: each partition's current offset (None: never committed) and its new
#: one (None: forgotten, ``--delete``).
Plan = Mapping[TopicPartition, tuple[int | None, int | None]]


@app.command()
def seek(
    ctx: typer.Context,
    group: GroupArgument,
    topics: Annotated[list[str] | None, typer.Option(
        "--topic", "-t", help="Topic whose offsets move (repeat for several).",
        show_default=False)] = None,
    all_topics: Annotated[bool, typer.Option(
        "--all-topics", help="Every topic the group has offsets for.")] = False,
    partitions: Annotated[list[int] | None, typer.Option(
        "--partition", "-p", help="Only this partition of the one --topic (repeat for "
                                  "several; default: all).", show_default=False)] = None,
    to_earliest: Annotated[bool, typer.Option(
        "--to-earliest", help="To the first record still in the log.")] = False,
    to_latest: Annotated[bool, typer.Option(
        "--to-latest", help="To the end: skip everything not yet consumed.")] = False,
    to_current: Annotated[bool, typer.Option(
        "--to-current", help="To the committed offset (the end where none is), moved "
                             "into the log's range.")] = False,
    to_offset: Annotated[int | None, typer.Option(
        "--to-offset", min=0, metavar="N",
        help="To offset N (beyond a partition's end: refused).", show_default=False)] = None,
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
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", metavar="FILE", help="To the offsets of a reset plan (CSV "
        "topic,partition,new-offset, as --export writes it; - for stdin).",
        show_default=False)] = None,
    delete: Annotated[bool, typer.Option(
        "--delete", help="Forget the group's offsets (as kafka-consumer-groups "
                         "--delete-offsets).")] = False,
    execute: Annotated[bool, typer.Option(
        "--execute/--dry-run", help="Apply the change (default: only show it).")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", metavar="FILE", help="Also write the new offsets as a reset plan (CSV) "
                                         "to FILE (- for stdout, instead of the table).",
        show_default=False)] = None,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Reset a group's committed offsets, as kafka-consumer-groups --reset-offsets.

    Shows each partition's current and new offset; changes nothing unless
    --execute. Refused (exit 4) while the group has live members (--delete:
    members owning a partition of the topic).
    """
    target = _target(to_earliest=to_earliest, to_latest=to_latest, to_current=to_current,
                     to_offset=to_offset, shift_by=shift_by, to_datetime=to_datetime,
                     by_duration=by_duration, from_file=from_file, delete=delete)
    _check_scope(target, topics, all_topics, partitions, export)
    plan_on_stdout = export is not None and str(export) == STDIO
    if plan_on_stdout and json_output:
        raise CliError("--export - and --json both write to stdout: choose one", EXIT_USAGE)
    if "from_file" in target:  # a bad plan is refused before the log is opened
        target["from_file"] = read_plan(target["from_file"], group)
    with open_log(ctx) as log:
        require_group(log, group)
        plan, requested = _plan(log, group, target, topics, all_topics, partitions, execute)
        members = [] if execute else log.describe_group(group).members
    _warn_clamped(plan, requested)
    if export is not None:
        # (a --delete plan, whose new offsets are None, is never exported)
        write_plan(export, {tp: new for tp, (_current, new) in plan.items() if new is not None})
    if json_output:
        for tp, (current, new) in plan.items():
            emit_json({"group": group, "topic": tp.topic, "partition": tp.partition,
                       "current_offset": current, "new_offset": new, "executed": execute})
    elif not plan_on_stdout:
        console.print(_table(group, plan, execute, "delete" in target))
    if not execute and not json_output:
        (err_console if plan_on_stdout else console).print(
            "nothing changed: add --execute to apply", markup=False, soft_wrap=True)
    if members:
        err_console.print(
            f"warning: group {group!r} has live members ("
            + ", ".join(f"{m.member_id} pid {m.pid} on {m.host}" for m in members)
            + "): --execute is refused until they stop", markup=False, soft_wrap=True)


def _target(**given: Any) -> dict[str, Any]:
    """The one target option given, as ``{name: value}``."""
    chosen = {name: value for name, value in given.items()
              if value is not None and value is not False}
    if len(chosen) != 1:
        names = ", ".join("--" + name.replace("_", "-") for name in given)
        raise CliError(f"give exactly one of {names}", EXIT_USAGE)
    return chosen


def _check_scope(target: dict[str, Any], topics: list[str] | None, all_topics: bool,
                 partitions: list[int] | None, export: Path | None) -> None:
    """Which topics: --topic or --all-topics, except for --from-file (the file names
    them); --partition needs exactly one --topic; --delete has no plan to export."""
    if "from_file" in target:
        if topics or all_topics or partitions:
            raise CliError("--from-file names its topics and partitions: drop --topic, "
                           "--all-topics and --partition", EXIT_USAGE)
        return
    if bool(topics) == all_topics:
        raise CliError("give --topic T (repeat for several) or --all-topics", EXIT_USAGE)
    if partitions and (all_topics or len(topics or ()) != 1):
        raise CliError("--partition needs exactly one --topic", EXIT_USAGE)
    if "delete" in target and export is not None:
        raise CliError("--delete forgets offsets: there is no reset plan to --export",
                       EXIT_USAGE)


def _plan(log: mqlog.Log, group: str, target: dict[str, Any], topics: list[str] | None,
          all_topics: bool, partitions: list[int] | None,
          execute: bool) -> tuple[Plan, dict[TopicPartition, int]]:
    """The plan (applied when ``execute``) and the offset asked for where one was."""
    (name, value), = target.items()
    if name == "delete":
        current = {TopicPartition(p.topic, p.partition): p.committed_offset
                   for p in log.describe_group(group).partitions}
        doomed = log.delete_offsets(group, None if all_topics else topics, partitions,
                                    dry_run=not execute)
        return {tp: (current.get(tp), None) for tp in doomed}, {}
    if name == "from_file":  # value: the offsets read from the file
        return log.alter_offsets(group, value, dry_run=not execute), value
    if all_topics:
        topics = sorted({p.topic for p in log.describe_group(group).partitions})
    assert topics is not None  # _check_scope: --topic or --all-topics
    keyword = ({"to": name[3:]} if name in ("to_earliest", "to_latest", "to_current") else
               {"to": value} if name in ("to_offset", "to_datetime") else {name: value})
    plan: dict[TopicPartition, tuple[int | None, int]] = {}
    for topic in topics:  # every topic checked before anything is written
        plan.update(log.reset_offsets(group, topic, partitions, dry_run=True, **keyword))
    if execute:
        log.alter_offsets(group, {tp: new for tp, (_current, new) in plan.items()})
    return plan, _requested(log, plan, name, value)


def _requested(log: mqlog.Log, plan: Plan, name: str, value: Any) -> dict[TopicPartition, int]:
    """The offset each partition was asked to move to, where the target names one
    (--to-offset, --shift-by, --to-current), to tell of those moved into range."""
    if name == "to_offset":
        return dict.fromkeys(plan, value)
    if name == "shift_by":
        return {tp: (log.start_offset(tp.topic, tp.partition) if current is None else current)
                + value for tp, (current, _new) in plan.items()}
    if name == "to_current":
        return {tp: current for tp, (current, _new) in plan.items() if current is not None}
    return {}


def _warn_clamped(plan: Plan, requested: dict[TopicPartition, int]) -> None:
    """A warning for each partition whose new offset is not the one asked for: it was
    before the log start or past the end (as kafka-consumer-groups warns)."""
    for tp, offset in requested.items():
        new = plan[tp][1]
        if new is not None and new != offset:
            where = "before the log start" if offset < new else "past the end"
            err_console.print(f"mqlog: warning: {tp.topic}/{tp.partition}: offset {offset} is "
                              f"{where}: using {new}", markup=False, soft_wrap=True)


def _table(group: str, plan: Plan, executed: bool, deleting: bool) -> Table:
    what = ("offsets forgotten" if executed else "offsets to forget (dry run)") if deleting \
        else ("offsets reset" if executed else "dry run")
    table = Table(title=f"group {group}: {what}")
    for column in ("TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET", "CHANGE"):
        table.add_column(column, justify="left" if column == "TOPIC" else "right")
    for tp, (current, new) in plan.items():
        change = ("forget" if new is None else "-" if current is None
                  else f"{new - current:+,}")
        table.add_row(tp.topic, str(tp.partition), "-" if current is None else f"{current:,}",
                      "-" if new is None else f"{new:,}", change)
    return table
