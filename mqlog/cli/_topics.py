"""``mqlog topics list|create|describe|alter|delete``: manage the topics of --dir."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mqlog.cli._app import EXIT_FAILED, app, open_log
from mqlog.cli._output import console, emit_json
from mqlog.cli._topic_options import topic_config_options
from mqlog.errors import TopicExistsError, UnknownTopicError
from mqlog.logstore import TopicDescription, check_new_topic

topics_app = typer.Typer(help="List, create, describe, alter and delete topics.",
                         no_args_is_help=True)
app.add_typer(topics_app, name="topics")

_JSON = typer.Option("--json", help="Print one JSON object per line.")


@topics_app.command("list")
def list_topics(ctx: typer.Context, json_output: Annotated[bool, _JSON] = False) -> None:
    """Print the topic names, one per line."""
    with open_log(ctx, reading=True) as log:
        names = log.topics()
    for name in names:
        if json_output:
            emit_json({"name": name})
        else:
            console.print(name, markup=False, soft_wrap=True)


@topics_app.command("create")
@topic_config_options(show_defaults=True)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        help="Topic name: 1 to 249 letters, digits, dots, underscores or dashes.")],
    partitions: Annotated[int, typer.Option("--partitions", "-p", help="Partition count.")] = 1,
    if_not_exists: Annotated[bool, typer.Option(
        "--if-not-exists", help="Succeed if the topic exists with these partitions and "
                                "options (like mkdir -p); exit 4 if it differs.")] = False,
    json_output: Annotated[bool, _JSON] = False,
    *,
    config: dict[str, object],
) -> None:
    """Create a topic (and the log directory if missing); options left out take the defaults."""
    check_new_topic(name, partitions, **config)  # bad input creates no log directory
    created = True
    with open_log(ctx, create=True) as log:
        try:
            description = log.create_topic(name, partitions, exist_ok=False, **config)
        except TopicExistsError:
            if not if_not_exists:
                raise
            description = log.create_topic(name, partitions, exist_ok=True, **config)
            created = False
    if json_output:
        emit_json({**_description_json(description), "created": created})
    elif created:
        console.print(f"created topic {name!r} with {partitions} partitions", markup=False)
    else:
        console.print(f"topic {name!r} already exists with {partitions} partitions",
                      markup=False, soft_wrap=True)


@topics_app.command("alter")
@topic_config_options(show_defaults=False)
def alter(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    partitions: Annotated[int | None, typer.Option(
        "--partitions", "-p", help="New partition count (it can only grow).",
        show_default=False)] = None,
    json_output: Annotated[bool, _JSON] = False,
    *,
    config: dict[str, object],
) -> None:
    """Change a topic's config and/or add partitions; options left out keep their value."""
    with open_log(ctx) as log:
        log.alter_topic(name, partitions, **config)
        description = log.describe_topic(name)
    if json_output:
        emit_json(_description_json(description))
        return
    console.print(f"altered topic {name!r}: {len(description.partitions)} partitions",
                  markup=False, soft_wrap=True)
    for key, value in dataclasses.asdict(description.config).items():
        console.print(Text(f"{key} = {value}"))


@topics_app.command("describe")
def describe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Topic name.")],
    json_output: Annotated[bool, _JSON] = False,
) -> None:
    """Print a topic's config and each partition's offsets, size and segment count."""
    with open_log(ctx, reading=True) as log:
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
            console.print("not deleted", markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILED)
        log.delete_topic(name)
    console.print(f"deleted topic {name!r}", markup=False, soft_wrap=True)


def _description_json(description: TopicDescription) -> dict:
    return {
        "name": description.name,
        "config": dataclasses.asdict(description.config),
        "partitions": [
            {**dataclasses.asdict(p), "record_count": p.record_count}
            for p in description.partitions
        ],
    }
