"""``mqlog repair``: move damaged batches aside (a dry run unless --execute)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from mqlog.cli._app import EXIT_FAILED, app, local_directory
from mqlog.cli._output import console, emit_json
from mqlog.logstore.repair import RepairReport, describe, repair_log


@app.command()
def repair(
    ctx: typer.Context,
    execute: Annotated[bool, typer.Option(
        "--execute", help="Repair (default: only print what would be done).")] = False,
    topic: Annotated[str | None, typer.Option(
        "--topic", "-t", help="Only this topic (default: all).", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="One JSON object per damaged range, then a summary.")] = False,
) -> None:
    """Move damaged batches into quarantine files and rewrite their segments.

    Every intact record keeps its offset and bytes; the offsets of the damaged
    records stay taken (a gap readers step over). A dry run only reads and
    exits 1 when there is damage to repair; --execute repairs each damaged
    partition under its append lock.
    """
    report = repair_log(local_directory(ctx, "repair"), execute=execute, topic=topic)
    if json_output:
        _print_json(report)
    else:
        _print_human(report)
    if report.damaged and not execute:
        raise typer.Exit(EXIT_FAILED)


def _print_json(report: RepairReport) -> None:
    for damage in report.ranges:
        emit_json({"type": "range", **dataclasses.asdict(damage)})
    emit_json({"type": "summary", "path": report.path, "executed": report.executed,
               "ranges": len(report.ranges),
               "records": sum(damage.record_count for damage in report.ranges),
               "bytes": sum(damage.size_bytes for damage in report.ranges),
               "quarantine_files": report.quarantine_files})


def _print_human(report: RepairReport) -> None:
    for line in describe(report.ranges):
        console.print(line, markup=False, soft_wrap=True)
    for path in report.quarantine_files:
        console.print(f"quarantined: {path}", markup=False, soft_wrap=True)
    records = sum(damage.record_count for damage in report.ranges)
    if not report.ranges:
        console.print("OK: nothing to repair", soft_wrap=True)
    elif report.executed:
        console.print(f"REPAIRED: {len(report.ranges)} damaged ranges, {records} records "
                      f"moved aside", soft_wrap=True)
    else:
        console.print(f"DRY RUN: {len(report.ranges)} damaged ranges, {records} records "
                      f"would be moved aside; run again with --execute", soft_wrap=True)
