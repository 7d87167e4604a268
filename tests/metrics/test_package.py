"""mqlog.metrics exports exactly its public names, sorted, and the logstore the
counters' types the collectors read."""

from __future__ import annotations

import inspect

import mqlog.logstore
import mqlog.metrics


def test_all_is_sorted_and_complete() -> None:
    names = {name for name, value in vars(mqlog.metrics).items()
             if not name.startswith("_") and not inspect.ismodule(value)
             and name != "annotations"}
    assert mqlog.metrics.__all__ == sorted(mqlog.metrics.__all__)
    assert set(mqlog.metrics.__all__) == names == {
        "CONTENT_TYPE", "EngineCollector", "LogCollector", "ServerMetrics", "exposition"}


def test_the_engine_counters_are_public_storage_names() -> None:
    assert {"CountersSnapshot", "EngineCounters", "FLUSH_BUCKETS_S"} <= set(
        mqlog.logstore.__all__)
