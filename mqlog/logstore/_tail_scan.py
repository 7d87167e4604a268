"""Scanning a segment's batches forward from an index entry (recovery's tool).

:class:`TailScan` re-verifies batches from a usable index entry on and finds
where the valid data ends; :func:`closed_tail` says what follows the valid
data of a closed segment. Neither holds state beyond one scan nor knows about
partitions: recovery (``_recovery``) decides what to cut or keep.

Invariant: a scan ends at the end of a complete append (never inside a run of
``ATTR_CONTINUES`` batches), and index entries it rebuilds point only at the
start of an append.
"""

from __future__ import annotations

import numpy as np

from mqlog.logstore import _format as fmt
from mqlog.logstore._segment import Segment
from mqlog.logstore._views import NO_TIMESTAMP


class TailScan:
    """Re-verify a segment from an index entry forward, rebuilding index entries.

    After :meth:`run`: ``position``/``offset`` are the end of the valid batches
    that complete an append (a trailing run of ``ATTR_CONTINUES`` batches, an
    append cut short by a crash, is left out),
    ``max_timestamp`` the segment's largest timestamp, ``index_count`` the
    valid index entries (paired offset and time entries).
    """

    def __init__(self, segment: Segment, index_interval_bytes: int, rebuild: bool = True) -> None:
        self.segment = segment
        self.interval = index_interval_bytes
        self.rebuild = rebuild
        self.position = 0
        self.offset = segment.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.index_count = 0

    def run(self, index_count: int, limit: int) -> None:
        """Scan from the last of the first ``index_count`` index entries that points
        at a good batch (the segment's start if none does) up to byte ``limit``."""
        segment = self.segment
        index_count = min(index_count, segment.index.capacity, max(segment.time_index.capacity, 0))
        # Walk back from the last claimed entry to one that points at a good batch.
        while index_count > 0:
            relative, position = (int(v) for v in segment.index.entries[index_count - 1])
            timestamp, time_relative, check = (
                int(v) for v in segment.time_index.entries[index_count - 1])
            try:
                header = segment.header_at(position, limit)
                if header.base_offset == segment.base_offset + relative == (
                    segment.base_offset + time_relative
                ) and check == fmt.time_check(timestamp, time_relative):
                    self.position, self.offset = position, header.base_offset
                    self.max_timestamp = timestamp
                    break
            except fmt.BatchError:
                pass
            index_count -= 1
        self.index_count = index_count
        last_indexed = self.position if index_count else 0
        if index_count == 0:
            self.position, self.offset, self.max_timestamp = 0, segment.base_offset, NO_TIMESTAMP
        # An append is complete once a batch without ATTR_CONTINUES ends it; the scan
        # starts at an append's start (index entries point at those only) and ends
        # at the end of the last complete append.
        complete = (self.position, self.offset, self.max_timestamp, self.index_count)
        while self.position < limit:
            try:
                header = segment.header_at(self.position, limit)
            except fmt.BatchError:
                break
            if header.base_offset != self.offset and not (
                header.base_offset > self.offset and header.attributes & fmt.ATTR_COMPACTED
            ):
                break
            if (self.rebuild and complete[0] == self.position
                    and self.position - last_indexed >= self.interval
                    and segment.index.write(self.index_count,
                                            (self.offset - segment.base_offset, self.position))):
                segment.time_index.write(
                    self.index_count,
                    fmt.time_entry(self.max_timestamp, self.offset - segment.base_offset),
                )
                self.index_count += 1
                last_indexed = self.position
            self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
            self.offset = header.next_offset
            self.position += header.batch_length
            if not header.attributes & fmt.ATTR_CONTINUES:
                complete = (self.position, self.offset, self.max_timestamp, self.index_count)
        self.position, self.offset, self.max_timestamp, self.index_count = complete




def closed_tail(buffer: fmt.ReadBuffer, position: int, offset: int, size: int) -> str:
    """What follows the last valid batch of a closed segment at ``position``:
    ``"zeros"`` up to the end of the file; ``"torn"``, a batch of the expected
    ``offset`` that the end of the file cuts short; else ``"damaged"``."""
    try:
        fmt.decode_header(buffer, position, size)
        return "damaged"  # a whole batch failing its checksum or offset
    except fmt.BatchError as error:
        reason = str(error)
    if reason == "end":
        rest = np.frombuffer(buffer, dtype=np.uint8, count=size - position, offset=position)
        return "damaged" if rest.any() else "zeros"
    if reason == "truncated header":
        return "torn"
    if reason == "truncated batch":
        header = fmt.BATCH_HEADER.unpack_from(buffer, position)
        return "torn" if header[5] == offset else "damaged"
    return "damaged"
