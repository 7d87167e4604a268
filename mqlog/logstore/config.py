"""Per-topic configuration (the topic-name rules are in ``mqlog.names``).

Every limit is named here with its default and the reason for it; the same
table is in ``docs/concepts.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from mqlog.errors import ConfigError

Durability = Literal["none", "interval", "always"]
DURABILITIES = ("none", "interval", "always")
CleanupPolicy = Literal["delete", "compact"]
CLEANUP_POLICIES = ("delete", "compact")

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """Settings of one topic, persisted in ``topics/<name>/topic.json``.

    Attributes:
        segment_bytes: roll to a new segment past this size. 128 MiB: retention
            works on whole segments, so smaller means finer retention; larger
            means fewer files. Segments are sparse, so a new one costs no disk.
        segment_ms: roll a segment older than this even if not full (7 days, as
            Kafka), so time retention can delete it.
        index_interval_bytes: add a sparse index entry after this many bytes
            (4096, as Kafka): a lookup scans at most ~4 KiB past the entry.
        retention_ms: delete closed segments whose newest record is older than
            this; None keeps everything. Default None: an embedded log should
            not delete data its user did not ask to delete.
        retention_bytes: delete the oldest closed segments while the partition
            is larger than this; None for no limit.
        max_record_bytes: largest key + headers + value of one record (1 MiB,
            as Kafka's default message size).
        durability: ``none`` (page cache: survives a process crash, not a power
            loss), ``interval`` (flushed every ``flush_ms``; a power loss loses
            at most that window), ``always`` (flushed before append returns,
            concurrent appenders share one flush). Default ``interval``: near
            the speed of ``none`` with a bounded loss window.
        flush_ms: the flush period of ``interval`` durability (100 ms).
        cleanup_policy: ``delete`` (retention by time/size) or ``compact``
            (closed segments are rewritten keeping only the latest record of
            each key; a record with an empty value is a tombstone that deletes
            its key). Retention settings apply to both.
        min_cleanable_dirty_ratio: compact once this share of the closed
            segments' bytes was written since the last compaction (0.5, as
            Kafka).
        delete_retention_ms: how long compaction keeps tombstones, so readers
            that are behind still see the delete (1 day, as Kafka).
        message_ttl_ms: queue groups do not deliver a record older than this
            (counted as expired); None: records do not expire unless sent with
            ``ttl_s``.
        dead_letter_expired: queue groups move expired records to the dead-letter
            topic instead of only counting them.
    """

    segment_bytes: int = 128 * MiB
    segment_ms: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096
    retention_ms: int | None = None
    retention_bytes: int | None = None
    max_record_bytes: int = 1 * MiB
    durability: Durability = "interval"
    flush_ms: int = 100
    cleanup_policy: CleanupPolicy = "delete"
    min_cleanable_dirty_ratio: float = 0.5
    delete_retention_ms: int = 24 * 3600 * 1000
    message_ttl_ms: int | None = None
    dead_letter_expired: bool = False

    def __post_init__(self) -> None:
        _positive_int("segment_bytes", self.segment_bytes, low=4096, high=2**31 - 1)
        _positive_int("segment_ms", self.segment_ms, low=1)
        _positive_int("index_interval_bytes", self.index_interval_bytes, low=1, high=2**30)
        if self.retention_ms is not None:
            _positive_int("retention_ms", self.retention_ms, low=0)
        if self.retention_bytes is not None:
            _positive_int("retention_bytes", self.retention_bytes, low=0)
        _positive_int("max_record_bytes", self.max_record_bytes, low=1, high=64 * MiB)
        if self.durability not in DURABILITIES:
            raise ConfigError(
                f"durability must be one of {', '.join(DURABILITIES)}, not {self.durability!r}"
            )
        _positive_int("flush_ms", self.flush_ms, low=1)
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise ConfigError(
                f"cleanup_policy must be one of {', '.join(CLEANUP_POLICIES)}, "
                f"not {self.cleanup_policy!r}"
            )
        ratio = self.min_cleanable_dirty_ratio
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
            raise ConfigError(f"min_cleanable_dirty_ratio must be between 0 and 1, not {ratio!r}")
        _positive_int("delete_retention_ms", self.delete_retention_ms, low=0)
        if self.message_ttl_ms is not None:
            _positive_int("message_ttl_ms", self.message_ttl_ms, low=1)
        if not isinstance(self.dead_letter_expired, bool):
            raise ConfigError("dead_letter_expired must be a bool")

    @classmethod
    def from_options(cls, base: TopicConfig | None = None, **options: Any) -> TopicConfig:
        """``base`` with ``options`` applied; an unknown option raises TypeError."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(
                f"unknown topic option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(base or cls(), **options)

    @classmethod
    def from_stored(cls, data: dict) -> TopicConfig:
        """The config stored in ``topic.json``; settings this version does not know
        (written by a newer mqlog) are ignored, missing ones take their defaults."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def _positive_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}, not {value}")
