"""Power losses under a Kafka-style idempotent producer: appends written with
``flush=False`` and acknowledged once ``make_durable`` returned, as ``mqlog
serve`` does for ``acks=all`` on an ``always`` topic.

A seeded run appends Kafka batches of one producer (consecutive sequences),
acknowledges what ``make_durable`` covered, and now and then loses power
(``_simdisk``). After each, the producer does what a Kafka client does: it
retries its unacknowledged batches in order, and (its last response lost) its
last acknowledged one. Checked after every loss: every acknowledged record is
at its offset with its value; the retried acknowledged batch is a duplicate
(its first offset back, nothing written), which needs the producer table to
have been made durable with the records; retries of unacknowledged batches
are accepted (never an out-of-order sequence error). Unacknowledged records
may be lost or, their producer entry lost with the power, written twice:
at-least-once for what was never acknowledged. The disk tears pages at sector
boundaries only (``torn_unit``): drives write a sector whole or not at all,
which is what keeps a rewritten producer record from being torn.

``together``: the topic has a second partition that gets a plain record
before each acknowledgement, and both are made durable with one
``make_durable_together`` (one syncfs covering the segments and the producer
table), as ``mqlog serve`` does when requests wait on several partitions;
the second partition's acknowledged records must survive too.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from mqlog.logstore import Engine
from tests.faults._simdisk import SimDisk

EPOCH = 0
RUNS = int(os.environ.get("MQLOG_KAFKA_POWER_RUNS", "6"))
#: Batches a producer has unacknowledged at most: with the last acknowledged one,
#: the 5 appends a partition remembers per producer (Kafka's
#: max.in.flight.requests.per.connection <= 5 for idempotence).
MAX_IN_FLIGHT = 4
#: Drives write a sector whole or not at all on power loss.
SECTOR_BYTES = 512


def _batch(producer_id: int, sequence: int, count: int) -> bytes:
    """``count`` records of the producer from ``sequence``; values name their sequence."""
    builder = DefaultRecordBatchBuilder(2, 0, False, producer_id, EPOCH, sequence,
                                        batch_size=2**30)
    for delta in range(count):
        builder.append(delta, 1_700_000_000_000, None, b"seq %d" % (sequence + delta), [])
    return bytes(builder.build())


class _Run:
    """One log on a simulated disk and the producer's view of it."""

    def __init__(self, root: Path, seed: int, together: bool) -> None:
        self.rng = random.Random(seed)
        self.together = together
        #: Records of partition 1 acknowledged (``together`` only).
        self.side_acked = 0
        self.path = str(root / f"log{seed}")
        with Engine(self.path) as engine:
            engine.create_topic("t", partitions=2, durability="always", segment_bytes=8192)
        self.disk = SimDisk(self.path, random.Random(self.rng.randrange(2**32)),
                            torn_unit=SECTOR_BYTES)
        self.engine = Engine(self.path)
        #: Any slot of the producer table: wherever the record lies in the file.
        self.producer_id = self.rng.randrange(1000)
        self.next_sequence = 0
        #: (sequence, count, first offset) acknowledged, and those sent but not yet.
        self.acked: list[tuple[int, int, int]] = []
        self.unacked: list[tuple[int, int]] = []

    def send(self) -> None:
        count = self.rng.choice([1, 1, 3, 20])
        self.engine.append_kafka_batches(
            "t", 0, _batch(self.producer_id, self.next_sequence, count), flush=False)
        self.unacked.append((self.next_sequence, count))
        self.next_sequence += count

    def acknowledge(self) -> None:
        end = self.engine.end_offset("t", 0)
        if self.together:
            side = self.engine.append("t", 1, [b"side"], flush=False) + 1
            assert self.engine.make_durable_together([("t", 0, end), ("t", 1, side)]) == {}
            self.side_acked = side
        else:
            self.engine.make_durable("t", 0, end)
        for sequence, count in self.unacked:
            self.acked.append((sequence, count, self._offset_of(sequence)))
        self.unacked.clear()

    def _offset_of(self, sequence: int) -> int:
        """The offset of the newest record holding ``sequence``."""
        wanted = b"seq %d" % sequence
        found = [r.offset for r in self.engine.iter("t", 0) if bytes(r.value) == wanted]
        assert found, f"sequence {sequence} is not in the log"
        return found[-1]

    def lose_power(self) -> None:
        self.disk.crash(self.engine.close, keep_page_cache=False)
        self.engine = Engine(self.path)
        values = {r.offset: bytes(r.value) for r in self.engine.iter("t", 0)}
        for sequence, count, first in self.acked:
            for delta in range(count):
                assert values.get(first + delta) == b"seq %d" % (sequence + delta), (
                    f"acknowledged sequence {sequence + delta} lost from offset {first + delta}")
        assert self.engine.end_offset("t", 1) >= self.side_acked, "partition 1 lost records"
        if self.acked:  # its response was lost: the retry must be a duplicate
            sequence, count, first = self.acked[-1]
            end = self.engine.end_offset("t", 0)
            assert self.engine.append_kafka_batches(
                "t", 0, _batch(self.producer_id, sequence, count), flush=False) == first
            assert self.engine.end_offset("t", 0) == end, "a duplicate was written again"
        for sequence, count in self.unacked:  # retried in order, as a client does
            self.engine.append_kafka_batches(
                "t", 0, _batch(self.producer_id, sequence, count), flush=False)
        self.acknowledge()


@pytest.mark.parametrize("together", [False, True], ids=["alone", "together"])
@pytest.mark.parametrize("run", range(RUNS))
def test_acknowledged_idempotent_appends_survive_power_loss_and_stay_deduplicated(
        tmp_path: Path, run: int, together: bool) -> None:
    seed = int(os.environ.get("MQLOG_KAFKA_POWER_SEED")
               or random.SystemRandom().randrange(2**32))
    state = _Run(tmp_path, seed, together)
    state.disk.install()
    state.disk.settle()
    try:
        for _step in range(80):
            draw = state.rng.random()
            if draw < 0.55 and len(state.unacked) < MAX_IN_FLIGHT:
                state.send()
            elif draw < 0.85 or draw < 0.55:
                state.acknowledge()
            else:
                state.lose_power()
        state.lose_power()
    except AssertionError as error:
        raise AssertionError(f"seed {seed}: {error}") from error
    finally:
        state.disk.uninstall()
        state.engine.close()
