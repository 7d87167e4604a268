"""Batches and the results of sends: what a send is waiting for.

Owns: a :class:`Batch` owns the records queued for one partition, their
callbacks and, once the sender appended it, its outcome (base offset and
append time, or the error). :class:`Delivery` and :class:`BatchDelivery` hold
no state of their own: they read the outcome of their batches.

Invariants: records are added to a batch only under the producer's lock and
only while ``taken`` is False; the sender sets ``taken`` (under the lock)
before appending, then fills in the outcome and sets ``done`` last, so whoever
sees ``done`` set sees the whole outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple


class RecordMetadata(NamedTuple):
    """Where a sent record was written."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class Batch:
    """Records queued for one partition, appended together."""

    __slots__ = ("topic", "partition", "items", "timestamps", "callbacks", "size", "created",
                 "taken", "done", "base_offset", "append_ms", "error")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.items: list = []
        #: Explicit record timestamps by index; the others get the append time.
        self.timestamps: dict[int, int] = {}
        self.callbacks: list = []
        #: Set once the sender took the batch: nothing may be added any more.
        self.taken = False
        self.size = 0
        self.created = time.monotonic()
        self.done = threading.Event()
        self.base_offset = -1
        self.append_ms = 0
        self.error: BaseException | None = None

    def metadata(self, index: int) -> RecordMetadata:
        return RecordMetadata(self.topic, self.partition, self.base_offset + index,
                              self.timestamps.get(index, self.append_ms))


class Delivery:
    """The outcome of one ``send``: wait for it with :meth:`result`.

    ``batch`` and ``index`` say where the record is queued: code that settles
    many sends at once (``mqlog.aio``) groups them by batch and reads each
    outcome with ``batch.metadata(index)`` once the batch is done."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    def done(self) -> bool:
        return self.batch.done.is_set()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait until the record is written; raise what writing it raised, or
        TimeoutError after ``timeout`` seconds."""
        batch = self.batch
        if not batch.done.wait(timeout):
            raise TimeoutError(f"record not written within {timeout} s")
        if batch.error is not None:
            raise batch.error
        return batch.metadata(self.index)


class BatchDelivery:
    """The outcome of one ``send_many``: offsets per partition."""

    __slots__ = ("_batches",)

    def __init__(self, batches: list[Batch]) -> None:
        self._batches = batches

    def when_done(self, callback: Callable[[dict[int, range] | None, BaseException | None],
                                           None]) -> None:
        """Have ``callback(ranges, error)`` called once every batch is written, or
        with the first batch's error. Only before the sender may take the batches
        (under the producer's lock): a batch appended already would never call it."""
        waiting = [batch for batch in self._batches if batch.items]
        if not waiting:  # nothing to write: the sender completes empty batches silently
            callback({batch.partition: range(0, 0) for batch in self._batches}, None)
            return
        left = [len(waiting)]
        guard = threading.Lock()

        def one_done(_metadata: RecordMetadata | None, error: BaseException | None) -> None:
            with guard:
                if not left[0]:
                    return  # an earlier batch failed: reported already
                left[0] = 0 if error is not None else left[0] - 1
                last = not left[0]
            if error is not None:
                callback(None, error)
            elif last:
                callback({batch.partition: range(batch.base_offset,
                                                 batch.base_offset + len(batch.items))
                          for batch in self._batches}, None)

        for batch in waiting:
            batch.callbacks.append((0, one_done))

    def done(self) -> bool:
        return all(batch.done.is_set() for batch in self._batches)

    def result(self, timeout: float | None = None) -> dict[int, range]:
        """Wait until every record is written; return ``{partition: offsets}``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ranges: dict[int, range] = {}
        for batch in self._batches:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not batch.done.wait(remaining):
                raise TimeoutError(f"records not written within {timeout} s")
            if batch.error is not None:
                raise batch.error
            ranges[batch.partition] = range(batch.base_offset, batch.base_offset + len(batch.items))
        return ranges
