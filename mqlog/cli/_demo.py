"""``mqlog demo``: producers, a consumer group, a worker killed with SIGKILL, checked."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.console import Group as Renderables
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mqlog.cli._app import EXIT_FAILED, app
from mqlog.cli._demo_run import PARTITIONS, PRODUCERS, WORKERS, DemoResult, Snapshot, run_demo
from mqlog.cli._output import console, emit_json, err_console

#: Orders of a default run, and the seconds over which the producers send them.
DEFAULT_RECORDS = 100_000
DEFAULT_SECONDS = 10.0


@app.command()
def demo(
    records: Annotated[int, typer.Option(
        "--records", "-n", min=PRODUCERS, help="Orders to produce in all.",
    )] = DEFAULT_RECORDS,
    seconds: Annotated[float, typer.Option(
        "--seconds", min=0.0, help="Spread the orders over this many seconds.",
    )] = DEFAULT_SECONDS,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the result as one JSON object.",
    )] = False,
) -> None:
    """Producers, a consumer group, a worker killed half-way: no order is lost.

    Runs 3 producer and 3 worker processes, kills a worker with SIGKILL
    half-way and checks that every order was processed at least once. Runs in
    a temporary directory (removed afterwards; --dir is not used). Shows the
    group's lag live while it runs. Exits 1 if any check fails.
    """
    with Live(console=err_console, auto_refresh=False, transient=False) as live:
        result = run_demo(records, seconds,
                          lambda snapshot: live.update(_view(snapshot), refresh=True))
    if not err_console.is_terminal:
        err_console.line()  # the last view printed once ends without a line break
    if json_output:
        emit_json(_as_json(result))
    else:
        console.print(_table(result))
    for failure in result.failures:
        err_console.print(f"FAILED: {failure}", markup=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


def _view(snapshot: Snapshot) -> Renderables:
    """The live view: progress, the lag of each partition, the workers, recent events."""
    header = Text(f"mqlog demo  {snapshot.elapsed:5.1f}s   produced "
                  f"{snapshot.produced:,}/{snapshot.records:,}   committed "
                  f"{snapshot.committed:,}   lag {snapshot.lag:,}   "
                  f"generation {snapshot.generation}", style="bold")
    lag = Table(title=f"group lag ({PARTITIONS} partitions)")
    for column in ("PARTITION", "OWNER", "COMMITTED", "END", "LAG"):
        lag.add_column(column, justify="left" if column == "OWNER" else "right")
    for p in snapshot.partitions:
        lag.add_row(str(p.partition), p.owner or "-",
                    "-" if p.committed is None else f"{p.committed:,}", f"{p.end:,}",
                    f"{p.lag:,}", style="bold red" if p.owner is None and p.lag else None)
    workers = Table(title=f"workers ({WORKERS} processes)")
    for column in ("WORKER", "PID", "STATE", "PARTITIONS"):
        workers.add_column(column)
    for w in snapshot.workers:
        workers.add_row(w.name, str(w.pid), w.state,
                        ",".join(map(str, w.partitions)) or "-",
                        style="red" if w.state == "killed" else None)
    events = Text("\n".join(snapshot.events))
    return Renderables(header, lag, workers, events)


def _as_json(result: DemoResult) -> dict:
    return {
        "type": "demo", "ok": result.ok, **dataclasses.asdict(result),
        "duplicates": result.duplicates,
        "produce_records_per_s": round(result.produce_rate),
        "consume_records_per_s": round(result.consume_rate),
    }


def _table(result: DemoResult) -> Table:
    table = Table(title="mqlog demo")
    table.add_column("check")
    table.add_column("result", justify="right")
    takeover = ("not seen" if result.takeover_seconds is None
                else f"{result.takeover_seconds:.2f} s")
    rows = [
        ("orders produced", f"{result.acknowledged:,} of {result.records:,} acknowledged by "
                            f"{PRODUCERS} producers"),
        ("orders in the log", f"{result.in_log:,} in {PARTITIONS} partitions"),
        ("customers", f"{result.customers:,} ({result.customers_split} split over "
                      f"partitions)"),
        ("processed by the group", f"{result.processed:,} by {WORKERS} workers "
                                   f"({result.unique_processed:,} distinct)"),
        ("processed twice", f"{result.duplicates:,} (uncommitted when the worker died)"),
        ("lost", f"{result.lost:,}"),
        ("killed with SIGKILL", f"{result.killed_worker}, owning partitions "
                                f"{','.join(map(str, result.killed_partitions)) or 'none'}"),
        ("its partitions taken over in", takeover),
        ("produce throughput", f"{result.produce_rate:,.0f} orders/s "
                               f"({result.produce_seconds:.1f} s)"),
        ("consume throughput", f"{result.consume_rate:,.0f} orders/s "
                               f"({result.consume_seconds:.1f} s)"),
        ("verify errors", f"{result.verify_errors:,}"),
        ("total time", f"{result.total_seconds:.1f} s"),
        ("result", "ok: none lost" if result.ok else "FAILED"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
