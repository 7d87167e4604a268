"""Idempotent appends: the last batch each producer wrote to a partition.

Owner: the partition, under its append lock. The file ``<partition>/producers``
is a memory-mapped open-addressing table of ``SLOTS`` entries (producer id,
sequence, first offset, end offset), 32 bytes each. An idempotent producer
numbers its batches per partition (0, 1, 2, ...) and sends at most one batch
at a time to a partition, so the last sequence of each producer is the whole
window: a batch that comes again with that sequence (a retry whose first try
was written, but whose outcome the producer did not learn) is not written
twice; the append returns the first try's offset.

An entry only counts if its batch is below the published end offset: the
entry is written before the end is published, and a process killed in between
leaves an entry for a batch that recovery discarded.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import NamedTuple

SLOTS = 1024
_ENTRY = struct.Struct("<Qqqq")
FILE_NAME = "producers"
#: End offset of an entry whose batch a recovery cut: above any published end.
NEVER_WRITTEN = 2**63 - 1


class LastBatch(NamedTuple):
    sequence: int
    first_offset: int
    end_offset: int


class ProducerTable:
    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, FILE_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < SLOTS * _ENTRY.size:
                os.ftruncate(fd, SLOTS * _ENTRY.size)
            self._map = mmap.mmap(fd, SLOTS * _ENTRY.size)
        finally:
            os.close(fd)

    def _slot(self, producer_id: int) -> int:
        """The slot holding ``producer_id``, or the first free one on its probe path
        (the oldest entry of the path when the table is full)."""
        home = producer_id % SLOTS
        for step in range(SLOTS):
            slot = (home + step) % SLOTS
            owner = _ENTRY.unpack_from(self._map, slot * _ENTRY.size)[0]
            if owner in (producer_id, 0):
                return slot
        return home

    def get(self, producer_id: int) -> LastBatch | None:
        owner, sequence, first, end = _ENTRY.unpack_from(
            self._map, self._slot(producer_id) * _ENTRY.size)
        return LastBatch(sequence, first, end) if owner == producer_id else None

    def put(self, producer_id: int, sequence: int, first: int, end: int) -> None:
        _ENTRY.pack_into(self._map, self._slot(producer_id) * _ENTRY.size, producer_id,
                         sequence, first, end)

    def discard_from(self, offset: int) -> None:
        """Make every entry whose batch ends after ``offset`` count as not written
        (recovery recorded the offsets from ``offset`` on as a gap: a retry of such
        a batch must write it again). The owner and sequence stay, so the probe
        paths and the expected next sequence do not change."""
        for slot in range(SLOTS):
            owner, sequence, first, end = _ENTRY.unpack_from(self._map, slot * _ENTRY.size)
            if owner and end > offset:
                _ENTRY.pack_into(self._map, slot * _ENTRY.size, owner, sequence, first,
                                 NEVER_WRITTEN)

    def close(self) -> None:
        self._map.close()
