"""Durability of a partition's appends: flushing, and group commit.

:func:`flush` fdatasyncs what has been published (the partition binds it as
its ``flush`` method); :class:`GroupCommit` lets concurrent appenders with
``durability="always"`` share one flush; :func:`make_durable_together` flushes
several partitions with one ``syncfs``.

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

import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mqlog.errors import StorageFailedError
from mqlog.logstore._files import CAN_SYNC_FILE_SYSTEM, fsync_directory, sync_file_system
from mqlog.logstore._space import storage_failed

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition
    from mqlog.logstore._producers import ProducerTable
    from mqlog.logstore._segment import Segment

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

    def covered(self, offset: int) -> None:
        """A flush outside :meth:`make_durable` made every offset below ``offset``
        durable (``make_durable_together``): wake the waiters it covers."""
        with self.condition:
            if offset > self.durable_offset:
                self.durable_offset = offset
                self.condition.notify_all()


@dataclasses.dataclass
class _DueFlush:
    """What one flush of a partition must sync."""

    end_offset: int  # the published end it covers
    segments: list[Segment]  # every segment holding offsets not yet flushed
    directory_due: bool  # the newest segment's directory entry may not be durable


def _due_flush(partition: Partition) -> _DueFlush | int:
    """What a flush of the partition must sync now, or the offset it already
    covers when nothing is due. Clears ``partition.dirty`` first: an append
    after this sets it again."""
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
    # A segment created since the last flush needs its directory entry synced
    # too (a roll under durability="none" does not sync it).
    return _DueFlush(state.end_offset, [view.segments[base] for base in due],
                     due[-1] >= state.flushed_offset)


def _flushed(partition: Partition, end_offset: int, seconds: float) -> None:
    """Count a flush that made every offset below ``end_offset`` durable; the
    next published state of this process carries it (no extra lock round trip)."""
    partition.counters.flushed(seconds)
    commit = partition.group_commit
    commit.flushed_here = max(commit.flushed_here, end_offset)


def flush(partition: Partition) -> int:
    """fdatasync what has been published (every segment holding offsets above
    the last flush); return the offset it covers.

    A failed fdatasync latches the partition failed (StorageFailedError, now
    and for every later write): the kernel may have marked the pages clean
    without writing them, so a later fdatasync that succeeds proves nothing
    about them and is never taken as covering them."""
    due = _due_flush(partition)
    if isinstance(due, int):
        return due
    started = time.perf_counter()
    try:
        for segment in due.segments:
            segment.flush()
        if due.directory_due:
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
    _flushed(partition, due.end_offset, time.perf_counter() - started)
    return due.end_offset


def make_durable_together(wanted: Sequence[tuple[Partition, int]]
                          ) -> dict[Partition, StorageFailedError]:
    """Make every offset below each ``(partition, offset)`` durable, with one
    ``syncfs`` for all of them where the system has it (``sync_file_system``):
    a server flushing eight partitions at once makes one call from one
    thread, where eight fdatasyncs would need eight threads to overlap (on
    ext4 here both take about the same time: docs/benchmarks.md). Return
    the partitions whose flush failed, with their error (each latched
    failed); the others are durable. Each partition's flush is counted with
    the syncfs's duration.

    Invariants: as :meth:`GroupCommit.make_durable` for each partition (its
    producer table first, then its segments). A failed syncfs proves nothing
    about any file and is not blamed on one: each partition then flushes on
    its own (fdatasync), and Linux reports the lost writeback to every file
    it hit, so exactly the partitions that lost pages fail. Concurrent flushes
    of the same partitions by other threads are harmless: each covers what was
    published when it read the state, and coverage only grows.
    """
    failures: dict[Partition, StorageFailedError] = {}
    due: list[tuple[Partition, int, _DueFlush | None]] = []
    for partition, offset in wanted:
        if partition.group_commit.durable_offset >= offset:
            continue
        try:
            plan = _due_flush(partition)
        except StorageFailedError as error:
            failures[partition] = error
            continue
        due.append((partition, offset, None if isinstance(plan, int) else plan))
    if sum(found is not None for _, _, found in due) < 2 or not CAN_SYNC_FILE_SYSTEM:
        for partition, offset, _ in due:  # one fdatasync is cheaper than a syncfs
            _make_durable_alone(partition, offset, failures)
        return failures
    opened: list[int] = []
    tables: list[ProducerTable] = []
    fds: list[int] = []
    started = time.perf_counter()
    try:
        for partition, _, found in due:
            table = partition.unsynced_producer_table()
            if table is not None:
                tables.append(table)
                fds.append(table.begin_sync())
            if found is None:
                continue
            fds.extend(segment.fd for segment in found.segments)
            if found.directory_due:
                try:
                    opened.append(os.open(partition.directory, os.O_RDONLY))
                except FileNotFoundError:
                    continue  # the topic was deleted: nothing of it is left to keep
                fds.append(opened[-1])
        sync_file_system(fds)
    except OSError:
        for table in tables:
            table.unsynced = True  # not known to be on disk: the next flush syncs it
        for partition, offset, _ in due:
            partition.dirty = True
            _make_durable_alone(partition, offset, failures)
        return failures
    finally:
        for fd in opened:
            os.close(fd)
    seconds = time.perf_counter() - started
    for partition, offset, found in due:
        commit = partition.group_commit
        if found is not None:
            _flushed(partition, found.end_offset, seconds)
            commit.covered(found.end_offset)
        if commit.durable_offset < offset:  # a flush elsewhere had covered less
            _make_durable_alone(partition, offset, failures)
    return failures


def _make_durable_alone(partition: Partition, offset: int,
                        failures: dict[Partition, StorageFailedError]) -> None:
    try:
        partition.make_durable(offset)
    except StorageFailedError as error:
        failures[partition] = error
