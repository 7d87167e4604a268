"""``mqlog metrics``: the log's Prometheus metrics, once, without a server.

The page is :func:`mqlog.metrics.exposition` of the log without a server's
counters (a one-shot process appended and read nothing worth counting): the
topics' offsets and sizes, the groups' lag and oldest unconsumed age, the
queue groups' depth. ``--output FILE`` replaces FILE atomically, as the node
exporter's textfile collector needs (a ``*.prom`` file in its directory,
rewritten from cron). prometheus_client is imported when the command runs:
no other command pays for it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mqlog.cli._app import EXIT_NOT_FOUND, CliError, app, open_log
from mqlog.cli._groups import require_group
from mqlog.logstore import atomic_write


@app.command()
def metrics(
    ctx: typer.Context,
    topics: Annotated[list[str] | None, typer.Option(
        "--topic", "-t", help="Only this topic (repeat for several; default: every topic, "
        "internal ones included).", show_default=False)] = None,
    groups: Annotated[list[str] | None, typer.Option(
        "--group", "-g", help="Only this group (repeat for several; default: every group).",
        show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write to FILE (replaced atomically) instead of stdout.",
        show_default=False)] = None,
) -> None:
    """Print the log's metrics once, in the Prometheus text format.

    The same page as `/metrics` of `mqlog serve`, without the server's own
    counters: per partition start and end offset, bytes and segments; per
    group and partition committed offset, lag and oldest unconsumed age, lag
    sums; per queue group and partition records ready, in flight, delayed and
    dead-lettered (docs/metrics.md). For the node exporter's textfile
    collector: `mqlog metrics --output DIR/mqlog.prom`.
    """
    from mqlog.metrics import exposition

    with open_log(ctx, reading=True) as log:
        if topics:
            known = set(log.topics())
            for topic in topics:
                if topic not in known:
                    raise CliError(f"unknown topic {topic!r}", EXIT_NOT_FOUND)
        for group in groups or ():
            require_group(log, group)
        page = exposition(log, topics=topics or None, groups=groups or None)
    if output is None:
        sys.stdout.write(page.decode())
    else:
        atomic_write(str(output), page, durable=False)
