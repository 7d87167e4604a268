"""Per-topic configuration (the topic-name rules are in ``mqlog.names``).

Every limit is named here with its default and the reason for it; the same
table is in ``docs/concepts.md``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from mqlog.errors import ConfigError

Durability = Literal["none", "interval", "always"]
DURABILITIES = ("none", "interval", "always")
CleanupPolicy = Literal["delete", "compact"]
CLEANUP_POLICIES = ("delete", "compact")

MiB = 1024 * 1024


def _setting(default: Any, help: str, *, none: str | None = None) -> Any:
    """A field of :class:`TopicConfig` with its description (``help``) and, for a
    setting that may be None, what None means (``none``). Both are read by
    :func:`topic_settings` (the CLI's options and their ``--help`` come from them)."""
    return dataclasses.field(default=default, metadata={"help": help, "none": none})


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """Settings of one topic, persisted in ``topics/<name>/topic.json``.

    Each field says what it does in its ``help`` metadata (see
    :func:`topic_settings`; ``mqlog topics create --help`` shows it), and is
    checked in ``__post_init__``: an invalid value raises ConfigError.

    Durability: ``none`` survives a process crash, not a power loss;
    ``interval`` loses at most ``flush_ms`` of appends in a power loss;
    ``always`` flushes before append returns, concurrent appenders sharing one
    flush. Compaction rewrites closed segments keeping the latest record of
    each key; a record with an empty value is a tombstone that deletes its key,
    kept ``delete_retention_ms`` so that readers that are behind still see the
    delete. Retention settings apply to both cleanup policies.

    Why the defaults are what they are: ``segment_bytes`` 128 MiB, because
    retention works on whole segments (smaller is finer retention, larger fewer
    files) and segments are sparse, so a new one costs no disk; ``segment_ms``
    7 days (so that time retention can delete a segment that never fills),
    ``index_interval_bytes`` 4096 (a lookup scans at most ~4 KiB past an
    entry), ``max_record_bytes`` 1 MiB, ``min_cleanable_dirty_ratio`` 0.5 and
    ``delete_retention_ms`` 1 day, as Kafka's; no retention, because an
    embedded log should not delete data its user did not ask to delete;
    ``interval`` durability every 100 ms, near the speed of ``none`` with a
    bounded loss window.
    """

    segment_bytes: int = _setting(
        128 * MiB, "Roll to a new segment past this many bytes (at least 4096).")
    segment_ms: int = _setting(
        7 * 24 * 3600 * 1000, "Roll a segment older than this many ms, even if not full.")
    index_interval_bytes: int = _setting(4096, "Bytes of data between sparse index entries.")
    retention_ms: int | None = _setting(
        None, "Delete closed segments whose newest record is older than this many ms.",
        none="keep everything")
    retention_bytes: int | None = _setting(
        None, "Delete the oldest closed segments while a partition is larger than this "
              "many bytes.", none="no limit")
    max_record_bytes: int = _setting(
        1 * MiB, "Largest key + headers + value of one record, in bytes.")
    durability: Durability = _setting(
        "interval", "When appends reach stable storage: none (page cache), interval "
                    "(flushed every flush_ms) or always (before an append returns).")
    flush_ms: int = _setting(100, "Flush period of interval durability, in ms.")
    cleanup_policy: CleanupPolicy = _setting(
        "delete", "delete: retention only; compact: also keep only the latest record of "
                  "each key in closed segments.")
    min_cleanable_dirty_ratio: float = _setting(
        0.5, "compact: compact once this share (0 to 1) of the closed bytes is new.")
    delete_retention_ms: int = _setting(
        24 * 3600 * 1000, "compact: how long tombstones (empty values) are kept, in ms.")
    message_ttl_ms: int | None = _setting(
        None, "Queue groups do not deliver records older than this many ms (they count "
              "as expired).", none="only records sent with a ttl expire")
    dead_letter_expired: bool = _setting(
        False, "Queue groups move expired records to the dead-letter topic (not only "
               "count them).")

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
    def from_options(cls, base: TopicConfig | None = None, /, **options: Any) -> TopicConfig:
        """``base`` with ``options`` applied; an unknown option raises TypeError
        (``base`` too: it is positional only, never taken from the options)."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(
                f"unknown topic option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(base or cls(), **options)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> TopicConfig:
        """The config stored in ``topic.json``; settings this version does not know
        (written by a newer mqlog) are ignored, missing ones take their defaults."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclasses.dataclass(frozen=True)
class TopicSetting:
    """One field of :class:`TopicConfig`, described for tools that set it (the CLI)."""

    name: str
    #: The type of a value: int, float, bool or str (a str setting has ``choices``).
    type: type
    #: The allowed values of a str setting, else ().
    choices: tuple[str, ...]
    #: The setting may be None (``none`` says what None means).
    optional: bool
    default: Any
    help: str
    none: str | None


#: TopicConfig field -> the Kafka topic config of the same meaning, where Kafka
#: has one (the others are mqlog's own: ``durability``...). What ``mqlog serve``
#: shows Kafka clients and what a log on a Kafka cluster sets.
KAFKA_TOPIC_CONFIGS = {
    "segment_bytes": "segment.bytes",
    "segment_ms": "segment.ms",
    "index_interval_bytes": "index.interval.bytes",
    "retention_ms": "retention.ms",
    "retention_bytes": "retention.bytes",
    "max_record_bytes": "max.message.bytes",
    "flush_ms": "flush.ms",
    "cleanup_policy": "cleanup.policy",
    "min_cleanable_dirty_ratio": "min.cleanable.dirty.ratio",
    "delete_retention_ms": "delete.retention.ms",
}


def topic_settings() -> tuple[TopicSetting, ...]:
    """Every :class:`TopicConfig` field as a :class:`TopicSetting`, in declaration
    order: adding a field to TopicConfig adds it here (and to the CLI)."""
    hints = typing.get_type_hints(TopicConfig)
    settings = []
    for field in dataclasses.fields(TopicConfig):
        hint = hints[field.name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        members = [m for m in typing.get_args(hint) if m is not type(None)] if union else [hint]
        if len(members) != 1:
            raise TypeError(f"TopicConfig.{field.name}: one type (or one type | None) only")
        (kind,) = members
        choices: tuple[str, ...] = ()
        if typing.get_origin(kind) is Literal:
            kind, choices = str, typing.get_args(kind)
        settings.append(TopicSetting(field.name, kind, choices, union, field.default,
                                     field.metadata["help"], field.metadata["none"]))
    return tuple(settings)


def _positive_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}, not {value}")
