"""Recovery: making a partition's files and its published state agree.

Runs when a process opens a partition (:func:`recover`, under the partition
lock), or, for a read-only open, in memory only (:func:`recover_in_memory`,
which writes nothing). The newest segment is re-verified from its last usable
index entry (:func:`scan_newest`) and a torn or corrupt tail is cut and
zeroed; closed segments get a cheap check (:func:`check_closed`); offsets cut
below the end a valid state slot records become a gap batch
(:func:`write_gap`), and :func:`ensure_end_at_least` lifts the end the same
way on request. What was cut, skipped or rebuilt is journaled (``_journal``).

Functions here take the :class:`~mqlog.logstore._partition.Partition`; they
own no state of their own between calls: what they conclude is published
(``partition.publish``) or, read-only, kept as the partition's in-memory state
(``_views.use_memory_state``), and the segments they open are handed to the
next view through ``partition._fresh``.

Invariants: the end offset never goes below the end a valid slot records
(offsets are never reused); the log start offset never goes down and never
above the end; nothing after a corrupt batch of the active segment is served
as valid, and bytes cut are zeroed so they cannot resurface.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from mqlog.errors import UnknownTopicError
from mqlog.logstore import _format as fmt
from mqlog.logstore import _journal
from mqlog.logstore._closed_index import index_disagreement, rebuild_indexes
from mqlog.logstore._files import fsync_directory
from mqlog.logstore._resync import resync
from mqlog.logstore._retention import enforce_retention_locked
from mqlog.logstore._segment import (
    Segment,
    index_capacity,
    list_segment_bases,
    remove_segment_files,
)
from mqlog.logstore._state import PartitionState, current_boot_id
from mqlog.logstore._tail_scan import TailScan, closed_tail
from mqlog.logstore._views import NO_TIMESTAMP, use_memory_state
from mqlog.logstore.config import TopicConfig

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

_log = logging.getLogger("mqlog.logstore")


def recover_in_memory(partition: Partition, state: PartitionState | None) -> None:
    """What :func:`recover` would conclude, worked out without writing: the
    valid end of the newest segment. Kept as this process's state until a
    writer publishes one (it recovers the partition on disk first)."""
    try:
        bases = list_segment_bases(partition.directory)
    except FileNotFoundError:
        raise UnknownTopicError(f"topic {partition.topic!r} was deleted") from None
    if state is not None:
        while len(bases) > 1 and bases[1] <= state.log_start_offset:
            bases.pop(0)  # wholly below the log start: retention is deleting it
    if not bases:  # never written (or the segments went missing)
        start = state.end_offset if state is not None else 0
        use_memory_state(partition, state, PartitionState(
            log_start_offset=start, end_offset=start, active_base_offset=start,
            active_position=0, active_max_timestamp=NO_TIMESTAMP,
            active_created_ms=partition.clock(), flushed_offset=start, offset_index_count=0,
            time_index_count=0, epoch=state.epoch if state is not None else 0))
        return
    history = state if (state is not None and state.boot_id == current_boot_id()
                        and not partition.state_file.slots().damaged) else None
    while history is not None and len(bases) > 1 and bases[-1] > history.active_base_offset:
        bases.pop()  # a roll died unpublished
    segment, trusted, scan = scan_newest(partition, bases, state, history,
                                         partition.config(), writable=False)
    newest = segment.base_offset
    partition._fresh[newest] = segment
    cut = trusted is None or scan.position != trusted.active_position
    recovered = recovered_state(partition, state, trusted, scan, bases[0], newest,
                                scan.offset, scan.position, cut)
    if state is None or recovered != state.replace(sequence=0):
        use_memory_state(partition, state, recovered)


def recover(partition: Partition, state: PartitionState | None) -> PartitionState:
    """Make the files and the published state agree (partition lock held).

    Trusts the state's history when the state file is intact and was written
    in this boot of the machine (page cache intact); still re-verifies the
    active segment from its last index entry up to the published position.
    Otherwise (first open, state damaged, machine rebooted) rebuilds the state
    from the newest segment: every batch from its last index entry known to be
    durable is verified and the index rebuilt, up to the last valid batch on
    disk, whatever a slot says. A cut tail is zeroed so it can never
    resurface. The end offset never goes below the end a valid slot records:
    offsets cut below it are recorded as a gap (see ``_format``), never handed
    out again. Closed segments are checked too (:func:`check_closed`). What
    was cut, skipped or rebuilt is logged and journaled (``_journal``).
    """
    config = partition.config()
    slots = partition.state_file.slots()
    floor = max((slot.end_offset for slot in slots.valid), default=0)
    if slots.damaged:
        journal(partition, "state", floor, floor, 0, partition.state_file.path,
                f"the state file is damaged ({len(slots.valid)} of 2 slots valid, "
                f"or out of sequence): the newest segment is re-read")
    bases = list_segment_bases(partition.directory)
    if state is not None and bases:
        while len(bases) > 1 and bases[1] <= state.log_start_offset:
            remove_segment_files(partition.directory, bases.pop(0))  # retention left it
    if not bases:
        partition.create_segment(floor, config)  # handed to the view by refresh_view below
        # The segment's files must outlive a power loss once records are
        # acknowledged in them (a roll does the same for later segments).
        fsync_directory(partition.directory)
        fresh = PartitionState(
            log_start_offset=floor, end_offset=floor, active_base_offset=floor,
            active_position=0, active_max_timestamp=NO_TIMESTAMP,
            active_created_ms=partition.clock(), flushed_offset=floor, offset_index_count=0,
            time_index_count=0, epoch=(state.epoch + 1) if state is not None else 1,
        )
        first = partition.publish(fresh, state)
        partition.refresh_view(first)
        return first
    history = state if (state is not None and state.boot_id == current_boot_id()
                        and not slots.damaged) else None
    while history is not None and len(bases) > 1 and bases[-1] > history.active_base_offset:
        remove_segment_files(partition.directory, bases.pop())  # a roll died unpublished
    segment, trusted, scan = scan_newest(partition, bases, state, history, config,
                                         writable=True)
    newest = segment.base_offset
    partition._fresh[newest] = segment
    if trusted is not None and scan.position < trusted.active_position:
        kept = keep_published_damage(partition, segment, scan, trusted)
        if kept:
            check_closed(partition, bases, trusted, config, thorough=False)
            partition.refresh_view(trusted)
            return enforce_retention_locked(partition, trusted, config)
    published = (state.active_position if state is not None
                 and state.active_base_offset == newest else 0)
    leftover = segment.has_bytes_at(scan.position)
    cut = trusted is None or scan.position != trusted.active_position
    if cut or leftover:
        segment.zero_from(scan.position)  # a torn write or a bad tail: never data again
    if leftover or published > scan.position:
        journal(partition, "cut", scan.offset, max(scan.offset, floor),
                max(published - scan.position, 0), segment.path,
                "the published end lies past the valid data (the file was "
                "truncated, lost unflushed writes, or is damaged)"
                if published > scan.position else "bytes after the last valid "
                "batch: a torn write, or a batch written but never published")
    end_offset, position = scan.offset, scan.position
    if floor > end_offset and write_gap(partition, segment, position, end_offset, floor,
                                        "recovery cut offsets a valid state slot "
                                        "records as written"):
        end_offset, position, cut = floor, position + fmt.BATCH_HEADER_SIZE, True
    recovered = recovered_state(partition, state, trusted, scan, bases[0], newest, end_offset,
                                position, cut)
    if state is None or cut or recovered != state.replace(sequence=0):
        recovered = partition.publish(recovered, state)
    else:
        recovered = state
    check_closed(partition, bases, recovered, config, thorough=history is None)
    partition.refresh_view(recovered)
    return enforce_retention_locked(partition, recovered, config)


def recovered_state(partition: Partition, state: PartitionState | None,
                    trusted: PartitionState | None, scan: TailScan, first_base: int,
                    newest: int, end_offset: int, position: int, cut: bool) -> PartitionState:
    """The state recovery arrives at: the active segment is ``newest`` (the
    oldest segment left starts at ``first_base``), valid up to ``position``
    (``end_offset``, past a gap batch if one was written); the log start stays
    where ``state`` had it (never below the first segment, never above the
    end); what only a ``trusted`` state knows (when the segment was created, how
    far it was flushed) is kept from it; the epoch moves on when something was
    ``cut``."""
    start_offset = first_base if state is None else max(state.log_start_offset, first_base)
    return PartitionState(
        log_start_offset=min(start_offset, end_offset),
        end_offset=end_offset,
        active_base_offset=newest,
        active_position=position,
        active_max_timestamp=scan.max_timestamp,
        active_created_ms=(trusted.active_created_ms if trusted is not None
                           else partition.clock()),
        flushed_offset=min(trusted.flushed_offset, scan.offset) if trusted is not None else 0,
        offset_index_count=scan.index_count,
        time_index_count=scan.index_count,
        epoch=(state.epoch + (1 if cut else 0)) if state is not None else 1,
    )

def scan_newest(partition: Partition, bases: list[int], state: PartitionState | None,
                history: PartitionState | None, config: TopicConfig,
                writable: bool) -> tuple[Segment, PartitionState | None, TailScan]:
    """(segment, trusted, scan) for the active segment as recovery finds it: the
    newest of ``bases`` scanned from its last usable index entry: up to the
    published position when ``history`` (the state, if its history is
    trusted; else None) is about this segment, and then ``trusted`` is that
    state; otherwise to the end of its file, and ``trusted`` is None. An
    empty newest segment is left by a roll that died before publishing (or
    holds nothing anyway): it is dropped from ``bases`` and the one before it
    is the active segment. ``writable``: the segment is
    preallocated first (rebuilt index entries need room), its index entries
    rebuilt, and the files of an empty newest segment removed; otherwise
    nothing is written (a read-only open)."""
    while True:
        segment = Segment(partition.directory, bases[-1], read_only=not writable)
        trusted = (history if history is not None
                   and history.active_base_offset == bases[-1] else None)
        if writable:
            segment.preallocate(
                config.segment_bytes,
                index_capacity(config.segment_bytes, config.index_interval_bytes),
            )
        scan = TailScan(segment, config.index_interval_bytes, rebuild=writable)
        if trusted is not None:
            limit = trusted.active_position
            scan.run(segment.index.valid_prefix(limit, trusted.offset_index_count), limit)
        else:
            scan.run(entries_known_durable(segment, state), segment.file_size())
        if trusted is not None or scan.position or len(bases) == 1:
            return segment, trusted, scan
        segment.close()
        if writable:
            remove_segment_files(partition.directory, bases[-1])
        bases.pop()


def keep_published_damage(partition: Partition, segment: Segment, scan: TailScan,
                          state: PartitionState) -> bool:
    """True, journaled, when the batch the trusted scan stopped at lies inside
    the published region and intact batches follow it: in this boot every
    published byte was written whole before it was published, so this is
    damage (a bit flip, a write from outside), not a torn append. It is left
    in place, as in a closed segment: reads step over it and report it
    (CorruptRecordError), ``mqlog repair`` moves it out; cutting there would
    drop the intact, acknowledged records after it. False (cut as usual)
    when nothing intact follows, e.g. the file was truncated."""
    damage = resync(segment, scan.position, scan.offset, state.active_position,
                    state.offset_index_count, state.end_offset,
                    "damaged batch inside the published region")
    if damage.next_position is None:
        return False
    journal(partition, "damage", scan.offset, damage.next_offset,
            damage.next_position - scan.position, segment.path,
            "damaged bytes inside the published region, intact batches after "
            "them: left in place (reads skip them, mqlog repair moves them out)")
    return True


def journal(partition: Partition, action: _journal.Action, first_offset: int,
            end_offset: int, size: int, file: str, reason: str) -> None:
    """Record what recovery or repair did to ``partition`` in the log's journal."""
    _journal.record(_journal.log_root(partition.directory), _journal.RecoveryEvent(
        partition.clock(), partition.topic, partition.number, action, first_offset,
        end_offset, size, file, reason))


def write_gap(partition: Partition, segment: Segment, position: int, first: int, end: int,
              reason: str) -> bool:
    """Record offsets ``first`` .. ``end - 1`` as missing with a gap batch at
    ``position`` of ``segment`` (flushed before it is published); False, changing
    nothing, when the gap is too long to record (see ``fmt.GAP_OFFSETS_MAX``)."""
    if end - first > fmt.GAP_OFFSETS_MAX or end - segment.base_offset >= 2**32:
        _log.warning("%s/%d: cannot record a gap of offsets %d..%d (too long); the end "
                     "stays at %d", partition.topic, partition.number, first, end - 1, first)
        return False
    gap = fmt.gap_batch(first, end - first, partition.clock())
    segment.write(position, (gap,), len(gap))
    segment.flush()
    journal(partition, "gap", first, end, 0, segment.path, reason)
    return True


def ensure_end_at_least(partition: Partition, offset: int, reason: str) -> bool:
    """Lift the end offset to ``offset`` if it is below, recording the offsets in
    between as a gap (flushed and journaled): offsets that someone may have
    seen, or that a consumer group committed, are then never handed out again.
    ``reason`` says why, for the journal. True if the end moved."""
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    with partition.locked() as state:
        if state is None or offset <= state.end_offset:
            return False
        segment = partition.refresh_view(state).segments[state.active_base_offset]
        if not write_gap(partition, segment, state.active_position, state.end_offset, offset,
                         reason):
            return False
        partition.publish(state.replace(
            end_offset=offset, active_position=state.active_position + fmt.BATCH_HEADER_SIZE,
            epoch=state.epoch + 1), state)
    partition.on_append()
    return True


def entries_known_durable(segment: Segment, state: PartitionState | None) -> int:
    """Index entries of ``segment`` a rebuild may start from without skipping data
    that could be missing: only those below the last published flush point (a
    power loss may drop any unflushed page, not only the last ones)."""
    segment.index.remap()
    segment.time_index.remap()
    valid = segment.index.valid_prefix(segment.file_size())
    if state is None or state.active_base_offset != segment.base_offset:
        return 0
    flushed = state.flushed_offset - segment.base_offset
    offsets = segment.index.entries["relative_offset"][:valid]
    return int(np.searchsorted(offsets, flushed, side="right"))


def check_closed(partition: Partition, bases: list[int], state: PartitionState,
                 config: TopicConfig, thorough: bool) -> None:
    """Check each closed segment the view will hold (partition lock held): a tail
    that a roll left untrimmed is trimmed; a tail cut short (the file was
    truncated) is cut at its last valid batch and the missing offsets recorded
    as a gap; indexes that disagree with the data are rebuilt. The segments,
    loaded, are handed to the next view.

    Whether every index entry points at its batch is checked for the newest
    closed segment (the one a roll that died may have left behind), and for
    all of them when ``thorough`` (the state was from another boot or
    damaged: a power loss may have dropped any unflushed page); the other
    checks cost a page or two per segment, so that opening a partition stays
    independent of the size of its log after a process crash."""
    for slot, base in enumerate(bases[:-1]):
        following = bases[slot + 1]
        if following <= state.log_start_offset or base in partition._fresh:
            continue
        segment = Segment(partition.directory, base)
        try:
            segment.load_closed()
            check_closed_tail(partition, segment, following, config)
            problem = index_disagreement(segment, config.index_interval_bytes,
                                         every_entry=thorough or slot == len(bases) - 2)
            if problem is not None:
                rebuild_indexes(segment, config.index_interval_bytes, following)
                journal(partition, "index", base, base, 0, segment.index.path,
                        f"rebuilt the segment's indexes from its data: {problem}")
        except BaseException:
            segment.close()
            raise
        partition._fresh[base] = segment


def check_closed_tail(partition: Partition, segment: Segment, following: int,
                      config: TopicConfig) -> None:
    """See :func:`check_closed`; ``following``: the next segment's base offset.
    Damage inside the data (a whole batch that fails its checks, or bytes
    after a zero length field) is left alone: reads report it
    (CorruptRecordError) and nothing is cut."""
    size = segment.closed_size
    scan = TailScan(segment, config.index_interval_bytes, rebuild=False)
    scan.run(segment.closed_index_count, size)
    short = scan.offset < following and not segment.compacted
    if scan.position < size:
        tail = closed_tail(segment.buffer(size), scan.position, scan.offset, size)
        if tail == "damaged" or (tail == "zeros" and not short):
            if tail == "zeros":  # a roll died before trimming the segment
                segment.trim(scan.position, segment.closed_index_count,
                             segment.closed_time_count)
                segment.load_closed()
            return
    elif not short:
        return
    cut_bytes = size - scan.position
    segment.trim(scan.position, 0, 0)  # the entries are rebuilt below
    if cut_bytes:
        journal(partition, "cut", scan.offset, max(scan.offset, following), cut_bytes,
                segment.path, "the closed segment's data ends inside a batch or in "
                "zeros (the file was truncated, or lost unflushed pages)")
    if short:
        write_gap(partition, segment, scan.position, scan.offset, following,
                  "the closed segment's data ends before the next segment starts")
    segment.load_closed()
    rebuild_indexes(segment, config.index_interval_bytes, following)
