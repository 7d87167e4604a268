"""``mqlog stats``: per topic records, bytes, segments, in/out rates and oldest record,
and how many recoveries cut, skipped or rebuilt something in the topic (the
recovery journal, whose entries for the topics shown follow the table).

Rates need two looks: the command samples end offsets (records in) and the
committed offsets of every group (records out, summed over groups) twice,
``--interval`` seconds apart.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer
from rich.table import Table

import mqlog
from mqlog.cli._app import app, open_log
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json, format_age, format_rate
from mqlog.cli._verify import print_recoveries
from mqlog.logstore import TopicDescription
from mqlog.logstore.verify import read_journal

#: Default time between the two samples of the rates.
DEFAULT_INTERVAL_S = 1.0


@dataclasses.dataclass(frozen=True)
class TopicStats:
    topic: str
    partitions: int
    records: int
    bytes: int
    segments: int
    in_per_s: float | None
    out_per_s: float | None
    oldest_record_age_ms: int | None
    #: Entries of the recovery journal for this topic.
    recoveries: int


@app.command()
def stats(
    ctx: typer.Context,
    topics: Annotated[list[str] | None, typer.Argument(
        help="Only these topics (default: all but internal ones).", show_default=False)]
    = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.0, metavar="SECS",
        help="Measure rates over SECS (0: no rates, answer at once).")] = DEFAULT_INTERVAL_S,
    internal: Annotated[bool, typer.Option(
        "--internal", help="Include internal topics (__consumer_offsets).")] = False,
    json_output: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show per topic records, bytes, segments, in/out rates, the oldest record
    and recoveries.

    In: records/s appended; out: records/s committed by consumer groups,
    measured over --interval. Recoveries: entries of the recovery journal (what
    opening the log cut, skipped or rebuilt), listed below the table.
    """
    with open_log(ctx, reading=True) as log:
        names = topics or [name for name in log.topics()
                           if internal or not name.startswith("__")]
        first = _sample(log, names)
        second = None
        if interval > 0:
            time.sleep(interval)
            second = _sample(log, names)
        events = [e for e in read_journal(log.path) if e.topic in set(names)]
        results = [_stats(log, first[name], second[name] if second else None,
                          sum(e.topic == name for e in events))
                   for name in names]
    if json_output:
        for result in results:
            emit_json(dataclasses.asdict(result))
    else:
        console.print(_table(results))
        print_recoveries(events)


@dataclasses.dataclass(frozen=True)
class _Sample:
    taken: float
    description: TopicDescription
    #: Committed offset of each (group, partition) of this topic.
    committed: dict[tuple[str, int], int]


def _sample(log: mqlog.Log, names: list[str]) -> dict[str, _Sample]:
    descriptions = {name: log.describe_topic(name) for name in names}
    committed: dict[str, dict[tuple[str, int], int]] = {name: {} for name in names}
    for group in log.list_groups():
        for p in log.describe_group(group).partitions:
            if p.topic in committed and p.committed_offset is not None:
                committed[p.topic][group, p.partition] = p.committed_offset
    taken = time.monotonic()
    return {name: _Sample(taken, descriptions[name], committed[name]) for name in names}


def _stats(log: mqlog.Log, before: _Sample, after: _Sample | None,
           recoveries: int) -> TopicStats:
    """The stats of one topic; rates only with a second sample."""
    latest = before.description if after is None else after.description
    in_rate = out_rate = None
    if after is not None:
        seconds = max(after.taken - before.taken, 1e-9)
        appended = sum(p.end_offset for p in latest.partitions) - sum(
            p.end_offset for p in before.description.partitions)
        consumed = sum(max(offset - before.committed[key], 0)
                       for key, offset in after.committed.items() if key in before.committed)
        in_rate, out_rate = max(appended, 0) / seconds, consumed / seconds
    return TopicStats(latest.name, len(latest.partitions), latest.record_count,
                      latest.size_bytes, sum(p.segment_count for p in latest.partitions),
                      in_rate, out_rate, _oldest_age(log, latest), recoveries)


def _oldest_age(log: mqlog.Log, description: TopicDescription) -> int | None:
    """ms since the oldest first record of the partitions was written; None if empty."""
    oldest = None
    for p in description.partitions:
        if p.end_offset > p.start_offset:
            first = log.read(description.name, p.partition, p.start_offset, max_records=1)
            if first and (oldest is None or first[0].timestamp < oldest):
                oldest = first[0].timestamp
    return None if oldest is None else max(log.now_ms() - oldest, 0)


def _table(results: list[TopicStats]) -> Table:
    table = Table(title="mqlog stats")
    for column in ("TOPIC", "PARTITIONS", "RECORDS", "BYTES", "SEGMENTS", "IN", "OUT",
                   "OLDEST", "RECOVERIES"):
        table.add_column(column, justify="left" if column == "TOPIC" else "right")
    for s in results:
        table.add_row(s.topic, f"{s.partitions:,}", f"{s.records:,}", f"{s.bytes:,}",
                      f"{s.segments:,}", format_rate(s.in_per_s), format_rate(s.out_per_s),
                      format_age(s.oldest_record_age_ms), f"{s.recoveries:,}")
    return table
