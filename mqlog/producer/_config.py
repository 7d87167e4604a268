"""Producer settings.

Owns: :class:`ProducerConfig`, frozen and checked when made; a Producer copies
the fields it reads on every send into plain attributes.
"""

from __future__ import annotations

import dataclasses

from mqlog.errors import ConfigError
from mqlog.producer._partitioning import Partitioner


@dataclasses.dataclass(frozen=True)
class ProducerConfig:
    """Producer settings (keyword arguments of ``Log.producer``).

    Attributes:
        linger_ms: how long the sender waits for more records before appending a
            batch that is not full. 0: append at once, batching only what queued
            up meanwhile (lowest latency).
        batch_bytes: a partition's batch is appended once it holds this many
            bytes (1 MiB: large batches make appends cheap; Kafka's 16 KiB is
            tuned for a network round trip mqlog does not have).
        buffer_bytes: most bytes queued and not yet appended; ``send`` blocks
            while more are queued (32 MiB, as Kafka's buffer.memory).
        partitioner: ``f(key, partition_count) -> partition``; default: keyed
            records by :func:`key_partition`, keyless ones sticky (a batch fills
            one partition, the next batch goes to the next partition).
        idempotent: number records per partition under a producer id and
            epoch (as a Kafka producer does: each append carries the sequence
            number of its first record), so that a batch retried after an error
            whose outcome was unknown (it may have been written) is written once.
        retries: how often an idempotent producer retries a batch whose append
            raised an OSError (5; without idempotence batches are not retried,
            since a retry could write them twice). Once they are used up the
            producer moves on to a new epoch: its later batches start again at
            sequence 0.
    """

    linger_ms: int = 0
    batch_bytes: int = 1024 * 1024
    buffer_bytes: int = 32 * 1024 * 1024
    partitioner: Partitioner | None = None
    idempotent: bool = False
    retries: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.idempotent, bool):
            raise ConfigError("idempotent must be a bool")
        for name in ("linger_ms", "batch_bytes", "buffer_bytes", "retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0, not {value!r}")
        if self.partitioner is not None and not callable(self.partitioner):
            raise ConfigError("partitioner must be callable(key, partition_count) -> int")
