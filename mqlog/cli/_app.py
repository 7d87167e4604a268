"""The typer application; commands are registered by the modules beside this one."""

from __future__ import annotations

import typer

app = typer.Typer(help="mqlog: a Kafka-style partitioned log, embedded.", no_args_is_help=True)


def main() -> None:
    app()
