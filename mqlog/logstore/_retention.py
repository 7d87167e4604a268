"""Which closed segments retention deletes: a pure function of their sizes and ages.

Rules (as Kafka's): only whole closed segments go, oldest first, and never the
active segment. The oldest closed segment goes while either rule wants it gone
(so one call reaches the same result as many): by time, when its newest record
is older than ``retention_ms``; by size, when the partition would still hold at
least ``retention_bytes`` without it.
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
