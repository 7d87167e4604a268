"""Dead letters' states, redrive with filters and destinations, purge and dry runs
(``Log.dead_letters``, ``Log.redrive``, ``Log.purge_dead_letters``)."""

from __future__ import annotations

import pytest

import mqlog
from mqlog.errors import ConfigError, UnknownPartitionError, UnknownTopicError
from tests._directory import snapshot


@pytest.fixture
def log(log_dir, clock):
    """Topic t (2 partitions): 0 has a, b, c; 1 has d. Each was dead-lettered once,
    with reasons "timeout" (a, d), "ValueError: x" (b) and "timeout" (c)."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t", partitions=2)
        opened.append("t", 0, [b"a", b"b", b"c"])
        opened.append("t", 1, [b"d"])
        worker = opened.queue("w", "t", max_deliveries=1)
        for message in worker.receive(max_messages=10):
            message.nack(delay_s=0, reason="ValueError: x" if message.value == b"b"
                         else "timeout")
        assert worker.receive(max_messages=10) == []
        worker.close()
        yield opened


def states(log) -> list[tuple[int, int, bytes, str]]:
    return [(x.partition, x.offset, x.record.value, x.state) for x in log.dead_letters("t.dlq")]


def test_letters_name_their_origin_and_start_pending(log):
    letters = log.dead_letters("t.dlq")
    assert [(x.partition, x.offset, x.origin_topic, x.origin_partition, x.origin_offset,
             x.delivery_count, x.reason, x.state) for x in letters] == [
        (0, 0, "t", 0, 0, 1, "timeout", "pending"),
        (0, 1, "t", 0, 1, 1, "ValueError: x", "pending"),
        (0, 2, "t", 0, 2, 1, "timeout", "pending"),
        (1, 0, "t", 1, 0, 1, "timeout", "pending")]
    assert all(isinstance(x.last_delivery_ms, int) for x in letters)
    assert [x.offset for x in log.dead_letters("t.dlq", partition=0, reason="^Value")] == [1]


def test_redrive_marks_letters_redriven_and_moves_them_once(log):
    assert log.redrive("t.dlq", reason="timeout", partition=0) == 2
    assert [r.value for r in log.read("t", 0, 3)] == [b"a", b"c"]
    assert states(log) == [(0, 0, b"a", "redriven"), (0, 1, b"b", "pending"),
                           (0, 2, b"c", "redriven"), (1, 0, b"d", "pending")]
    assert [x.offset for x in log.dead_letters("t.dlq", pending_only=True)] == [1, 0]
    assert log.redrive("t.dlq", reason="timeout", partition=0) == 0
    assert log.redrive("t.dlq") == 2
    assert log.redrive("t.dlq") == 0


def test_the_marks_of_redrives_are_not_listed_as_a_group(log):
    log.redrive("t.dlq")
    assert log.list_groups() == ["w"]


def test_redrive_to_another_topic(log):
    log.create_topic("retry")
    assert log.redrive("t.dlq", to="retry") == 4
    assert sorted(r.value for r in log.read("retry", 0, 0)) == [b"a", b"b", b"c", b"d"]
    assert all(not k.startswith("dlq.") for r in log.read("retry", 0, 0) for k in r.headers)
    assert log.end_offset("t", 0) == 3  # nothing went back to t


def test_purge_gives_letters_up_for_good(log):
    assert log.purge_dead_letters("t.dlq", reason="ValueError") == 1
    assert log.redrive("t.dlq") == 3
    assert [x.state for x in log.dead_letters("t.dlq")] == [
        "redriven", "purged", "redriven", "redriven"]
    assert log.purge_dead_letters("t.dlq") == 0


def test_dry_runs_count_and_write_nothing(log, log_dir):
    before = snapshot(log_dir)
    assert log.redrive("t.dlq", dry_run=True) == 4
    assert log.redrive("t.dlq", offsets=[0], dry_run=True) == 2  # offset 0 of each partition
    assert log.purge_dead_letters("t.dlq", partition=1, dry_run=True) == 1
    assert snapshot(log_dir) == before


def test_bad_input_writes_nothing(log, log_dir):
    log.create_topic("plain")
    log.append("plain", 0, [b"not a letter"])
    before = snapshot(log_dir)
    with pytest.raises(ConfigError, match="not a dead-letter topic"):
        log.redrive("plain")
    with pytest.raises(ConfigError, match="not a dead-letter topic"):
        log.purge_dead_letters("plain")
    with pytest.raises(ConfigError, match="not a dead-letter topic"):
        log.dead_letters("plain")
    with pytest.raises(ConfigError, match="regular expression"):
        log.redrive("t.dlq", reason="(")
    with pytest.raises(UnknownTopicError):
        log.redrive("t.dlq", to="nope")
    with pytest.raises(UnknownPartitionError):
        log.redrive("t.dlq", partition=7)
    with pytest.raises(ConfigError):
        log.purge_dead_letters("t.dlq", partition=-1)
    assert snapshot(log_dir) == before
    assert "mqlog-redrive" not in log.list_groups()


def test_marks_of_a_deleted_and_recreated_dead_letter_topic_are_forgotten(log):
    assert log.redrive("t.dlq") == 4
    log.delete_topic("t.dlq")
    worker = log.queue("w2", "t", max_deliveries=1)
    for message in worker.receive(max_messages=1):
        message.nack(delay_s=0, reason="again")
    worker.receive(max_messages=10)
    worker.close()
    assert [x.state for x in log.dead_letters("t.dlq")] == ["pending"]


def test_letters_with_a_time_to_live_are_redriven(log, clock):
    """A redrive that ran as a queue group dropped letters whose mqlog.expires_at
    had passed, instead of moving them."""
    log.create_topic("ttl")
    log.producer().send("ttl", b"late", ttl_s=1).result()
    worker = log.queue("w3", "ttl", max_deliveries=1)
    [message] = worker.receive()
    message.nack(delay_s=0)
    assert worker.receive() == []
    worker.close()
    clock.advance(5_000)
    assert log.redrive("ttl.dlq") == 1
    assert [r.value for r in log.read("ttl", 0, 1)] == [b"late"]
