"""Which closed segments retention deletes: a pure function of their sizes and ages.

Rules (as Kafka's): only whole closed segments go, oldest first, and never the
active segment. By time: a segment goes when its newest record is older than
``retention_ms``. By size: the oldest segments go while the partition would
still hold at least ``retention_bytes`` without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


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
    count = 0
    if retention_ms is not None:
        horizon = now_ms - retention_ms
        while count < len(closed) and closed[count].max_timestamp < horizon:
            count += 1
    if retention_bytes is not None:
        total = active_size_bytes + sum(segment.size_bytes for segment in closed)
        total -= sum(segment.size_bytes for segment in closed[:count])
        while count < len(closed) and total - closed[count].size_bytes >= retention_bytes:
            total -= closed[count].size_bytes
            count += 1
    return count
