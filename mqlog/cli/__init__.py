"""The ``mqlog`` command line (typer + rich)."""

from mqlog.cli._app import app, main

__all__ = ["app", "main"]
