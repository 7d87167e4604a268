"""Share states kept open between acks by receipt handle, for a long-lived process.

``ack_receipts`` opens a partition's share state, acks and closes it: a file
open, a lock, a map and an unmap per call. A server acking one handle per
request keeps them open here instead (``ack_receipts(..., states=...)``).

Invariant: :meth:`OpenShareStates.get` returns a state of the file the path
names *now* (compared by device and inode at every call: a group or topic
deleted and made again, by any process, has a new file, and a deleted one has
none), with the topic's current durability; a state whose flush failed is
reopened (as a new object, see ``ShareState._sync``). Not thread-safe: one
thread uses an instance (the server's event loop).
"""

from __future__ import annotations

import os

from mqlog.consumer._queue_files import WINDOW_RECORDS
from mqlog.consumer._share_state import ShareState
from mqlog.logstore import Engine


class OpenShareStates:
    """Share states of ``log``'s queue groups, open by path until :meth:`close`."""

    def __init__(self, log: Engine) -> None:
        self._log = log
        #: path -> (the file's (st_dev, st_ino), its state)
        self._states: dict[str, tuple[tuple[int, int], ShareState]] = {}

    def get(self, path: str, topic: str) -> ShareState | None:
        """The open state of the share-state file at ``path`` (of ``topic``), or
        None if there is none."""
        try:
            found = os.stat(path)
        except FileNotFoundError:
            self._drop(path)
            return None
        identity = (found.st_dev, found.st_ino)
        durable = self._log.topic_config(topic).durability == "always"
        cached = self._states.get(path)
        if cached is not None:
            known, state = cached
            if known == identity and state.durable == durable and not state.failed:
                return state
            self._drop(path)
        state = ShareState(path, WINDOW_RECORDS, 0, durable)
        self._states[path] = (identity, state)
        return state

    def close(self) -> None:
        """Close every state kept open."""
        for path in list(self._states):
            self._drop(path)

    def _drop(self, path: str) -> None:
        cached = self._states.pop(path, None)
        if cached is not None:
            cached[1].close()
