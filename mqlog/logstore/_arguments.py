"""Checks of the engine's arguments: each raises before anything is touched.

TypeError for a value of the wrong type, ConfigError (or InvalidTopicError for
a name) for one out of range.
"""

from __future__ import annotations

import operator

from mqlog.errors import ConfigError
from mqlog.logstore.config import TopicConfig
from mqlog.names import validate_name

#: Most partitions a topic may have (each is a directory with a few open files).
PARTITIONS_MAX = 10_000


def check_read_limits(max_records: object, max_bytes: object) -> None:
    """TypeError unless ``max_records`` is an int and ``max_bytes`` None or an int;
    ConfigError unless ``max_records`` >= 1 and ``max_bytes`` >= 0."""
    if not isinstance(max_records, int) or isinstance(max_records, bool):
        raise TypeError(f"max_records must be a positive int, not {max_records!r}")
    if max_records < 1:
        raise ConfigError(f"max_records must be a positive int, not {max_records!r}")
    if max_bytes is not None:
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool):
            raise TypeError(f"max_bytes must be None or an int, not {type(max_bytes).__name__}")
        if max_bytes < 0:
            raise ConfigError(f"max_bytes must be >= 0, not {max_bytes}")


def check_partition_count(partitions: object) -> None:
    """ConfigError unless ``partitions`` is an int from 1 to PARTITIONS_MAX."""
    if not isinstance(partitions, int) or isinstance(partitions, bool) or not (
        1 <= partitions <= PARTITIONS_MAX
    ):
        raise ConfigError(f"partitions must be an int from 1 to {PARTITIONS_MAX}, "
                          f"not {partitions!r}")


def check_new_topic(name: object, partitions: object, **topic_config: object) -> TopicConfig:
    """Raise what ``create_topic(name, partitions, **topic_config)`` on a log without
    topic defaults raises for bad input, without a log: so that a command can
    refuse bad input before it creates the log directory. Returns the config."""
    validate_name("topic", name)
    check_partition_count(partitions)
    return TopicConfig.from_options(**topic_config)


def checked_timestamp(ts_ms: object) -> int:
    """``ts_ms`` (ms since the epoch: an int or numpy integer, not a bool) clamped to
    the 64-bit range of record timestamps, so that a far past or future moment
    finds the first or end offset; TypeError for anything else."""
    if isinstance(ts_ms, bool):
        raise TypeError("a timestamp must be an int (ms since the epoch), not bool")
    try:
        value = operator.index(ts_ms)  # type: ignore[arg-type]  # TypeError is the check
    except TypeError:
        raise TypeError(f"a timestamp must be an int (ms since the epoch), not "
                        f"{type(ts_ms).__name__}") from None
    return min(max(value, -(2**63)), 2**63 - 1)
