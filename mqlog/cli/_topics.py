"""``mqlog topics list|create|describe|delete``: manage the topics of --dir."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mqlog.cli._app import EXIT_FAILED, app, open_log
from mqlog.cli._output import console, emit_json
from mqlog.errors import UnknownTopicError
from mqlog.logstore import TopicDescription

topics_app = typer.Typer(help="List, create, describe and delete topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")

_JSON = typer.Option("--json", help="Print one JSON object per line.")


class Durability(str, enum.Enum):
    """Choices of the durability option (see TopicConfig)."""

    none = "none"
    interval = "interval"
    always = "always"


@topics_app.command("list")
def list_topics(ctx: typer.Context, json_output: Annotated[bool, _JSON] = False) -> None:
    """Print the topic names, one per line."""
    with open_log(ctx) as log:
        names = log.topics()
    for name in names:
        if json_output:
            emit_json({"name": name})
        else:
            console.print(name, markup=False)


@topics_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        help="Topic name: 1 to 249 letters, digits, dots, underscores or dashes.")],
    partitions: Annotated[int, typer.Option("--partitions", "-p", help="Partition count.")] = 1,
    segment_bytes: Annotated[int | None, typer.Option(help="Roll segments past this size.")]
    = None,
    segment_ms: Annotated[int | None, typer.Option(help="Roll segments older than this.")]
    = None,
    index_interval_bytes: Annotated[int | None, typer.Option(
        help="Bytes between sparse index entries.")] = None,
    retention_ms: Annotated[int | None, typer.Option(
        help="Delete closed segments whose newest record is older.")] = None,
    retention_bytes: Annotated[int | None, typer.Option(
        help="Delete oldest closed segments while a partition is larger.")] = None,
    max_record_bytes: Annotated[int | None, typer.Option(
        help="Largest key + headers + value of one record.")] = None,
    durability: Annotated[Durability | None, typer.Option(
        help="When appends are flushed to disk.")] = None,
    flush_ms: Annotated[int | None, typer.Option(help="Flush period of 'interval'.")] = None,
    json_output: Annotated[bool, _JSON] = False,
) -> None:
    """Create a topic (and the log directory if missing); options left out take the defaults."""
    given = {
        "segment_bytes": segment_bytes, "segment_ms": segment_ms,
        "index_interval_bytes": index_interval_bytes, "retention_ms": retention_ms,
        "retention_bytes": retention_bytes, "max_record_bytes": max_record_bytes,
        "durability": durability.value if durability is not None else None,
        "flush_ms": flush_ms,
    }
    config = {key: value for key, value in given.items() if value is not None}
    with open_log(ctx, create=True) as log:
        description = log.create_topic(name, partitions, **config)
    if json_output:
        emit_json(_description_json(description))
    else:
        console.print(f"created topic {name!r} with {partitions} partitions", markup=False)


@topics_app.command("describe")
def describe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    json_output: Annotated[bool, _JSON] = False,
) -> None:
    """Print a topic's config and each partition's offsets, size and segment count."""
    with open_log(ctx) as log:
        description = log.describe_topic(name)
    if json_output:
        emit_json(_description_json(description))
        return
    table = Table(title=f"topic {name}")
    for column in ("partition", "start_offset", "end_offset", "records", "bytes", "segments"):
        table.add_column(column, justify="right")
    for p in description.partitions:
        table.add_row(*(f"{value:,}" for value in (
            p.partition, p.start_offset, p.end_offset, p.record_count, p.size_bytes,
            p.segment_count)))
    console.print(table)
    for key, value in dataclasses.asdict(description.config).items():
        console.print(Text(f"{key} = {value}"))


@topics_app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
) -> None:
    """Delete a topic and all its records (asks first unless --yes)."""
    with open_log(ctx) as log:
        if name not in log.topics():  # say so before asking
            raise UnknownTopicError(f"unknown topic {name!r}")
        if not yes and not typer.confirm(f"Delete topic {name!r} and all its records?"):
            console.print("not deleted", markup=False)
            raise typer.Exit(EXIT_FAILED)
        log.delete_topic(name)
    console.print(f"deleted topic {name!r}", markup=False)


def _description_json(description: TopicDescription) -> dict:
    return {
        "name": description.name,
        "config": dataclasses.asdict(description.config),
        "partitions": [
            {**dataclasses.asdict(p), "record_count": p.record_count}
            for p in description.partitions
        ],
    }
