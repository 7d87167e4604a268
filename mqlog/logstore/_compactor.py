"""Background compaction: one thread per open Log, off the append and commit paths.

Owner: the Log. An append that rolls a segment of a ``compact`` topic only
hands the partition to :meth:`BackgroundCompactor.request` (a dict insert and a
notify); the thread, started on the first request, compacts the requested
partitions one at a time if they are due (``_compaction.compact``, which skips
a partition another process is cleaning). A partition requested again while
queued is queued once. ``Log.compact()`` does not go through this thread: it
compacts synchronously, waiting for a run of this thread on the same partition.

A failed run is logged and forgotten: the partition's next roll requests it
again, and the crash story of ``_compaction`` covers a run that stopped anywhere.
:meth:`stop` (the Log is closing) interrupts a run between two chunks of records.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from mqlog.errors import LogClosedError, UnknownTopicError
from mqlog.logstore import _compaction

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

_log = logging.getLogger("mqlog.logstore")


class BackgroundCompactor:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        #: Requested partitions, oldest request first.
        self._queue: dict[int, Partition] = {}
        self._running = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def request(self, partition: Partition) -> None:
        """Compact ``partition`` soon if it is due (ignored once stopped)."""
        with self._condition:
            if self._stopped:
                return
            self._queue.setdefault(id(partition), partition)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mqlog-compactor",
                                                daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or running; False if ``timeout_s`` passed first."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._queue and not self._running, timeout_s)

    def stop(self) -> None:
        """Stop the thread, interrupting a run in progress; later requests are ignored."""
        with self._condition:
            self._stopped = True
            self._queue.clear()
            self._condition.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _should_stop(self) -> None:
        if self._stopped:
            raise _compaction.Interrupted

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._stopped)
                if self._stopped:
                    return
                partition = self._queue.pop(next(iter(self._queue)))
                self._running = True
            try:
                partition.compact(should_stop=self._should_stop)
            except (LogClosedError, UnknownTopicError):
                pass  # the topic was closed or deleted meanwhile
            except Exception:  # logged; the next roll asks again
                if os.path.isdir(partition.directory):  # else: deleted meanwhile
                    _log.exception("compaction of %s/%d failed", partition.topic,
                                   partition.number)
            finally:
                with self._condition:
                    self._running = False
                    self._condition.notify_all()
