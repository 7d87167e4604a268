"""``mqlog topics truncate|retention|compact``: move log start offsets, now.

``truncate`` deletes the records before an offset (kafka-delete-records, Redis
``XTRIM MINID``); ``retention`` and ``compact`` run the topic's retention and
compaction at once instead of waiting for the next roll. Each command calls
one library method per partition or topic and prints what it did.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

import mqlog
from mqlog.cli._app import EXIT_USAGE, CliError, settings
from mqlog.cli._output import console, emit_json
from mqlog.cli._topics import topics_app
from mqlog.errors import OffsetOutOfRangeError, UnknownPartitionError

_JSON = typer.Option("--json", help="Print one JSON object per line.")
#: ``--before`` value meaning "the end offset of each partition" (as Kafka's -1).
END = -1


@topics_app.command("truncate")
def truncate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    before: Annotated[int, typer.Option(
        "--before", help="Delete the records before this offset (-1: every record).",
        show_default=False)],
    partition: Annotated[int | None, typer.Option(
        "--partition", "-p", help="Only this partition (default: every partition).",
        show_default=False)] = None,
    json_output: Annotated[bool, _JSON] = False,
) -> None:
    """Delete the records before an offset: move the log start offset there.

    Whole segments below it are deleted, the rest is no longer read. Every
    partition is checked before any is changed: an offset beyond a
    partition's end changes nothing and exits 3.
    """
    if before < END:
        raise CliError(f"--before must be an offset or -1, not {before}", EXIT_USAGE)
    with _open_log(ctx) as log:
        partitions = log.describe_topic(name).partitions
        if partition is not None and not 0 <= partition < len(partitions):
            raise UnknownPartitionError(
                f"topic {name!r} has no partition {partition} (it has {len(partitions)})")
        plan = []
        for described in partitions if partition is None else [partitions[partition]]:
            number, start, end = (described.partition, described.start_offset,
                                  described.end_offset)
            target = end if before == END else before
            if target > end:
                raise OffsetOutOfRangeError(
                    f"cannot delete records before offset {target} of {name}/{number}: "
                    f"its end offset is {end}", offset=target, start_offset=start,
                    end_offset=end)
            plan.append((number, start, target))
        for number, start, target in plan:
            now = log.delete_records(name, number, target)
            if json_output:
                emit_json({"topic": name, "partition": number, "previous_start_offset": start,
                           "start_offset": now})
            else:
                change = f"{start} -> {now}" if now != start else f"{now} (unchanged)"
                console.print(f"{name}/{number}: start offset {change}", markup=False,
                              soft_wrap=True)


@topics_app.command("retention")
def retention(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        help="Topic name (default: every topic).", show_default=False)] = None,
    json_output: Annotated[bool, _JSON] = False,
) -> None:
    """Apply retention now: delete the closed segments retention wants gone."""
    with _open_log(ctx) as log:
        names = [name] if name is not None else log.topics()
        for topic in names:
            before = _start_offsets(log, topic)
            deleted = log.enforce_retention(topic)
            after = _start_offsets(log, topic)
            if json_output:
                emit_json({"topic": topic, "segments_deleted": deleted,
                           "start_offsets": after})
                continue
            moved = ", ".join(f"{number}: {before[number]} -> {offset}"
                              for number, offset in enumerate(after)
                              if offset != before[number])
            console.print(f"{topic}: {_segments(deleted)} deleted"
                          + (f" (start offsets {moved})" if moved else ""),
                          markup=False, soft_wrap=True)


@topics_app.command("compact")
def compact(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        help="Topic name (default: every compacted topic).", show_default=False)] = None,
    json_output: Annotated[bool, _JSON] = False,
) -> None:
    """Compact now: keep the latest record of each key in the closed segments."""
    with _open_log(ctx) as log:
        if name is not None:
            policy = log.describe_topic(name).config.cleanup_policy
            if policy != "compact":
                raise CliError(f"topic {name!r} is not compacted (cleanup policy {policy!r})",
                               EXIT_USAGE)
            names = [name]
        else:
            names = [topic for topic in log.topics()
                     if log.describe_topic(topic).config.cleanup_policy == "compact"]
        for topic in names:
            rewritten = log.compact(topic)
            if json_output:
                emit_json({"topic": topic, "segments_rewritten": rewritten})
            else:
                console.print(f"{topic}: {_segments(rewritten)} rewritten", markup=False,
                              soft_wrap=True)


@contextmanager
def _open_log(ctx: typer.Context) -> Iterator[mqlog.Log]:
    """The --dir log, writable, without retention applied by opening partitions
    (so that what a command reports is what it did); a Kafka cluster as such."""
    url = settings(ctx).cluster_url
    if url is not None:
        with mqlog.open(url) as cluster:
            yield cluster
        return
    directory = settings(ctx).directory
    if not directory.is_dir():
        raise FileNotFoundError(errno.ENOENT, "log directory does not exist",
                                os.fspath(directory))
    with mqlog.open(directory, create=False, apply_retention=False) as log:
        yield log


def _start_offsets(log: mqlog.Log, topic: str) -> list[int]:
    return [described.start_offset for described in log.describe_topic(topic).partitions]


def _segments(count: int) -> str:
    return f"{count} segment" if count == 1 else f"{count} segments"
