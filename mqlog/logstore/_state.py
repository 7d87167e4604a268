"""The partition state file: where a partition's end is published.

Owner: the appender holding the partition lock writes it; anyone reads it,
lock-free. The file (``state``, 256 bytes, memory-mapped, its blocks reserved
on open so that a publish never faults on a full disk) holds two slots of 128
bytes. Each publish writes the *older* slot with a higher sequence number
and its own checksum, so a reader always finds at least one complete slot:
it takes the valid slot with the highest sequence. A writer killed in the
middle of a publish leaves the previous slot intact: no state is ever stuck.

Slot layout (little-endian)::

    0   u64  checksum            xxh3_64 of bytes [8, 128) of the slot
    8   u64  sequence            incremented by every publish
    16  i64  log_start_offset    first retained offset
    24  i64  end_offset          next offset to be written (log end offset)
    32  i64  active_base_offset  base offset of the newest segment
    40  i64  active_position     bytes of valid batches in the newest segment
    48  i64  active_max_timestamp largest timestamp in the newest segment (-2**63: none)
    56  i64  active_created_ms   when the newest segment was created (for segment_ms)
    64  i64  flushed_offset      every offset below is on stable storage
    72  u32  offset_index_count  valid entries in the newest segment's .index
    76  u32  time_index_count    valid entries in the newest segment's .timeindex
    80  u64  epoch               bumped when the set of segments changes
    88  16s  boot_id             the machine boot in which the slot was written
    104 u32  version             STATE_VERSION
    108 ..   zero

A file is *intact* when both slots are valid with consecutive sequence
numbers, each in the slot its sequence selects, or when only the first publish
happened (sequence 1 in the second slot, the first slot all zeros). Anything
else -- a slot failing its checksum or version, a slot that is neither valid
nor never written, sequences that do not follow each other -- is *damaged*:
recovery then trusts no slot's description of the data and re-reads the newest
segment to its last valid batch (see :func:`decode_slots`).

Invariant: every batch below ``active_position`` of the active segment, and
every batch of every older segment, was completely written before the slot
that covers it was published.
"""

from __future__ import annotations

import mmap
import os
import struct
import uuid
from typing import Any, NamedTuple, cast

import xxhash

from mqlog.logstore._files import sync_map
from mqlog.logstore._space import reserve, storage_failed

STATE_VERSION = 1
SLOT_SIZE = 128
FILE_SIZE = 2 * SLOT_SIZE
_SLOT = struct.Struct("<QQqqqqqqqIIQ16sI")
_checksum = xxhash.xxh3_64_intdigest


def _read_boot_id() -> bytes:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return uuid.UUID(handle.read().strip()).bytes
    except (OSError, ValueError):
        return b"\0" * 16


#: Identifies this boot of the machine; a state written in another boot may
#: describe page-cache contents that a power loss discarded.
BOOT_ID = _read_boot_id()


def current_boot_id() -> bytes:
    """The id of the boot this process runs in (:data:`BOOT_ID`): the one place
    that says which boot it is, so a simulated power loss can start a new one."""
    return BOOT_ID


class PartitionState(NamedTuple):
    """One published snapshot of a partition's end (a tuple: cheap to read often)."""

    log_start_offset: int
    end_offset: int
    active_base_offset: int
    active_position: int
    active_max_timestamp: int
    active_created_ms: int
    flushed_offset: int
    offset_index_count: int
    time_index_count: int
    epoch: int
    boot_id: bytes = BOOT_ID
    sequence: int = 0

    def replace(self, **changes: Any) -> PartitionState:
        """A copy with ``changes`` (field name -> value; checked by ``_replace``)."""
        return self._replace(**changes)


class StateSlots(NamedTuple):
    """Both slots of a state file as found: ``valid`` holds the slots that pass
    their checks, oldest first; ``damaged`` says the file is not intact (see
    the module)."""

    valid: tuple[PartitionState, ...]
    damaged: bool

    @property
    def newest(self) -> PartitionState | None:
        return self.valid[-1] if self.valid else None


def _state_of(fields: tuple[Any, ...]) -> PartitionState:
    (_, sequence, start_offset, end, base, position, max_ts, created, flushed,
     index_count, time_count, epoch, boot_id, _version) = fields
    return PartitionState(start_offset, end, base, position, max_ts, created, flushed,
                          index_count, time_count, epoch, boot_id, sequence)


def _decode_slot(data: bytes, start: int) -> PartitionState | None:
    fields = _SLOT.unpack_from(data, start)
    if fields[-1] != STATE_VERSION:
        return None
    if _checksum(memoryview(data)[start + 8 : start + SLOT_SIZE]) != fields[0]:
        return None
    return _state_of(fields)


def decode_slots(data: bytes) -> StateSlots:
    """Both slots of a state file's ``FILE_SIZE`` bytes, and whether it is damaged."""
    slots = [_decode_slot(data, start) for start in (0, SLOT_SIZE)]
    blank = [not any(data[start : start + SLOT_SIZE]) for start in (0, SLOT_SIZE)]
    valid = tuple(sorted((s for s in slots if s is not None), key=lambda s: s.sequence))
    placed = all(s is None or s.sequence % 2 == number for number, s in enumerate(slots))
    if len(valid) == 2:
        intact = placed and valid[1].sequence == valid[0].sequence + 1
    elif len(valid) == 1:
        intact = placed and valid[0].sequence == 1 and blank[0]
    else:
        intact = all(blank)  # never published
    return StateSlots(valid, not intact)


def decode_state(data: bytes) -> PartitionState | None:
    """The newest valid slot of a state file's ``FILE_SIZE`` bytes, or None (the
    reader's fast path: it does not judge whether the file is damaged)."""
    best = None
    for start in (0, SLOT_SIZE):
        fields = _SLOT.unpack_from(data, start)
        if fields[-1] != STATE_VERSION:
            continue
        if _checksum(memoryview(data)[start + 8 : start + SLOT_SIZE]) != fields[0]:
            continue
        if best is None or fields[1] > best[1]:
            best = fields
    return None if best is None else _state_of(best)


class StateFile:
    """The memory-mapped two-slot state file of one partition."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        """Open (creating it if missing) the state file at ``path``; ``read_only``:
        map it for reading only and create nothing (a missing file reads as None
        until some process creates it)."""
        self.path = path
        #: The bytes last decoded and what they decoded to: the state is read far
        #: more often than it changes, and equal bytes decode to an equal state.
        self._decoded: tuple[bytes, PartitionState | None] = (b"", None)
        self.fd = -1
        #: (st_dev, st_ino) of the file open on ``fd``: while it is open its inode
        #: cannot be freed, so the file at ``path`` is this one exactly when its
        #: identity is this (``_views.deleted``).
        self.identity: tuple[int, int] | None = None
        self._map: mmap.mmap | None = None
        if read_only:
            self._open_read_only()
            return
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:  # blocks reserved: a publish through the map can never fault (SIGBUS)
            reserve(self.fd, FILE_SIZE, path)
            opened = os.fstat(self.fd)
        except BaseException:
            os.close(self.fd)
            raise
        self.identity = (opened.st_dev, opened.st_ino)
        self._map = mmap.mmap(self.fd, FILE_SIZE)

    def _open_read_only(self) -> None:
        """Map the file for reading if it exists at full size (else leave it unmapped)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        opened = os.fstat(fd)
        if opened.st_size < FILE_SIZE:  # being created right now
            os.close(fd)
            return
        self._map = mmap.mmap(fd, FILE_SIZE, access=mmap.ACCESS_READ)
        self.identity = (opened.st_dev, opened.st_ino)
        self.fd = fd

    def read(self) -> PartitionState | None:
        """The newest complete slot, or None if neither slot is valid."""
        state_map = self._map
        if state_map is None:  # read-only, and no process created the file yet
            self._open_read_only()
            state_map = self._map
            if state_map is None:
                return None
        data = state_map[:FILE_SIZE]
        raw, state = self._decoded
        if data != raw:
            state = decode_state(data)
            self._decoded = (data, state)
        return state

    def slots(self) -> StateSlots:
        """Both slots as they are now (recovery: the partition lock is held)."""
        return decode_slots(cast(mmap.mmap, self._map)[:FILE_SIZE])

    def publish(self, state: PartitionState, previous: PartitionState | None) -> PartitionState:
        """Write ``state`` as the newest slot; the caller holds the partition lock.

        Returns the state as published (with its sequence number).
        """
        sequence = (previous.sequence + 1) if previous is not None else 1
        boot = current_boot_id()
        slot = bytearray(SLOT_SIZE)
        _SLOT.pack_into(
            slot, 0, 0, sequence, state.log_start_offset, state.end_offset,
            state.active_base_offset, state.active_position, state.active_max_timestamp,
            state.active_created_ms, state.flushed_offset, state.offset_index_count,
            state.time_index_count, state.epoch, boot, STATE_VERSION,
        )
        struct.pack_into("<Q", slot, 0, _checksum(memoryview(slot)[8:]))
        start = (sequence % 2) * SLOT_SIZE
        state_map = cast(mmap.mmap, self._map)  # opened for writing: always mapped
        state_map[start : start + SLOT_SIZE] = slot
        published = PartitionState(*state[:10], boot, sequence)
        # What decoding the file's bytes now gives (nobody else writes under the lock).
        self._decoded = (state_map[:FILE_SIZE], published)
        return published

    def sync(self) -> None:
        """msync the file; a failure raises StorageFailedError (never retry it as
        if nothing happened: the pages may be marked clean without being on disk)."""
        try:
            sync_map(cast(mmap.mmap, self._map), self.fd)
        except OSError as error:
            raise storage_failed("msync", self.path, error) from error

    def close(self) -> None:
        if self._map is not None:
            # -1 before the number is released: a thread reading ``fd`` meanwhile
            # never gets a number the process may have reused.
            fd, self.fd = self.fd, -1
            self._map.close()
            os.close(fd)
