"""A partition's published state and its segment views, as one process sees them.

Functions here take the :class:`~mqlog.logstore._partition.Partition` they
work on; the partition binds the public ones as its methods (``state``,
``refresh_view``, ``describe``, ``deleted``, ``create_segment``).

State owned here (no other module writes it):

* ``partition._view`` (a :class:`View`) and ``partition._view_lock``: the
  segment set of one epoch. Views only move forward (a higher epoch) and are
  replaced whole under the view lock, so a reader holding one always sees a
  consistent set; segments dropped from a view close once no reader holds it.
* ``partition._fresh``: segments opened or created by this process that the
  next view takes over. :func:`create_segment` (for rolls and recovery) and
  recovery add to it, before the state naming the segment is published;
  :func:`load_view` takes them out.
* ``partition._memory_state`` / ``partition._memory_sequence``: the state of
  a read-only partition worked out in memory (``_recovery``), used until a
  writer publishes a state of its own (see :func:`state`).

Invariant: a view never holds a segment wholly below the log start offset nor
above the published active segment; :func:`snapshot` never pairs a state with
a view newer than it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import numpy as np

from mqlog.errors import LogClosedError, UnknownTopicError
from mqlog.logstore import _format as fmt
from mqlog.logstore._segment import (
    Segment,
    index_capacity,
    list_segment_bases,
    remove_segment_files,
)
from mqlog.logstore._state import PartitionState
from mqlog.logstore.config import TopicConfig

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

#: Smallest timestamp: "no record yet" in running maxima.
NO_TIMESTAMP = fmt.NO_TIMESTAMP


@dataclasses.dataclass(frozen=True)
class PartitionDescription:
    """Where a partition stands: offsets, bytes on disk and segment count.

    ``records_present`` is counted only for compacted topics (``cleanup_policy
    ="compact"``), whose offsets have gaps: the records of every batch from the
    log start offset on, read from the batch headers (one 48-byte header per
    batch, no record decoded). Elsewhere it is None and :attr:`record_count` is
    the offset span, which costs nothing."""

    partition: int
    start_offset: int
    end_offset: int
    size_bytes: int
    segment_count: int
    records_present: int | None = None

    @property
    def record_count(self) -> int:
        """The records in the partition: ``records_present`` when counted, else
        ``end_offset - start_offset``."""
        if self.records_present is not None:
            return self.records_present
        return self.end_offset - self.start_offset


class View:
    """The segments of a partition as one process sees them at one epoch
    (immutable but for a cache of the closed segments' newest timestamps)."""

    __slots__ = ("epoch", "bases", "segments", "_closed_max")

    def __init__(self, epoch: int, bases: np.ndarray, segments: dict[int, Segment]) -> None:
        self.epoch = epoch
        self.bases = bases
        self.segments = segments
        self._closed_max: np.ndarray | None = None

    def closed_max_timestamps(self) -> np.ndarray:
        """The newest timestamp of each closed segment (all but the last), in order."""
        if self._closed_max is None:
            bases = self.bases.tolist()
            self._closed_max = np.array(
                [closed_max_timestamp(self.segments[base], bases[slot + 1])
                 for slot, base in enumerate(bases[:-1])], dtype=np.int64)
        return self._closed_max


def empty_view(epoch: int = -1) -> View:
    """A view holding no segment (before the first refresh, after a close)."""
    return View(epoch, np.zeros(0, dtype=np.int64), {})


# -- the published state ---------------------------------------------------------------

def state(partition: Partition) -> PartitionState:
    """The latest published state (lock-free)."""
    if partition._closed:
        raise LogClosedError(f"partition {partition.topic}/{partition.number} is closed")
    published = partition.state_file.read()
    if partition._memory_state is not None:  # read-only, recovered in memory
        published = state_after_memory(partition, published)
    if published is None:  # only before the first publish, which opening does
        raise LogClosedError(f"partition {partition.topic}/{partition.number} has no state")
    return published


def use_memory_state(partition: Partition, on_disk: PartitionState | None,
                     recovered: PartitionState) -> None:
    """Read by ``recovered`` (worked out in memory from ``on_disk``) from now on."""
    partition._memory_sequence = -1 if on_disk is None else on_disk.sequence
    partition._memory_state = recovered


def state_after_memory(partition: Partition,
                       on_disk: PartitionState | None) -> PartitionState | None:
    """The state of a read-only partition recovered in memory: the in-memory one
    while the file still holds what it was worked out from, else the file's
    (a writer recovered the partition and published; views are reloaded)."""
    memory = partition._memory_state
    if memory is None:  # another thread switched to the file just now
        return on_disk
    if on_disk is None or on_disk.sequence == partition._memory_sequence:
        return memory
    with partition._view_lock:
        partition._memory_state = None
        partition._view = empty_view()
    return on_disk


def deleted(partition: Partition) -> bool:
    """True once this partition's topic was deleted, by any process: its state
    file unlinked, or no longer at its path (the topic's directory renamed away
    on the way to removal, whatever was created under its name since). The
    state file is written in place, never replaced.

    Compares the file at the state file's path with the identity taken when
    it was opened (one ``stat``), never ``fstat``s its descriptor: a sweep on
    another thread may close that meanwhile, and the process reuse its
    number for another file. While the descriptor is open the inode cannot be
    freed, so no other file can have its identity."""
    state_file = partition.state_file
    identity = state_file.identity
    if state_file.fd < 0 or identity is None:
        return not os.path.isdir(partition.directory)
    try:
        here = os.stat(state_file.path)
    except FileNotFoundError:
        return True
    return (here.st_dev, here.st_ino) != identity


# -- segment views ---------------------------------------------------------------------

def refresh_view(partition: Partition, state: PartitionState) -> View:
    """This process's view of the segment set, brought up to ``state.epoch``."""
    view = partition._view
    if state.epoch <= view.epoch:
        return view
    with partition._view_lock:
        if state.epoch > partition._view.epoch:
            partition._view = load_view(partition, state, partition._view)
        return partition._view


def load_view(partition: Partition, state: PartitionState, current: View) -> View:
    """A new view for ``state``: segments of ``current`` and ``partition._fresh``
    are reused, others opened (a compacted one is opened afresh)."""
    try:
        bases = [b for b in list_segment_bases(partition.directory)
                 if b <= state.active_base_offset]
    except FileNotFoundError:  # the topic was deleted by another process
        raise UnknownTopicError(f"topic {partition.topic!r} was deleted") from None
    while len(bases) > 1 and bases[1] <= state.log_start_offset:
        bases.pop(0)  # wholly below the log start: retention is deleting it
    segments: dict[int, Segment] = {}
    for base in bases:
        segment = partition._fresh.pop(base, None) or current.segments.get(base)
        if segment is not None and base != state.active_base_offset and segment.replaced():
            segment = None  # compacted: open the cleaned copy
        try:
            if segment is None:
                segment = Segment(partition.directory, base, read_only=partition.read_only)
            if base != state.active_base_offset and segment.closed_index_count < 0:
                segment.load_closed()
        except FileNotFoundError:  # deleted by retention meanwhile (or its indexes)
            continue
        segments[base] = segment
    if state.active_base_offset not in segments and (bases or not partition.read_only):
        raise UnknownTopicError(f"topic {partition.topic!r} was deleted")  # files gone
    return View(state.epoch, np.array(list(segments), dtype=np.int64), segments)


def create_segment(partition: Partition, base_offset: int, config: TopicConfig) -> Segment:
    """A new, preallocated segment, handed to the next view (storage-internal:
    rolls and recovery; lock held). On a full disk (DiskFullError) its files are
    removed again, so a retry once space is freed starts clean."""
    segment = Segment(partition.directory, base_offset, create=True)
    try:
        segment.preallocate(config.segment_bytes,
                            index_capacity(config.segment_bytes, config.index_interval_bytes))
    except BaseException:
        segment.close()
        remove_segment_files(partition.directory, base_offset)
        raise
    partition._fresh[base_offset] = segment  # joins the view once its roll is published
    return segment


def snapshot(partition: Partition) -> tuple[PartitionState, View]:
    """The published state with a segment view no newer than it."""
    state = partition.state()
    view = partition.refresh_view(state)
    while view.epoch > state.epoch:  # another thread refreshed past this state
        state = partition.state()
        view = partition.refresh_view(state)
    return state, view


def segment_for(offset: int, state: PartitionState,
                view: View) -> tuple[Segment, int, int, int]:
    """(segment, byte limit, index entry count, first offset after it) for the
    segment of ``view`` holding ``offset``."""
    slot = max(int(np.searchsorted(view.bases, offset, side="right")) - 1, 0)
    segment = view.segments[int(view.bases[slot])]
    end = int(view.bases[slot + 1]) if slot + 1 < len(view.bases) else state.end_offset
    if segment.base_offset == state.active_base_offset:
        return segment, state.active_position, state.offset_index_count, end
    return segment, segment.closed_size, segment.closed_index_count, end


def closed_max_timestamp(segment: Segment, end: int) -> int:
    """Largest timestamp of a closed segment ending before offset ``end``: its final
    time-index entry, else a scan (cached on the segment)."""
    if segment.max_timestamp is not None:
        return segment.max_timestamp
    count = segment.closed_time_count
    length = end - segment.base_offset
    entries = segment.time_index.entries
    if count and int(entries["relative_offset"][count - 1]) == length:
        value = int(entries["timestamp"][count - 1])
    else:
        value = NO_TIMESTAMP
        position = 0
        limit = segment.file_size()
        while True:
            try:
                header = segment.header_at(position, limit)
            except fmt.BatchError:
                break
            value = max(value, header.max_timestamp)
            position += header.batch_length
    segment.max_timestamp = value
    return value


def describe(partition: Partition) -> PartitionDescription:
    """Offsets, bytes on disk and segment count of ``partition`` now (and the
    records present, for a compacted topic)."""
    state = partition.state()
    view = partition.refresh_view(state)
    closed_bytes = sum(view.segments[base].file_size() for base in view.bases.tolist()[:-1])
    present = (count_records(state, view)
               if partition.config().cleanup_policy == "compact" else None)
    return PartitionDescription(
        partition.number, state.log_start_offset, state.end_offset,
        closed_bytes + state.active_position, len(view.bases), present,
    )


def count_records(state: PartitionState, view: View) -> int:
    """Records in the batches at or after the log start offset, from their
    headers (gap batches hold none); a segment's count stops at damage."""
    total = 0
    bases = view.bases.tolist()
    for slot, base in enumerate(bases):
        segment = view.segments[base]
        last = slot == len(bases) - 1
        limit = state.active_position if last else segment.file_size()
        position = 0
        while position < limit:
            try:
                header = segment.header_at(position, limit, verify=False)
            except fmt.BatchError:
                break
            if not header.attributes & fmt.ATTR_GAP and \
                    header.base_offset >= state.log_start_offset:
                total += header.record_count
            position += header.batch_length
    return total
