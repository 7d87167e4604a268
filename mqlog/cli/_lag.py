"""``mqlog lag [GROUP]``: how far each group is behind, once or live.

One sample is ``describe_group`` of every group asked for: consumer groups
(committed offset, lag, owner) and queue groups (position, lag, and the
queue's depth: ready, in flight, delayed, dead-lettered). ``--watch`` takes a
sample every SECS and derives rates from the difference with the previous one:
records/s appended (in) and committed (out) per partition, and per group the
time to drain its lag at the current rates.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Annotated

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
from mqlog.consumer import GroupDescription

#: Refresh period of ``--watch`` given without a value.
DEFAULT_WATCH_S = 2.0


class _LagCommand(OptionalValueCommand):
    optional_values = {"--watch": str(DEFAULT_WATCH_S)}


@dataclasses.dataclass(frozen=True)
class Row:
    """One partition of one group, with the member that owns it (if any)."""

    group: str
    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int
    lag: int
    oldest_unconsumed_age_ms: int | None
    consumer_id: str | None
    host: str | None
    pid: int | None
    #: Queue groups only (None for consumer groups), see GroupPartitionDescription.
    ready: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    expired: int | None = None
    dead_lettered: int | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return self.group, self.topic, self.partition


@dataclasses.dataclass(frozen=True)
class Sample:
    """Every group's description and rows at one moment (``time.monotonic()``)."""

    taken: float
    groups: list[GroupDescription]
    rows: dict[tuple[str, str, int], Row]


@dataclasses.dataclass(frozen=True)
class Rates:
    """Records/s appended and committed per partition, between two samples."""

    appended: dict[tuple[str, str, int], float]
    committed: dict[tuple[str, str, int], float]

    @classmethod
    def between(cls, before: Sample | None, after: Sample) -> Rates | None:
        if before is None or after.taken <= before.taken:
            return None
        seconds = after.taken - before.taken
        appended, committed = {}, {}
        for key, row in after.rows.items():
            old = before.rows.get(key)
            if old is None:
                continue
            appended[key] = max(row.log_end_offset - old.log_end_offset, 0) / seconds
            committed[key] = max((row.current_offset or 0) - (old.current_offset or 0),
                                 0) / seconds
        return cls(appended, committed)

    def totals(self, rows: list[Row]) -> tuple[float, float]:
        return (sum(self.appended.get(row.key, 0.0) for row in rows),
                sum(self.committed.get(row.key, 0.0) for row in rows))


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
            current = take_sample(log, group)
            _print_once(current, json_output)
        else:
            _watch(log, group, watch, max_lag, json_output)
            return
    over = [row for row in current.rows.values() if max_lag is not None and row.lag > max_lag]
    if over:
        err_console.print(f"lag over {max_lag:,} in {len(over)} partitions: " + ", ".join(
            f"{row.group} {row.topic}/{row.partition} ({row.lag:,})" for row in over),
            markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)


def take_sample(log: mqlog.Log, group: str | None) -> Sample:
    """Describe ``group`` (or every group) now."""
    names = [group] if group is not None else log.list_groups()
    descriptions = [log.describe_group(name) for name in names]
    rows = {}
    for description in descriptions:
        members = {member.member_id: member for member in description.members}
        for p in description.partitions:
            member = members.get(p.member_id) if p.member_id else None
            row = Row(description.group, p.topic, p.partition, p.committed_offset,
                      p.end_offset, p.lag, p.oldest_unconsumed_age_ms, p.member_id,
                      member.host if member else None, member.pid if member else None,
                      p.ready, p.in_flight, p.delayed, p.expired, p.dead_lettered)
            rows[row.key] = row
    return Sample(time.monotonic(), descriptions, rows)


def _group_rows(sample: Sample, group: str) -> list[Row]:
    return [row for row in sample.rows.values() if row.group == group]


def _print_once(sample: Sample, json_output: bool) -> None:
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
                current = take_sample(log, group)
                _emit_json(current, Rates.between(previous, current))
                sys.stdout.flush()  # each refresh reaches a pipe at once
                previous = current
        with Live(console=console, auto_refresh=False) as live:
            while True:
                previous = _sleep_until(previous, every_s)
                current = take_sample(log, group)
                live.update(_tables(current, Rates.between(previous, current), max_lag,
                                    watching=True), refresh=True)
                previous = current
    except KeyboardInterrupt:
        return


def _sleep_until(previous: Sample | None, every_s: float) -> Sample | None:
    """Sleep until the next sample is due; return ``previous`` unchanged."""
    if previous is not None:
        time.sleep(max(previous.taken + every_s - time.monotonic(), 0.0))
    return previous


def _drain_s(lag: int, rates: Rates | None, rows: list[Row]) -> float | None:
    """Seconds to reach lag 0 at the current rates; None if not measured or never."""
    if lag == 0:
        return 0.0
    if rates is None:
        return None
    appended, committed = rates.totals(rows)
    return lag / (committed - appended) if committed > appended else None


def _emit_json(sample: Sample, rates: Rates | None) -> None:
    for description in sample.groups:
        rows = _group_rows(sample, description.group)
        for row in rows:
            document = {"type": "partition", **dataclasses.asdict(row)}
            if description.kind != "queue":
                for field in _QUEUE_FIELDS:
                    del document[field]
            if rates is not None:
                document["in_per_s"] = round(rates.appended.get(row.key, 0.0), 1)
                document["out_per_s"] = round(rates.committed.get(row.key, 0.0), 1)
            emit_json(document)
        total = {"type": "group", "group": description.group, "kind": description.kind,
                 "state": description.state,
                 "generation": description.generation, "members": len(description.members),
                 "total_lag": description.total_lag}
        if rates is not None:
            appended, committed = rates.totals(rows)
            drain = _drain_s(description.total_lag, rates, rows)
            total.update(in_per_s=round(appended, 1), out_per_s=round(committed, 1),
                         drain_s=None if drain is None else round(drain, 1))
        emit_json(total)


#: Row fields that only queue groups have.
_QUEUE_FIELDS = ("ready", "in_flight", "delayed", "expired", "dead_lettered")
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


def _tables(sample: Sample, rates: Rates | None, max_lag: int | None,
            watching: bool) -> Renderables:
    """One table per group; the footer holds the totals, the caption (``watching``) the
    rates."""
    if not sample.groups:
        return Renderables(Text("no groups"))
    return Renderables(*(_table(sample, description, rates, max_lag, watching)
                         for description in sample.groups))


def _table(sample: Sample, description: GroupDescription, rates: Rates | None,
           max_lag: int | None, watching: bool) -> Table:
    rows = _group_rows(sample, description.group)
    queue = description.kind == "queue"
    if queue:
        title = (f"queue group {description.group}: {description.state}, "
                 f"{len(description.members)} workers")
    else:
        title = (f"group {description.group}: {description.state}, generation "
                 f"{description.generation}, {len(description.members)} members")
    table = Table(title=title,
                  caption=_rates_caption(description, rates, rows) if watching else None,
                  show_footer=True, box=box.SIMPLE_HEAD,
                  padding=0 if queue else (0, 1, 0, 0))  # ten queue columns fit 80
    footers = {"TOPIC": "total", "LAG": f"{description.total_lag:,}"}
    if queue:
        footers.update({
            column: f"{sum(getattr(row, field) or 0 for row in rows):,}"
            for column, field in (("READY", "ready"), ("IN-\nFLIGHT", "in_flight"),
                                  ("DELAYED", "delayed"), ("DEAD-\nLETTERED", "dead_lettered"))
        })
    folds = _QUEUE_FOLDING if queue else _FOLDING
    for column in _QUEUE_COLUMNS if queue else _COLUMNS:
        folding = column in folds
        table.add_column(column, footer=footers.get(column, ""),
                         justify="left" if folding or column == "TOPIC" else "right",
                         overflow="fold", no_wrap=not folding, min_width=folds.get(column))
    for row in rows:
        over = max_lag is not None and row.lag > max_lag
        table.add_row(*(_queue_cells(row) if queue else _consumer_cells(row)),
                      style="bold red" if over else None)
    return table


def _offset(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _consumer_cells(row: Row) -> list[str]:
    return [row.topic, str(row.partition), _offset(row.current_offset),
            f"{row.log_end_offset:,}", f"{row.lag:,}", format_age(row.oldest_unconsumed_age_ms),
            row.consumer_id or "-", row.host or "-", "-" if row.pid is None else str(row.pid)]


def _queue_cells(row: Row) -> list[str]:
    return [row.topic, str(row.partition), _offset(row.current_offset),
            f"{row.log_end_offset:,}", f"{row.lag:,}", _offset(row.ready),
            _offset(row.in_flight), _offset(row.delayed), _offset(row.dead_lettered),
            format_age(row.oldest_unconsumed_age_ms)]


def _rates_caption(description: GroupDescription, rates: Rates | None, rows: list[Row]) -> str:
    """``in N/s  out N/s  drain T`` of a group (rates need a previous sample)."""
    if rates is None:
        return "measuring rates..."
    appended, committed = rates.totals(rows)
    drain = _drain_s(description.total_lag, rates, rows)
    if not description.total_lag:
        drained = "caught up"
    elif drain is None:
        drained = "drain never"
    else:
        drained = f"drain {format_age(drain * 1000)}"
    return f"in {format_rate(appended)}   out {format_rate(committed)}   {drained}"
