"""Retention and record deletion: moving a partition's log start offset forward.

Rules (as Kafka's): only whole closed segments go, oldest first, and never the
active segment. The oldest closed segment goes while either rule wants it gone
(so one call reaches the same result as many): by time, when its newest record
is older than ``retention_ms``; by size, when the partition would still hold at
least ``retention_bytes`` without it (:func:`segments_to_delete`, a pure
function of their sizes and ages). :func:`delete_records` moves the start to
any offset up to the end (kafka-delete-records, Redis ``XTRIM MINID``): whole
segments below it go, the rest of the first kept segment is hidden.

State owned here: the log start offset (``PartitionState.log_start_offset``),
published in the partition's state file under the partition lock; nothing is
kept between calls.

Invariants: the log start offset never goes down and never passes the end
offset; it is published before any segment file below it is removed (a reader
holding an older view still reads those files; recovery removes files a crash
left behind); a start moved by :func:`delete_records` is on stable storage
before the call returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from mqlog.errors import OffsetOutOfRangeError, UnknownTopicError
from mqlog.logstore._segment import remove_segment_files
from mqlog.logstore._state import PartitionState
from mqlog.logstore._views import closed_max_timestamp
from mqlog.logstore.config import TopicConfig

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition


class SegmentFacts(NamedTuple):
    base_offset: int
    size_bytes: int
    max_timestamp: int


def segments_to_delete(
    closed: Sequence[SegmentFacts],
    active_size_bytes: int,
    now_ms: int,
    retention_ms: int | None,
    retention_bytes: int | None,
) -> int:
    """How many of the oldest ``closed`` segments (oldest first) to delete."""
    total = active_size_bytes + sum(segment.size_bytes for segment in closed)
    count = 0
    for segment in closed:
        expired = retention_ms is not None and segment.max_timestamp < now_ms - retention_ms
        too_big = retention_bytes is not None and total - segment.size_bytes >= retention_bytes
        if not (expired or too_big):
            break
        total -= segment.size_bytes
        count += 1
    return count


def enforce_retention(partition: Partition) -> int:
    """Apply the topic's retention to ``partition`` now; return how many segments
    were deleted."""
    with partition.locked() as state:
        assert state is not None  # opening published one; only recovery meets None
        before = len(partition.refresh_view(state).bases)
        after = enforce_retention_locked(partition, state, partition.config(), explicit=True)
        return before - len(partition.refresh_view(after).bases)


def enforce_retention_locked(partition: Partition, state: PartitionState, config: TopicConfig,
                             explicit: bool = False) -> PartitionState:
    """Delete the closed segments retention wants gone (partition lock held);
    return the state published (``state`` if nothing went). Without
    ``explicit``, only when the partition applies retention by itself."""
    if config.retention_ms is None and config.retention_bytes is None or not (
            explicit or partition.apply_retention):
        return state
    view = partition.refresh_view(state)
    bases = view.bases.tolist()
    closed = [
        SegmentFacts(base, view.segments[base].file_size(),
                     closed_max_timestamp(view.segments[base], bases[slot + 1]))
        for slot, base in enumerate(bases[:-1])
    ]
    count = segments_to_delete(closed, state.active_position, partition.clock(),
                               config.retention_ms, config.retention_bytes)
    if count == 0:
        return state
    state = partition.publish(
        state.replace(log_start_offset=bases[count], epoch=state.epoch + 1), state
    )
    partition.refresh_view(state)  # the new view no longer holds them; readers may still
    for facts in closed[:count]:
        remove_segment_files(partition.directory, facts.base_offset)
    return state


def delete_records(partition: Partition, before_offset: int) -> int:
    """Move the log start offset of ``partition`` up to ``before_offset``; return
    the start offset now. The closed segments wholly below it are deleted; the
    records of the first kept segment below it are hidden from reads, offset
    lookups and the start offset. The new start is published into both state
    slots and synced (it survives a crash and a power loss, even one that tears a
    later publish) before this returns.

    ``before_offset`` at or below the start changes nothing; above the end
    offset it raises OffsetOutOfRangeError, changing nothing. A read-only
    partition raises ReadOnlyError."""
    if not isinstance(before_offset, int) or isinstance(before_offset, bool):
        raise TypeError(f"before_offset must be an int, not {type(before_offset).__name__}")
    with partition.locked() as state:
        assert state is not None  # opening published one; only recovery meets None
        if partition.deleted():
            raise UnknownTopicError(
                f"topic {partition.topic!r} was deleted (partition {partition.number})")
        if before_offset > state.end_offset:
            raise OffsetOutOfRangeError(
                f"cannot delete records before offset {before_offset} of "
                f"{partition.topic}/{partition.number}: its end offset is {state.end_offset}",
                offset=before_offset, start_offset=state.log_start_offset,
                end_offset=state.end_offset,
            )
        if before_offset <= state.log_start_offset:
            return state.log_start_offset
        bases = partition.refresh_view(state).bases.tolist()
        below = [base for slot, base in enumerate(bases[:-1]) if bases[slot + 1] <= before_offset]
        published = partition.publish(state.replace(
            log_start_offset=before_offset,
            epoch=state.epoch + 1 if below else state.epoch), state)
        # Into the other slot too, then sync: only the state file records a start
        # inside a segment, and a later publish torn by a power loss would leave
        # the other slot -- which still had the old start -- as the newest valid one.
        published = partition.publish(published, published)
        partition.state_file.sync()
        partition.refresh_view(published)
        for base in below:
            remove_segment_files(partition.directory, base)
        return before_offset
