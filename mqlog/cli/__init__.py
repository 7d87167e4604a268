"""The ``mqlog`` command line (typer + rich).

Importing this package registers every command on :data:`app`; the library
work behind them is in :mod:`mqlog`, :mod:`mqlog.logstore.verify`,
:mod:`mqlog.logstore.dump`, :mod:`mqlog.logstore.repair` and :mod:`mqlog.cli._demo_run`.
"""

from mqlog.cli import (  # noqa: F401  (register commands)
    _consume,
    _demo,
    _dlq,
    _dump,
    _groups,
    _lag,
    _metrics,
    _mirror,
    _produce,
    _queues,
    _repair,
    _replay,
    _seek,
    _serve,
    _stats,
    _tail,
    _topics,
    _topics_maintenance,
    _users,
    _verify,
)
from mqlog.cli._app import app, main

__all__ = ["app", "main"]
