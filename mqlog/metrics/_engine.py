"""An engine's counters of this process as Prometheus metrics.

:class:`EngineCollector` reads :attr:`Engine.counters <mqlog.logstore.Engine>`
at each scrape: records and bytes appended and read, and the durations of
flushes to stable storage. They count what this process did through that
engine since it was opened (every door: the embedded API, producers and
consumers, the servers), so they mean something only in a process that lives
on, such as ``mqlog serve``; ``mqlog metrics`` leaves them out.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from mqlog.logstore import FLUSH_BUCKETS_S, CountersSnapshot, Engine


class EngineCollector:
    """A prometheus_client collector of ``engine``'s counters (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        """The families :meth:`collect` yields, without samples."""
        return list(_families(None))

    def collect(self) -> Iterator[Metric]:
        """The counters now."""
        return _families(self.engine.counters.snapshot())


#: (name, help) of each counter, in the order of CountersSnapshot's fields.
_COUNTERS = (
    ("mqlog_records_appended", "Records appended by this process."),
    ("mqlog_bytes_appended", "Bytes appended by this process: record batches as written "
     "to segments."),
    ("mqlog_records_read", "Records read by this process (consumers, queue workers, Kafka "
     "fetches and direct reads)."),
    ("mqlog_bytes_read", "Bytes read by this process: keys, headers and values (Kafka "
     "fetches: the record batches sent)."),
)


def _families(counts: CountersSnapshot | None) -> Iterator[Metric]:
    """The families of ``counts`` (None: without samples)."""
    values = (None,) * len(_COUNTERS) if counts is None else (
        counts.records_appended, counts.bytes_appended, counts.records_read, counts.bytes_read)
    for (name, help_text), value in zip(_COUNTERS, values):
        yield CounterMetricFamily(name, help_text, value=value)
    flushes = HistogramMetricFamily(
        "mqlog_fsync_duration_seconds",
        "Duration of each flush of a partition to stable storage by this process "
        "(fdatasync of its unflushed segments, fsync of its directory after a new "
        "segment).")
    if counts is not None:
        bounds = (*FLUSH_BUCKETS_S, float("inf"))
        cumulative = list(itertools.accumulate(counts.flush_bucket_counts))
        flushes.add_metric([], [(floatToGoString(bound), count)
                                for bound, count in zip(bounds, cumulative)],
                           counts.flush_seconds_sum)
    yield flushes
