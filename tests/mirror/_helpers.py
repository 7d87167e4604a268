"""Logs to mirror, and what a mirror must make of them."""

from __future__ import annotations

from pathlib import Path

import mqlog
from mqlog import Record


def sample_records(partition: int, count: int, first_timestamp: int = 1_700_000_000_000
                   ) -> list[Record]:
    """``count`` records for ``partition``: keys on most, headers on some, and
    timestamps of their own (not the time of the append)."""
    return [Record(b"value-%d-%d" % (partition, index) * (1 + index % 3),
                   key=None if index % 5 == 4 else b"key-%d" % (index % 11),
                   headers={"trace": b"%d" % index, "kind": b"test"} if index % 3 == 0 else None,
                   timestamp=first_timestamp + partition * 1000 + index)
            for index in range(count)]


def fill(log: mqlog.Log, topic: str, counts: list[int]) -> None:
    """Create ``topic`` with one partition per count and append that many sample records."""
    log.create_topic(topic, len(counts))
    for partition, count in enumerate(counts):
        if count:
            log.append(topic, partition, sample_records(partition, count))


def make_source(path: Path, topic: str = "orders", counts: tuple[int, ...] = (40, 25, 0)
                ) -> Path:
    """A closed log directory holding ``topic`` filled by :func:`fill`."""
    with mqlog.open(path) as log:
        fill(log, topic, list(counts))
    return path


def contents(log: mqlog.Log, topic: str, partition: int, start: int | None = None,
             end: int | None = None) -> list[tuple]:
    """(key, value, headers, timestamp) of each record of a partition, in order."""
    first = log.start_offset(topic, partition) if start is None else start
    return [(r.key, r.value, dict(r.headers or {}), r.timestamp)
            for r in log.iter(topic, partition, first, end)]


def assert_mirrored(source: mqlog.Log, destination: mqlog.Log, topic: str) -> None:
    """Every partition of the destination topic holds exactly the source's records."""
    count = len(source.describe_topic(topic).partitions)
    assert len(destination.describe_topic(topic).partitions) == count
    for partition in range(count):
        assert contents(destination, topic, partition) == contents(source, topic, partition), (
            f"{topic}/{partition}")
