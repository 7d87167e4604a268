"""The app's :class:`~mqlog.logstore.AppendWatch`: what wakes long polls
(``wait=``) when records arrive.

The engine's watch for the running loop (:func:`mqlog.logstore.append_watch`,
shared with the Kafka door in the same process). Appends made over HTTP poke
it, so the waiting reads see their records at once; appends by any other
process (embedded producers) are noticed by the watch's polling of the
engine's append counter while a read waits.
"""

from __future__ import annotations

from fastapi import FastAPI

from mqlog.log import Log
from mqlog.logstore import AppendWatch
from mqlog.logstore import append_watch as engine_watch


def append_watch(app: FastAPI) -> AppendWatch:
    """``app``'s append watch (made on first use, in the running loop)."""
    log: Log = app.state.log
    return engine_watch(log.engine)


def wake_readers(app: FastAPI) -> None:
    """Wake the long polls waiting now: this process just appended."""
    append_watch(app).poke()
