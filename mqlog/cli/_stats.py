"""``mqlog stats``: per topic records, bytes, segments, in/out rates and oldest record,
and how many recoveries cut, skipped or rebuilt something in the topic (the
recovery journal, whose entries for the topics shown follow the table).

Rates need two looks: the command samples the topics and every group twice,
``--interval`` seconds apart; :mod:`mqlog.monitor` computes the figures (in:
records appended; out: records consumed, summed over the groups).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer
from rich.table import Table

from mqlog.cli._app import app, open_log
from mqlog.cli._options import JSON_OPTION
from mqlog.cli._output import console, emit_json, format_age, format_rate
from mqlog.cli._verify import print_recoveries
from mqlog.logstore.verify import read_journal
from mqlog.monitor import TopicStats, sample_topics, topic_stats

#: Default time between the two samples of the rates.
DEFAULT_INTERVAL_S = 1.0


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

    In: records/s appended; out: records/s consumed, summed over the consumer
    and queue groups; measured over --interval. Recoveries: entries of the recovery journal (what
    opening the log cut, skipped or rebuilt), listed below the table.
    """
    with open_log(ctx, reading=True) as log:
        names = topics or [name for name in log.topics()
                           if internal or not name.startswith("__")]
        first = sample_topics(log, names)
        second = None
        if interval > 0:
            time.sleep(interval)
            second = sample_topics(log, names)
        events = [e for e in read_journal(log.path) if e.topic in set(names)]
    results = topic_stats(first, second)
    recoveries = [sum(e.topic == s.topic for e in events) for s in results]
    if json_output:
        for result, count in zip(results, recoveries):
            emit_json({**dataclasses.asdict(result), "recoveries": count})
    else:
        console.print(_table(results, recoveries))
        print_recoveries(events)


def _table(results: list[TopicStats], recoveries: list[int]) -> Table:
    table = Table(title="mqlog stats")
    for column in ("TOPIC", "PARTITIONS", "RECORDS", "BYTES", "SEGMENTS", "IN", "OUT",
                   "OLDEST", "RECOVERIES"):
        table.add_column(column, justify="left" if column == "TOPIC" else "right")
    for s, count in zip(results, recoveries):
        table.add_row(s.topic, f"{s.partitions:,}", f"{s.records:,}", f"{s.bytes:,}",
                      f"{s.segments:,}", format_rate(s.in_per_s), format_rate(s.out_per_s),
                      format_age(s.oldest_record_age_ms), f"{count:,}")
    return table
