"""``mqlog demo``: bulk throughput, a SIGKILL crash test and a verify, measured."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mqlog.cli._app import EXIT_FAILED, app
from mqlog.cli._demo_run import DemoResult, run_demo
from mqlog.cli._demo_run import Progress as ProgressCallback
from mqlog.cli._output import console, emit_json, err_console


@app.command()
def demo(
    records: Annotated[int, typer.Option(
        "--records", "-n", min=1, help="Records to append and read back in the bulk phase.",
    )] = 1_000_000,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the measurements as one JSON object.",
    )] = False,
) -> None:
    """Append and read back records, crash a writer with SIGKILL, recover, verify.

    Runs in a temporary directory (removed afterwards; --dir is not used).
    Exits 1 if any check fails: a record read back differs, an acknowledged
    record is lost, the log refuses appends after recovery, or verify finds
    damage.
    """
    with _progress_bars() as progress:
        result = run_demo(records, progress)
    if json_output:
        emit_json(_as_json(result))
    else:
        console.print(_table(result))
    for failure in result.failures:
        err_console.print(f"FAILED: {failure}", markup=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@contextmanager
def _progress_bars() -> Iterator[ProgressCallback]:
    """A progress callback drawing one bar per phase on stderr."""
    columns = (TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console) as bars:
        tasks: dict[str, int] = {}

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(phase, total=total)
            bars.update(tasks[phase], completed=done)

        yield advance


def _as_json(result: DemoResult) -> dict:
    bulk = result.bulk
    return {
        "type": "demo", "ok": result.ok, **dataclasses.asdict(result),
        "append_records_per_s": round(bulk.append_records_per_s),
        "append_mib_per_s": round(bulk.append_mib_per_s, 1),
        "read_records_per_s": round(bulk.read_records_per_s),
    }


def _table(result: DemoResult) -> Table:
    bulk, crash = result.bulk, result.crash
    table = Table(title="mqlog demo")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("records (bulk)", f"{bulk.records:,} x {bulk.value_bytes} B, "
                           f"{bulk.partitions} partitions, {bulk.segments} segments"),
        ("append", f"{bulk.append_records_per_s:,.0f} records/s "
                   f"({bulk.append_mib_per_s:,.1f} MiB/s, {bulk.append_seconds:.2f} s)"),
        ("read", f"{bulk.read_records_per_s:,.0f} records/s ({bulk.read_seconds:.2f} s)"),
        ("writer acked (always)", f"{crash.acked_records:,} records in {crash.acked_appends:,} "
                                  f"appends over {crash.writer_seconds:.2f} s"),
        ("killed with", "SIGKILL, mid-stream"),
        ("recovery", f"{crash.recovery_seconds * 1000:.1f} ms"),
        ("survived", f"{crash.survived_records:,} records"),
        ("acked records lost", f"{crash.lost_records:,}"),
        ("append after recovery", "ok" if crash.appended_after_recovery else "FAILED"),
        ("verify errors", f"{result.verify_errors:,}"),
        ("result", "ok" if result.ok else "FAILED"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
