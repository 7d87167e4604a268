"""Consumer settings, and TopicPartition (the name of one partition)."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from typing import Literal, NamedTuple

from mqlog.errors import ConfigError
from mqlog.names import validate_name

OffsetReset = Literal["earliest", "latest", "error"]
AssignorName = Literal["range", "roundrobin", "sticky"]
OnCorrupt = Literal["raise", "skip"]


def check_timeout(timeout: object) -> None:
    """A wait of ``poll`` or ``receive``: None (no limit) or a finite number of
    seconds >= 0; TypeError for another type, ConfigError out of range."""
    if timeout is None:
        return
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be None or a number of seconds, not "
                        f"{type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout >= 0):
        raise ConfigError(f"timeout must be a finite number of seconds >= 0, not {timeout!r}")


class TopicPartition(NamedTuple):
    """Names one partition of one topic."""

    topic: str
    partition: int


@dataclasses.dataclass(frozen=True)
class ConsumerConfig:
    """Settings of a Consumer (keyword arguments of ``Log.consumer``).

    Attributes:
        client_id: shown in ``describe_group`` and ``mqlog lag``; default
            ``<host>-<pid>``. Follows the rules of ``mqlog.names`` (at most
            229 characters from ``[a-zA-Z0-9._-]``).
        auto_offset_reset: where to start a partition with no committed offset,
            or whose committed offset fell below the log start through
            retention: ``earliest``, ``latest`` (as Kafka's default) or ``error``
            (raise NoOffsetForPartitionError / OffsetOutOfRangeError).
        enable_auto_commit: commit the positions of returned records every
            ``auto_commit_interval_ms`` and on close. Default False:
            at-least-once by committing after processing.
        auto_commit_interval_ms: see above (5 s, as Kafka).
        max_poll_records: most records one ``poll`` returns (500, as Kafka).
        max_poll_interval_ms: a group member that does not poll for this long
            gives up its partitions (5 min, as Kafka).
        fetch_max_bytes: most bytes of keys + headers + values one ``poll``
            returns (at least one record is always returned).
        assignor: how a group divides partitions: ``range``, ``roundrobin`` or
            ``sticky`` (default: moves as few partitions as possible).
        consumer_timeout_ms: iteration (``for msg in consumer``) stops after this
            long without a record; None iterates forever.
        group_check_interval_ms: how often a group member looks for members
            that joined, left or died (100 ms: a dead member's partitions move
            well within a second).
        zero_copy: values and keys are memoryviews into the memory-mapped
            segment instead of bytes copies (faster for large values; valid as
            long as the message is referenced).
        on_corrupt: what ``poll`` does at records it cannot read because their
            batch on disk is damaged: ``raise`` CorruptRecordError (the
            default: nothing is skipped unless asked; the position stays, so
            the next poll raises again until the caller seeks past
            ``error.next_offset`` or the log is repaired) or ``skip`` them:
            a warning is logged, ``Consumer.skipped_corrupt`` counts them and
            the consumer goes on from the next readable offset.
    """

    client_id: str = ""
    auto_offset_reset: OffsetReset = "latest"
    enable_auto_commit: bool = False
    auto_commit_interval_ms: int = 5000
    max_poll_records: int = 500
    max_poll_interval_ms: int = 300_000
    fetch_max_bytes: int = 50 * 1024 * 1024
    assignor: AssignorName = "sticky"
    consumer_timeout_ms: int | None = None
    group_check_interval_ms: int = 100
    zero_copy: bool = False
    on_corrupt: OnCorrupt = "raise"

    def __post_init__(self) -> None:
        if not isinstance(self.client_id, str):
            raise ConfigError("client_id must be a str")
        if not self.client_id:
            object.__setattr__(self, "client_id", f"{socket.gethostname()}-{os.getpid()}")
        else:
            validate_name("client id", self.client_id)
        _one_of("auto_offset_reset", self.auto_offset_reset, ("earliest", "latest", "error"))
        _one_of("assignor", self.assignor, ("range", "roundrobin", "sticky"))
        _one_of("on_corrupt", self.on_corrupt, ("raise", "skip"))
        for name in ("enable_auto_commit", "zero_copy"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool")
        for name in ("auto_commit_interval_ms", "max_poll_records", "max_poll_interval_ms",
                     "fetch_max_bytes", "group_check_interval_ms"):
            _positive(name, getattr(self, name))
        if self.consumer_timeout_ms is not None:
            _positive("consumer_timeout_ms", self.consumer_timeout_ms, allow_zero=True)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _positive(name: str, value: object, allow_zero: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        raise ConfigError(f"{name} must be a positive int, not {value!r}")
