"""The ``mqlog`` command line (typer + rich).

Importing this package registers every command on :data:`app`; the library
work behind them is in :mod:`mqlog.logstore.inspect` and
:mod:`mqlog.cli._demo_run`.
"""

from mqlog.cli import _demo, _dump, _topics, _verify  # noqa: F401  (register commands)
from mqlog.cli._app import app, main

__all__ = ["app", "main"]
