"""``Log.describe_queue``: one frozen ``QueuePartitionDescription`` per partition,
and ``mqlog queues describe --json`` printing its fields, in order, as before.

On the fake clock: lock deadlines are exact.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mqlog
from mqlog.consumer import QueuePartitionDescription
from tests.cli._cli import run
from tests.queue._children import fill

#: The JSON keys of ``mqlog queues describe --json``, in the order printed.
FIELDS = ["topic", "partition", "position", "end_offset", "lag", "ready", "in_flight",
          "delayed", "expired", "dead_lettered", "corrupt"]


@pytest.fixture
def described(log_dir: Path, clock) -> Path:
    """Queue group 'w' over 't' (2 partitions): of partition 0's 5 records, 2 are
    acked, 2 are held, 1 is nacked with a delay; partition 1 is empty."""
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        log.create_topic("t", partitions=2)
        fill(log, "t", 0, 5)
        with log.queue("w", ["t"], ack_timeout_s=60) as worker:
            first, second, *held, delayed = worker.receive(10)
            first.ack()
            second.ack()
            delayed.nack(delay_s=30)
            yield log_dir
            assert [message.offset for message in held] == [2, 3]  # held until closed


def test_describe_queue_returns_frozen_descriptions(described: Path, clock) -> None:
    with mqlog.open(described, clock=clock) as log:
        rows = log.describe_queue("w")
    assert all(type(row) is QueuePartitionDescription for row in rows)
    assert mqlog.QueuePartitionDescription is QueuePartitionDescription
    assert [field.name for field in dataclasses.fields(QueuePartitionDescription)] == FIELDS
    assert rows == [
        QueuePartitionDescription(topic="t", partition=0, position=2, end_offset=5, lag=3,
                                  ready=0, in_flight=2, delayed=1, expired=0,
                                  dead_lettered=0, corrupt=0),
        QueuePartitionDescription(topic="t", partition=1, position=0, end_offset=0, lag=0,
                                  ready=0, in_flight=0, delayed=0, expired=0,
                                  dead_lettered=0, corrupt=0),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows[0].lag = 0  # type: ignore[misc]


def test_the_cli_prints_each_description_as_one_json_object(described: Path) -> None:
    result = run(CliRunner(), "-d", described, "queues", "describe", "w", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(
        '{"topic":"t","partition":0,"position":2,"end_offset":5,"lag":3,"ready":')
    assert result.stdout.splitlines()[1] == (
        '{"topic":"t","partition":1,"position":0,"end_offset":0,"lag":0,"ready":0,'
        '"in_flight":0,"delayed":0,"expired":0,"dead_lettered":0,"corrupt":0}')
