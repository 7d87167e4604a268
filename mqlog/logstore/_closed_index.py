"""Checking a closed segment's index files against its data, and rebuilding them.

Index files carry no checksum of their own (see ``_index``): a closed segment's
indexes are checked when a partition is opened (:func:`index_disagreement`),
and rewritten from the data when they disagree with it (:func:`rebuild_indexes`),
so that damage found once is not met again by every lookup and every
``mqlog verify``. The check reads the batch header at every offset-index entry
(one page per entry, vectorized) and the time index's check words; it does not
re-read the records.

A rebuild replaces each file with ``_files.atomic_write``: a crash leaves the
old or the new file, never a mix, and its temporary file is removed when the
partition is next opened. Callers hold the partition lock (compaction swaps
files of closed segments under it too).
"""

from __future__ import annotations

import numpy as np

from mqlog.logstore import _format as fmt
from mqlog.logstore._files import atomic_write
from mqlog.logstore._segment import Segment

_BASE_OFFSET_FIELD = 16


def index_disagreement(segment: Segment, interval_bytes: int,
                       every_entry: bool = True) -> str | None:
    """Why the loaded closed ``segment``'s index files disagree with its data, or
    None when every entry is well formed and points where it says, and the time
    index ends with the entry covering the whole segment. ``interval_bytes``:
    the topic's index interval (an empty offset index must have had no entry due).

    Checking where every entry points reads one page of data per entry, about
    the whole segment; with ``every_entry=False`` only the last entry's batch is
    read (the files' structure is still checked whole). Lookups check the batch
    an entry names anyway and scan from an earlier one when it is wrong, so an
    entry missed here costs a longer scan, never a wrong read."""
    index, time_index = segment.index.entries, segment.time_index.entries
    count = len(index)
    if segment.closed_index_count != count:
        return f"offset index entry {segment.closed_index_count} of {count} is malformed"
    if segment.closed_time_count != len(time_index):
        return f"time index entry {segment.closed_time_count} of {len(time_index)} is malformed"
    size = segment.closed_size
    if len(time_index) != (count + 1 if size else 0):
        return (f"the time index has {len(time_index)} entries for {count} offset-index "
                f"entries (and one covering the segment)")
    relative = index["relative_offset"].astype(np.int64)
    if not np.array_equal(time_index["relative_offset"][:count].astype(np.int64), relative):
        return "the time index names other batches than the offset index"
    if not count:
        return "the offset index is empty" if _entry_due(segment, interval_bytes) else None
    positions = index["position"].astype(np.int64)
    if not every_entry:
        positions, relative = positions[-1:], relative[-1:]
    if int(positions[-1]) + fmt.BATCH_HEADER_SIZE > size:
        return "an offset-index entry points past the data"
    data = np.frombuffer(segment.buffer(size), dtype=np.uint8, count=size)
    fields = positions[:, None] + np.arange(_BASE_OFFSET_FIELD, _BASE_OFFSET_FIELD + 8)
    bases = np.ascontiguousarray(data[fields]).view("<i8").ravel()
    magics = data[positions + 12]
    wrong = np.flatnonzero((bases != segment.base_offset + relative) | (magics != fmt.MAGIC))
    if len(wrong):
        return (f"offset-index entry {int(wrong[0])} (of {count}) does not point at the batch "
                f"of its offset")
    return None


def _entry_due(segment: Segment, interval_bytes: int) -> bool:
    """True if a batch of the segment starts ``interval_bytes`` or more into it
    (walking the headers of the first ``interval_bytes`` only)."""
    size = segment.closed_size
    position = 0
    buffer = segment.buffer(size)
    while position < min(size, interval_bytes):
        try:
            position += fmt.decode_header(buffer, position, size).batch_length
        except fmt.BatchError:
            return False
    return interval_bytes <= position < size


def rebuild_indexes(segment: Segment, interval_bytes: int, end_offset: int) -> None:
    """Rewrite the closed ``segment``'s index files from its data (entries as an
    appender writes them: one per ``interval_bytes``, plus the final time entry
    covering the segment up to ``end_offset``), then reload them."""
    size = segment.closed_size
    buffer = segment.buffer(size) if size else b""
    offsets: list[tuple[int, int]] = []
    times: list[tuple[int, int, int]] = []
    position = last_indexed = 0
    max_timestamp = fmt.NO_TIMESTAMP
    while position < size:
        try:
            header = fmt.decode_header(buffer, position, size)
        except fmt.BatchError:
            break  # broken framing: nothing after it can be indexed
        relative = header.base_offset - segment.base_offset
        if position - last_indexed >= interval_bytes and 0 <= relative < 2**32:
            offsets.append((relative, position))
            times.append(fmt.time_entry(max_timestamp, relative))
            last_indexed = position
        max_timestamp = max(max_timestamp, header.max_timestamp)
        position += header.batch_length
    final = max(end_offset - segment.base_offset, 1 + (times[-1][1] if times else 0))
    if size and final < 2**32:  # the entry covering the whole segment, as a roll writes it
        times.append(fmt.time_entry(max_timestamp, final))
    atomic_write(segment.index.path, np.array(offsets, dtype=fmt.OFFSET_INDEX_DTYPE).tobytes())
    atomic_write(segment.time_index.path, np.array(times, dtype=fmt.TIME_INDEX_DTYPE).tobytes())
    for index in (segment.index, segment.time_index):
        index.close()  # drop the map of the replaced file
        index.remap()
    segment.load_closed()
