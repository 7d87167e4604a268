"""Background flushing for ``durability="interval"`` topics.

Owner: one daemon thread per open Log, started on the first interval append.
Every ``flush_ms`` of each topic it fdatasyncs the partitions this process
appended to. A failed fdatasync latches its partition failed (see
``Partition.flush``): every later append, flush and commit to it raises
StorageFailedError until the log is reopened, so it cannot go unnoticed and is
never retried silently. A partition whose topic another process deleted has
nothing left to flush. Any other flush error is kept and raised by the next
append to that log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from mqlog.errors import LogClosedError, StorageFailedError, UnknownTopicError
from mqlog.logstore._partition import Partition


class IntervalFlusher:
    def __init__(self, partitions: Callable[[], Iterable[tuple[Partition, int]]]) -> None:
        """``partitions()`` yields (partition, flush_ms) for the interval partitions."""
        self._partitions = partitions
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._due: dict[int, float] = {}
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mqlog-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            sleep_s = self.flush_due(time.monotonic())
            self._wake.wait(sleep_s)
            self._wake.clear()

    def flush_due(self, now: float, everything: bool = False) -> float:
        """Flush each dirty partition whose period is up; return seconds to the next."""
        next_s = 0.1
        for partition, flush_ms in self._partitions():
            period = flush_ms / 1000
            due = self._due.get(id(partition), 0.0)
            if partition.dirty and (everything or now >= due):
                try:
                    partition.flush()
                except StorageFailedError:
                    pass  # latched in the partition: its every later write raises it
                except (UnknownTopicError, LogClosedError):
                    pass  # deleted by another process, or closed: nothing left to flush
                except Exception as error:  # surfaced by the next append
                    self.error = error
                self._due[id(partition)] = now + period
            next_s = min(next_s, max(self._due.get(id(partition), now) - now, 0.001))
        return next_s

    def stop(self) -> None:
        """Stop the thread after one final flush of everything dirty."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush_due(time.monotonic(), everything=True)
