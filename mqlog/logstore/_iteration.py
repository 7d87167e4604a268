"""Iterating a partition's records in chunks (``Engine.iter``), past damage if asked.

Holds no state: the iterator reads through the partition's lock-free reads,
one chunk of ``ITER_CHUNK_RECORDS`` at a time, so memory stays bounded
whatever the range.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from mqlog.errors import CorruptRecordError
from mqlog.logstore._record import Record

if TYPE_CHECKING:
    from mqlog.logstore._partition import Partition

#: Records fetched per step.
ITER_CHUNK_RECORDS = 4096
OnCorrupt = str | Callable[[CorruptRecordError], None]

_log = logging.getLogger("mqlog")


def check_on_corrupt(on_corrupt: object) -> None:
    """ValueError unless ``on_corrupt`` is "raise", "skip" or a callable."""
    if on_corrupt not in ("raise", "skip") and not callable(on_corrupt):
        raise ValueError(f"on_corrupt must be 'raise', 'skip' or a callable, "
                         f"not {on_corrupt!r}")


def iterate(target: Partition, start: int, end: int | None,
            on_corrupt: OnCorrupt) -> Iterator[Record]:
    """Records of ``target`` from ``start`` up to ``end`` (exclusive; None: the end
    offset as it is when the iterator reaches it). At damaged records:
    ``"raise"`` raises once the records before them were yielded; ``"skip"``
    logs a warning and goes on from the next readable offset; a callable is
    called with the error, then the damage is skipped."""
    offset = start
    while end is None or offset < end:
        want = ITER_CHUNK_RECORDS if end is None else min(ITER_CHUNK_RECORDS, end - offset)
        try:
            records = target.read(offset, want, None)
        except CorruptRecordError as error:
            if on_corrupt == "raise" or error.next_offset is None or (
                    error.next_offset <= offset):
                raise
            if on_corrupt == "skip":
                _log.warning("skipping damaged records: %s", error)
            else:
                on_corrupt(error)  # type: ignore[operator]  # checked: a callable
            offset = error.next_offset
            continue
        if not records:
            return
        last = records[-1].offset
        assert last is not None  # records read from the log carry their offsets
        if end is not None and last >= end:  # compaction gaps: the read ran past end
            # Records read from the log carry their offsets.
            yield from [r for r in records if r.offset < end]  # type: ignore[operator]
            return
        yield from records
        offset = last + 1
