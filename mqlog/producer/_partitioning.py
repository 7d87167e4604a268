"""Which partition a record goes to: the caller's, its key's, or the sticky one.

Owns no state. The batch a topic's keyless records are filling (the "sticky"
batch) belongs to the Producer, under its lock; this module holds the rules
the Producer applies:

- a record sent with ``partition=`` goes there (:func:`check_partition`);
- with a ``partitioner`` in the config, the partitioner decides for every
  record without a partition, keyed or not (:func:`keyed_partition`);
- otherwise a keyed record goes to :func:`key_partition` of its key, and
  keyless records fill one batch of one partition: once that batch is taken by
  the sender or full, the next batch goes to the next partition
  (:func:`sticky_partition`).
"""

from __future__ import annotations

from collections.abc import Callable

import xxhash

from mqlog.errors import ConfigError, UnknownPartitionError
from mqlog.producer._batches import Batch

Partitioner = Callable[[bytes | None, int], int]


def key_partition(key: bytes, partition_count: int) -> int:
    """The partition of a keyed record: ``xxh3_64(key) % partition_count``.

    Stable across processes, runs and versions, so one key always lands in one
    partition (while the partition count stays the same) and keeps its order.
    """
    return xxhash.xxh3_64_intdigest(key) % partition_count


def keyed_partition(partitioner: Partitioner | None, key: bytes | None, count: int) -> int:
    """The partition ``partitioner`` picks (checked to be one of ``count``), or
    without one, the key's."""
    if partitioner is not None:
        return _checked_choice(partitioner(key, count), count)
    assert key is not None  # keyless records without a partitioner go sticky
    return key_partition(key, count)  # keyed: the key decides


def sticky_partition(previous: Batch | None, count: int) -> int:
    """The partition of a topic's next sticky batch, after ``previous`` (None: the
    topic has had none): the next partition in turn."""
    return 0 if previous is None else (previous.partition + 1) % count


def check_partition(topic: str, partition: object, count: int) -> None:
    if not isinstance(partition, int) or isinstance(partition, bool):
        raise TypeError(f"partition must be an int, not {type(partition).__name__}")
    if not 0 <= partition < count:
        raise UnknownPartitionError(
            f"topic {topic!r} has no partition {partition}: it has partitions 0..{count - 1}"
        )


def _checked_choice(partition: object, count: int) -> int:
    if not isinstance(partition, int) or not 0 <= partition < count:
        raise ConfigError(f"partitioner returned {partition!r}, not a partition in 0..{count - 1}")
    return partition
