"""The app's :class:`AppendWatch`: what wakes long polls (``wait=``) when records
arrive.

One watch per app, made on first use in the running loop. Appends made over
HTTP poke it (the waiting reads see their records at once); appends by any
other process (embedded producers, a Kafka client of the same server) are
noticed by the watch's polling of the engine's append counter while a read
waits. The watch class lives with the Kafka door for now
(``mqlog.server.kafka._append_watch``), and importing that package loads the
Kafka codec (about a second): it is imported on first use, so that a server
without long polls never pays for it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import FastAPI

from mqlog.log import Log

if TYPE_CHECKING:
    from mqlog.server.kafka._append_watch import AppendWatch


def append_watch(app: FastAPI) -> AppendWatch:
    """``app``'s append watch, made on first use (in the running loop)."""
    watch: AppendWatch | None = getattr(app.state, "append_watch", None)
    if watch is None:
        from mqlog.server.kafka._append_watch import AppendWatch

        log: Log = app.state.log
        watch = app.state.append_watch = AppendWatch(log.engine, asyncio.get_running_loop())
    return watch


def wake_readers(app: FastAPI) -> None:
    """Wake the long polls waiting now: this process just appended (no watch yet:
    nobody waits)."""
    watch: AppendWatch | None = getattr(app.state, "append_watch", None)
    if watch is not None:
        watch.poke()
