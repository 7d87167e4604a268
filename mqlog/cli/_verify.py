"""``mqlog verify``: check a whole log directory without changing it."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mqlog.cli._app import EXIT_FAILED, app, local_directory
from mqlog.cli._output import console, emit_json, format_ms
from mqlog.logstore.verify import (
    PartitionReport,
    Problem,
    RecoveryEvent,
    VerifyReport,
    verify_log,
)

#: Journal lines printed by verify and stats (the JSON output has them all).
RECOVERIES_SHOWN = 20


@app.command()
def verify(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option(
        "--json", help="One JSON object per line: partitions, problems, then a summary.",
    )] = False,
) -> None:
    """Check every batch checksum, offset, index entry and state file under --dir.

    Only reads (never repairs). Exits 1 when damage is found; warnings (states
    a crash leaves behind, which the next open tidies up) do not fail. Also
    lists the recovery journal: what earlier opens cut, skipped or rebuilt.
    """
    report = verify_log(local_directory(ctx, "verify"))
    if json_output:
        _print_json(report)
    else:
        _print_human(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _summary(report: VerifyReport) -> dict:
    return {
        "type": "summary", "path": report.path, "ok": report.ok,
        "topics": len(report.topics), "partitions": len(report.partitions),
        "segments": report.segments, "batches": report.batches, "records": report.records,
        "bytes": report.bytes, "errors": len(report.errors), "warnings": len(report.warnings),
        "recoveries": len(report.recoveries),
    }


def _print_json(report: VerifyReport) -> None:
    for partition in report.partitions:
        emit_json({"type": "partition", **dataclasses.asdict(partition)})
    for problem in report.problems:
        emit_json({"type": "problem", **dataclasses.asdict(problem)})
    for event in report.recoveries:
        emit_json({"type": "recovery", **dataclasses.asdict(event)})
    emit_json(_summary(report))


def _topic_rows(report: VerifyReport) -> dict[str, list[PartitionReport]]:
    rows: dict[str, list[PartitionReport]] = {name: [] for name in report.topics}
    for partition in report.partitions:
        rows[partition.topic].append(partition)
    return rows


def _print_human(report: VerifyReport) -> None:
    table = Table(title=f"mqlog verify {report.path}", show_footer=True)
    counts = ("partitions", "segments", "batches", "records", "bytes")
    table.add_column("topic", footer=f"{len(report.topics)} topics")
    totals = (len(report.partitions), report.segments, report.batches, report.records,
              report.bytes)
    for name, total in zip(counts, totals):
        table.add_column(name, footer=f"{total:,}", justify="right")
    for topic, partitions in _topic_rows(report).items():
        values = (len(partitions), *(sum(getattr(p, name) for p in partitions)
                                     for name in counts[1:]))
        table.add_row(Text(topic), *(f"{value:,}" for value in values))
    console.print(table)
    for problem in report.problems:
        console.print(_problem_line(problem), soft_wrap=True)
    print_recoveries(report.recoveries)
    errors, warnings = len(report.errors), len(report.warnings)
    if report.ok:
        console.print(f"OK: no damage found ({warnings} warnings)", soft_wrap=True)
    else:
        console.print(f"DAMAGED: {errors} errors, {warnings} warnings", soft_wrap=True)


def print_recoveries(events: list[RecoveryEvent]) -> None:
    """The recovery journal, newest last (at most RECOVERIES_SHOWN lines)."""
    if not events:
        return
    console.print(f"Recovery journal: {len(events)} entries"
                  + (f" (the last {RECOVERIES_SHOWN} shown)"
                     if len(events) > RECOVERIES_SHOWN else ""), soft_wrap=True)
    for event in events[-RECOVERIES_SHOWN:]:
        console.print(Text.assemble(("RECOVERY", "yellow"),
                                    f" {format_ms(event.time_ms)} {event.describe()}"),
                      soft_wrap=True)


def _problem_line(problem: Problem) -> Text:
    label = "ERROR" if problem.severity == "error" else "WARNING"
    style = "bold red" if problem.severity == "error" else "yellow"
    return Text.assemble((label, style), f" {problem.location()}: {problem.description}")
