"""What an engine did in this process: records and bytes appended and read, flushes.

Owner: the :class:`~mqlog.logstore.Engine`, one :class:`EngineCounters` per
open engine (``engine.counters``), handed to every partition it opens. The
partitions count where the work is done, so every door (the embedded API,
producers and consumers, the Kafka and HTTP servers) is counted once:

* appends in ``Partition._append_batches``, once per append call (a duplicate
  of an idempotent append wrote nothing and is not counted);
* reads in ``_reads.read_pieces``, once per read call (records, columns,
  Kafka batches; consumers and queue workers read there too);
* flushes in ``_group_commit.flush`` and in a roll, once per flush.

Invariants: every figure only grows, and only while this engine is open;
they count this process's work, never another process's on the same
directory. The cost is one lock round trip and a few integer adds per call,
never per record.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading

#: Upper bounds (seconds) of the flush-duration buckets: an fdatasync takes ~250 us
#: here (docs/architecture.md), a slow disk or a full journal tens of milliseconds.
FLUSH_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)


@dataclasses.dataclass(frozen=True)
class CountersSnapshot:
    """The counters at one moment, all taken together."""

    records_appended: int
    #: Bytes written to segments: batch framing included, as stored.
    bytes_appended: int
    records_read: int
    #: What reads measure against ``max_bytes``: keys, headers and values of
    #: native records; whole stored batches for Kafka fetches.
    bytes_read: int
    #: Flushes (fdatasync of a partition's unflushed segments, and the fsync of
    #: its directory when a segment was created) per bucket of FLUSH_BUCKETS_S,
    #: not cumulative, plus one last bucket for the slower ones.
    flush_bucket_counts: tuple[int, ...]
    flush_seconds_sum: float

    @property
    def flushes(self) -> int:
        return sum(self.flush_bucket_counts)


class EngineCounters:
    """Thread-safe counters of one engine (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records_appended = 0
        self._bytes_appended = 0
        self._records_read = 0
        self._bytes_read = 0
        self._flush_buckets = [0] * (len(FLUSH_BUCKETS_S) + 1)
        self._flush_seconds = 0.0

    def appended(self, records: int, size: int) -> None:
        """Count one append of ``records`` records, ``size`` bytes on disk."""
        with self._lock:
            self._records_appended += records
            self._bytes_appended += size

    def read(self, records: int, size: int) -> None:
        """Count one read that returned ``records`` records of ``size`` bytes."""
        with self._lock:
            self._records_read += records
            self._bytes_read += size

    def flushed(self, seconds: float) -> None:
        """Count one flush that took ``seconds``."""
        slot = bisect.bisect_left(FLUSH_BUCKETS_S, seconds)
        with self._lock:
            self._flush_buckets[slot] += 1
            self._flush_seconds += seconds

    def snapshot(self) -> CountersSnapshot:
        """Every counter now, consistent with each other."""
        with self._lock:
            return CountersSnapshot(self._records_appended, self._bytes_appended,
                                    self._records_read, self._bytes_read,
                                    tuple(self._flush_buckets), self._flush_seconds)
