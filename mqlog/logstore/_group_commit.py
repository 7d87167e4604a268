"""Durability of a partition's appends: flushing, and group commit.

:func:`flush` fdatasyncs what has been published (the partition binds it as
its ``flush`` method); :class:`GroupCommit` lets concurrent appenders with
``durability="always"`` share one flush.

State owned here: the :class:`GroupCommit` of each partition (who flushes,
who waits, how far this process has made the log durable, which appenders are
mid-write) and ``partition.dirty`` (this process appended since the last
flush; the interval flusher reads it).

Invariants: an append that asked to be flushed returns only once every offset
below its end is on stable storage; a failed fdatasync latches the partition
failed (``Partition.fail``) and is never taken as covering anything, since the
kernel may have marked the pages clean without writing them. Each flush that
succeeds is counted, with its duration, in the engine's counters.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from mqlog.errors import StorageFailedError
from mqlog.logstore._files import fsync_directory
from mqlog.logstore._space import storage_failed

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

#: Longest a flush waits for this process's appenders that are mid-write to join
#: it (durability="always"): a fraction of one fdatasync (~250 us here).
GATHER_S = 0.0002


class GroupCommit:
    """One partition's group commit (durability="always"): one thread flushes, the
    others wait. Appenders count themselves in ``writers`` (under ``condition``)
    while they write a durable append, so that a flush about to start waits
    briefly for them."""

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self.condition = threading.Condition()
        #: Every offset below it is durable (as far as this process knows).
        self.durable_offset = 0
        self.flushing = False
        #: Appenders of this process writing a durable append right now.
        self.writers = 0
        #: Highest offset this process flushed; carried into the next published state.
        self.flushed_here = 0

    def make_durable(self, offset: int) -> None:
        """Return once every offset below ``offset`` is on stable storage.

        Group commit: one caller flushes for everyone who appended before the
        flush began; the others wait for it, so concurrent appenders share one
        fdatasync. A caller about to flush first waits (at most GATHER_S) for
        the appenders of this process that are writing right now, so that one
        flush covers them too.
        """
        with self.condition:
            while self.durable_offset < offset:
                self.partition.check_failure()  # every waiter learns of a failed flush
                if not self.flushing:
                    self.flushing = True
                    deadline = time.monotonic() + GATHER_S
                    while self.writers > 0:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self.condition.wait(remaining)
                    break
                self.condition.wait()
            else:
                return
        durable = self.durable_offset
        try:
            durable = self.partition.flush()
        finally:
            with self.condition:
                self.flushing = False
                self.durable_offset = max(self.durable_offset, durable)
                self.condition.notify_all()
        if durable < offset:  # pragma: no cover - flush() covers every published offset
            raise AssertionError(f"flush covered {durable}, needed {offset}")


def flush(partition: Partition) -> int:
    """fdatasync what has been published (every segment holding offsets above
    the last flush); return the offset it covers.

    A failed fdatasync latches the partition failed (StorageFailedError, now
    and for every later write): the kernel may have marked the pages clean
    without writing them, so a later fdatasync that succeeds proves nothing
    about them and is never taken as covering them."""
    partition.check_failure()
    partition.dirty = False  # before reading the state: a later append sets it again
    state = partition.state()
    if state.flushed_offset >= state.end_offset:
        return state.flushed_offset
    view = partition.refresh_view(state)
    bases = view.bases.tolist()
    # Every segment holding offsets not yet flushed: under durability="none" a
    # roll does not flush the segment it closes, so more than one may be due.
    due = [base for slot, base in enumerate(bases)
           if slot + 1 == len(bases) or bases[slot + 1] > state.flushed_offset]
    started = time.perf_counter()
    try:
        for base in due:
            view.segments[base].flush()
        if due[-1] >= state.flushed_offset:  # created since the last flush: its
            # directory entry too (a roll under durability="none" does not sync it)
            try:
                fsync_directory(partition.directory)
            except FileNotFoundError:
                pass  # the topic was deleted: nothing of it is left to keep
            except OSError as error:
                raise storage_failed("fsync", partition.directory, error) from error
    except StorageFailedError as error:
        partition.dirty = True  # still not on disk
        partition.fail(error)
        raise
    partition.counters.flushed(time.perf_counter() - started)
    # Published with this process's next append (no extra lock round trip here).
    commit = partition.group_commit
    commit.flushed_here = max(commit.flushed_here, state.end_offset)
    return state.end_offset
