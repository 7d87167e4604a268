"""``mqlog lag [GROUP]``: how far each group is behind, once or live.

One sample is ``describe_group`` of every group asked for: consumer groups
(committed offset, lag, owner) and queue groups (position, lag, and the
queue's depth: ready, in flight, delayed, dead-lettered). ``--watch`` takes a
sample every SECS and derives rates from the difference with the previous one:
records/s appended (in) and committed (out) per partition, and per group the
time to drain its lag at the current rates. The figures and their
definitions are :mod:`mqlog.monitor`'s; this module only shows them.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group as Renderables
from rich.live import Live
from rich.table import Table
from rich.text import Text

import mqlog
from mqlog.cli._app import EXIT_FAILED, app, open_log
from mqlog.cli._groups import require_group
from mqlog.cli._options import JSON_OPTION, OptionalValueCommand
from mqlog.cli._output import console, emit_json, err_console, format_age, format_rate
from mqlog.monitor import GroupLag, LagRates, LagSample, PartitionLag, lag_rates, sample_lag

#: Refresh period of ``--watch`` given without a value.
DEFAULT_WATCH_S = 2.0


class _LagCommand(OptionalValueCommand):
    optional_values = {"--watch": str(DEFAULT_WATCH_S)}


@app.command(cls=_LagCommand)
def lag(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Argument(
        help="Only this group (default: every group).", show_default=False)] = None,
    watch: Annotated[float | None, typer.Option(
        "--watch", min=0.1, metavar="[SECS]",
        help=f"Refresh in place every SECS (default {DEFAULT_WATCH_S:g}) with rates; "
             f"Ctrl-C stops.", show_default=False)] = None,
    max_lag: Annotated[int | None, typer.Option(
        "--max-lag", min=0, metavar="N",
        help="Exit 1 when a partition's lag is over N (with --watch: shown in red).",
        show_default=False)] = None,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show how far groups are behind, once or live (--watch).

    Consumer groups, per topic and partition: committed offset, end offset,
    lag, age of the oldest unconsumed record and the owning member. Queue
    groups: position (first unfinished record), end offset, lag, and records
    ready, in flight, delayed and dead-lettered. Totals per group.
    """
    with open_log(ctx, reading=True) as log:
        if group is not None:
            require_group(log, group)
        if watch is None:
            current = sample_lag(log, group)
            _print_once(current, json_output)
        else:
            _watch(log, group, watch, max_lag, json_output)
            return
    over = [row for g in current.groups for row in g.partitions
            if max_lag is not None and row.lag > max_lag]
    if over:
        err_console.print(f"lag over {max_lag:,} in {len(over)} partitions: " + ", ".join(
            f"{row.group} {row.topic}/{row.partition} ({row.lag:,})" for row in over),
            markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)


def _print_once(sample: LagSample, json_output: bool) -> None:
    if json_output:
        _emit_json(sample, None)
    elif not sample.groups:
        err_console.print("no groups", markup=False, soft_wrap=True)
    else:
        console.print(_tables(sample, None, None, watching=False))


def _watch(log: mqlog.Log, group: str | None, every_s: float, max_lag: int | None,
           json_output: bool) -> None:
    """Sample every ``every_s`` until Ctrl-C: JSON lines, or a table redrawn in place."""
    previous = None
    try:
        if json_output:
            while True:
                previous = _sleep_until(previous, every_s)
                current = sample_lag(log, group)
                _emit_json(current, lag_rates(previous, current))
                sys.stdout.flush()  # each refresh reaches a pipe at once
                previous = current
        with Live(console=console, auto_refresh=False) as live:
            while True:
                previous = _sleep_until(previous, every_s)
                current = sample_lag(log, group)
                live.update(_tables(current, lag_rates(previous, current), max_lag,
                                    watching=True), refresh=True)
                previous = current
    except KeyboardInterrupt:
        return


def _sleep_until(previous: LagSample | None, every_s: float) -> LagSample | None:
    """Sleep until the next sample is due; return ``previous`` unchanged."""
    if previous is not None:
        time.sleep(max(previous.taken_s + every_s - time.monotonic(), 0.0))
    return previous


def _emit_json(sample: LagSample, rates: LagRates | None) -> None:
    for group in sample.groups:
        for row in group.partitions:
            document = _partition_json(row)
            if rates is not None:
                measured = rates.partitions.get(row.key)
                document["in_per_s"] = round(measured.in_per_s if measured else 0.0, 1)
                document["out_per_s"] = round(measured.out_per_s if measured else 0.0, 1)
            emit_json(document)
        total = {"type": "group", "group": group.group, "kind": group.kind,
                 "state": group.state, "generation": group.generation,
                 "members": group.members, "total_lag": group.total_lag}
        if rates is not None:
            summed = rates.of_group(group)
            total.update(in_per_s=round(summed.in_per_s, 1),
                         out_per_s=round(summed.out_per_s, 1),
                         drain_s=None if summed.drain_s is None else round(summed.drain_s, 1))
        emit_json(total)


def _partition_json(row: PartitionLag) -> dict[str, Any]:
    """One partition, named as kafka-consumer-groups names the columns."""
    document: dict[str, Any] = {
        "type": "partition", "group": row.group, "topic": row.topic,
        "partition": row.partition, "current_offset": row.committed_offset,
        "log_end_offset": row.end_offset, "lag": row.lag,
        "oldest_unconsumed_age_ms": row.oldest_unconsumed_age_ms,
        "consumer_id": row.member_id, "host": row.host, "pid": row.pid}
    if row.depth is not None:
        document.update(ready=row.depth.ready, in_flight=row.depth.in_flight,
                        delayed=row.depth.delayed, expired=row.depth.expired,
                        dead_lettered=row.depth.dead_lettered)
    return document


#: Column headings; the offsets' are on two lines to fit an 80-column terminal.
_COLUMNS = ("TOPIC", "PARTITION", "CURRENT-\nOFFSET", "LOG-END-\nOFFSET", "LAG", "AGE",
            "CONSUMER-ID", "HOST", "PID")
#: A queue group's headings: its position and depth instead of an owner.
_QUEUE_COLUMNS = ("TOPIC", "PARTITION", "POSITION", "LOG-END-\nOFFSET", "LAG", "READY",
                  "IN-\nFLIGHT", "DELAYED", "DEAD-\nLETTERED", "AGE")
#: Columns whose cells wrap when the terminal is narrow, with their narrowest width;
#: the others keep the width of their content.
_FOLDING = {"CONSUMER-ID": 10, "HOST": 4}
_QUEUE_FOLDING = {"TOPIC": 5}


def _tables(sample: LagSample, rates: LagRates | None, max_lag: int | None,
            watching: bool) -> Renderables:
    """One table per group; the footer holds the totals, the caption (``watching``) the
    rates."""
    if not sample.groups:
        return Renderables(Text("no groups"))
    return Renderables(*(_table(group, rates, max_lag, watching) for group in sample.groups))


def _table(group: GroupLag, rates: LagRates | None, max_lag: int | None,
           watching: bool) -> Table:
    queue = group.kind == "queue"
    if queue:
        title = f"queue group {group.group}: {group.state}, {group.members} workers"
    else:
        title = (f"group {group.group}: {group.state}, generation {group.generation}, "
                 f"{group.members} members")
    table = Table(title=title, caption=_rates_caption(group, rates) if watching else None,
                  show_footer=True, box=box.SIMPLE_HEAD,
                  padding=0 if queue else (0, 1, 0, 0))  # ten queue columns fit 80
    footers = {"TOPIC": "total", "LAG": f"{group.total_lag:,}"}
    if group.depth is not None:
        footers.update({"READY": f"{group.depth.ready:,}",
                        "IN-\nFLIGHT": f"{group.depth.in_flight:,}",
                        "DELAYED": f"{group.depth.delayed:,}",
                        "DEAD-\nLETTERED": f"{group.depth.dead_lettered:,}"})
    folds = _QUEUE_FOLDING if queue else _FOLDING
    for column in _QUEUE_COLUMNS if queue else _COLUMNS:
        folding = column in folds
        table.add_column(column, footer=footers.get(column, ""),
                         justify="left" if folding or column == "TOPIC" else "right",
                         overflow="fold", no_wrap=not folding, min_width=folds.get(column))
    for row in group.partitions:
        over = max_lag is not None and row.lag > max_lag
        table.add_row(*(_queue_cells(row) if queue else _consumer_cells(row)),
                      style="bold red" if over else None)
    return table


def _offset(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _consumer_cells(row: PartitionLag) -> list[str]:
    return [row.topic, str(row.partition), _offset(row.committed_offset),
            f"{row.end_offset:,}", f"{row.lag:,}", format_age(row.oldest_unconsumed_age_ms),
            row.member_id or "-", row.host or "-", "-" if row.pid is None else str(row.pid)]


def _queue_cells(row: PartitionLag) -> list[str]:
    depth = row.depth
    return [row.topic, str(row.partition), _offset(row.committed_offset),
            f"{row.end_offset:,}", f"{row.lag:,}",
            *(("-",) * 4 if depth is None else (
                f"{depth.ready:,}", f"{depth.in_flight:,}", f"{depth.delayed:,}",
                f"{depth.dead_lettered:,}")),
            format_age(row.oldest_unconsumed_age_ms)]


def _rates_caption(group: GroupLag, rates: LagRates | None) -> str:
    """``in N/s  out N/s  drain T`` of a group (rates need a previous sample)."""
    if rates is None:
        return "measuring rates..."
    summed = rates.of_group(group)
    if not group.total_lag:
        drained = "caught up"
    elif summed.drain_s is None:
        drained = "drain never"
    else:
        drained = f"drain {format_age(summed.drain_s * 1000)}"
    return (f"in {format_rate(summed.in_per_s)}   out {format_rate(summed.out_per_s)}   "
            f"{drained}")
