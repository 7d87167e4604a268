"""``mqlog mirror SRC DST``: copy topics and committed offsets between two logs.

SRC and DST are what ``--dir`` takes: a log directory or a ``kafka://`` URL.
The work is :class:`mqlog.mirror.Mirror`'s; this module opens the two logs,
shows a progress bar (on a terminal), turns SIGTERM and Ctrl-C into a clean
stop (progress recorded) and prints the translation and the verification.
Exit codes: 0 when every partition verified equal, 1 when one differs, 130
when a finite copy was interrupted (run the same command again to go on).
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

import mqlog
from mqlog.cli._app import EXIT_FAILED, EXIT_INTERRUPTED, app, check_not_a_file
from mqlog.cli._output import console, err_console
from mqlog.cli._signals import stopping_on
from mqlog.cluster import is_cluster_url
from mqlog.mirror import GroupSync, Mirror, PartitionCheck


@app.command()
def mirror(
    source: Annotated[str, typer.Argument(
        metavar="SRC", help="Log directory or kafka://HOST:PORT[,...][?OPTION=VALUE...] to copy "
                            "from.", show_default=False)],
    destination: Annotated[str, typer.Argument(
        metavar="DST", help="Log directory (created if missing) or kafka:// URL to copy to.",
        show_default=False)],
    topics: Annotated[str | None, typer.Option(
        "--topics", metavar="PATTERN",
        help="Mirror the topics this regular expression matches in full (default: all "
             "but internal ones).")] = None,
    groups: Annotated[bool, typer.Option(
        "--groups", help="Also translate consumer groups' committed offsets to the "
                         "destination's offsets (periodically with --follow).")] = False,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Keep copying new records until SIGTERM or Ctrl-C, then stop "
                         "cleanly with the progress recorded.")] = False,
) -> None:
    """Copy topics (partition by partition; keys, headers and timestamps kept) and,
    with --groups, committed offsets from SRC to DST, then compare per partition
    record counts and checksums.

    Resumable: the progress is kept in DST's topic mqlog-mirror, so the same
    command after a kill goes on where the copy stopped, without duplicates or
    gaps. Exits 1 when a partition differs (docs/migration.md).
    """
    stop = threading.Event()
    with ExitStack() as stack:
        source_log = stack.enter_context(_opened(source, reading=True))
        destination_log = stack.enter_context(_opened(destination, reading=False))
        stack.enter_context(stopping_on(stop, (signal.SIGTERM, signal.SIGINT)))
        bar = stack.enter_context(_bar())
        tasks: dict[str, TaskID] = {}
        totals: dict[str, int] = {}
        done: dict[str, int] = {}

        def copied(topic: str, count: int) -> None:
            if topic not in tasks:  # created in the source while following
                tasks[topic] = bar.add_task(topic, total=0)
            done[topic] = done.get(topic, 0) + count
            totals[topic] = max(totals.get(topic, 0), done[topic])  # following: new records
            bar.update(tasks[topic], completed=done[topic], total=totals[topic])

        job = Mirror(source_log, destination_log, topics=topics, source_name=source,
                     on_copied=copied)
        job.start()
        for (topic, number), found in sorted(job.found_again.items()):
            _warn(f"{topic}/{number}: {found:,} records copied before the last stop found in "
                  f"the destination")
        for topic, left in sorted(job.remaining().items()):
            tasks[topic] = bar.add_task(topic, total=left)
            totals[topic] = left
        count = job.copy(stop, follow=follow, groups=groups)
        bar.stop()
        for (topic, number), passed in sorted(job.skipped.items()):
            _warn(f"{topic}/{number}: {passed:,} offsets were deleted from the source "
                  f"(retention) before they could be copied")
        names = job.topics
        plural = "" if len(names) == 1 else "s"
        _say(f"mirrored {count:,} records of {len(names)} topic{plural} from {source} to "
             f"{destination}")
        if stop.is_set() and not follow:
            _warn("stopped: the progress is recorded; the same command goes on from there")
            raise typer.Exit(EXIT_INTERRUPTED)
        if groups:
            _print_groups(job.sync_groups())
        checks = job.verify()
    _print_checks(checks)


@contextmanager
def _opened(target: str, reading: bool) -> Iterator[mqlog.Log]:
    """SRC (``reading``: it must exist; a cluster is opened read-only) or DST."""
    if is_cluster_url(target):
        with mqlog.open(target, read_only=reading) as log:
            yield log
        return
    directory = Path(target)
    check_not_a_file(directory)
    if reading and not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist", target)
    with mqlog.open(directory, create=not reading, apply_retention=False) as log:
        yield log


@contextmanager
def _bar() -> Iterator[Progress]:
    """Records copied of those to copy, per topic; nothing when stderr is not a terminal."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console,
                  disable=not err_console.is_terminal) as bar:
        yield bar


def _say(text: str) -> None:
    """A line on stdout, as it is (no markup, no wrapping)."""
    console.print(text, markup=False, soft_wrap=True)


def _warn(text: str) -> None:
    """A line on stderr, as it is."""
    err_console.print(text, markup=False, soft_wrap=True)


def _print_groups(results: list[GroupSync]) -> None:
    for result in results:
        if result.skipped is not None:
            _say(f"group {result.group}: not translated: {result.skipped}")
            continue
        moved = ", ".join(f"{tp.topic}/{tp.partition} -> {offset}"
                          for tp, offset in sorted(result.committed.items()))
        _say(f"group {result.group}: {moved or 'already up to date'}")


def _print_checks(checks: list[PartitionCheck]) -> None:
    different = [check for check in checks if not check.ok]
    for check in checks:
        where = f"{check.topic}/{check.partition}"
        if check.ok:
            _say(f"{where}: {check.source.records:,} records, xxh3 {check.source.xxh3}: equal")
        else:
            problem = f" ({check.problem})" if check.problem else ""
            _say(f"{where}: DIFFERENT: source {check.source.records:,} records xxh3 "
                 f"{check.source.xxh3}, destination {check.destination.records:,} records xxh3 "
                 f"{check.destination.xxh3 or '-'}{problem}")
    if different:
        _warn(f"mqlog: verification failed: {len(different)} of {len(checks)} partitions "
              f"differ between source and destination")
        raise typer.Exit(EXIT_FAILED)
    _say(f"verified {len(checks)} partitions: record counts and checksums equal")
