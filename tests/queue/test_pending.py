"""Pending messages and claiming them (``Log.pending``, ``Log.pending_summary``,
``QueueConsumer.claim``), and receipt handles (``Log.receive_with_receipts``,
``Log.ack_receipts``), on the fake clock."""

from __future__ import annotations

import pytest

import mqlog
from mqlog.errors import ConfigError, DeliveryLostError, UnknownGroupError


@pytest.fixture
def log(log_dir, clock):
    """A log on the fake clock with a two-partition topic ``t`` of 3 + 2 records."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t", partitions=2)
        opened.append("t", 0, [b"a", b"b", b"c"])
        opened.append("t", 1, [b"d", b"e"])
        yield opened


def test_pending_lists_owner_idle_time_and_deliveries(log, clock):
    first = log.queue("g", "t", ack_timeout_s=60)
    second = log.queue("g", "t", ack_timeout_s=60)
    taken = first.receive(max_messages=2)
    clock.advance(5_000)
    later = second.receive(max_messages=1)
    clock.advance(1_000)
    taken[0].ack()
    pending = log.pending("g")
    assert [(p.topic, p.partition, p.offset, p.member_id, p.idle_ms, p.delivery_count)
            for p in pending] == [
        (taken[1].topic, taken[1].partition, taken[1].offset, first.member_id, 6_000, 1),
        (later[0].topic, later[0].partition, later[0].offset, second.member_id, 1_000, 1)]
    assert not any(p.lock_expired for p in pending)
    assert log.pending("g", min_idle_s=2) == pending[:1]
    assert log.pending("g", member_id=second.member_id) == pending[1:]
    assert log.pending("g", limit=1) == pending[:1]
    assert log.pending("g", topic="other") == []
    summary = log.pending_summary("g")
    assert (summary.count, summary.members, summary.oldest_idle_ms) == (
        2, {first.member_id: 1, second.member_id: 1}, 6_000)
    assert sum(p.count for p in summary.partitions) == 2


def test_pending_of_an_unknown_group_and_bad_filters(log):
    with pytest.raises(UnknownGroupError):
        log.pending("nope")
    with pytest.raises(UnknownGroupError):
        log.pending_summary("nope")
    log.queue("g", "t").close()
    with pytest.raises(ConfigError):
        log.pending("g", min_idle_s=-1)
    with pytest.raises(ConfigError):
        log.pending("g", limit=0)
    assert log.pending_summary("g").count == 0 and log.pending_summary("g").oldest_idle_ms is None


def test_claim_takes_idle_messages_counting_a_delivery(log, clock):
    slow = log.queue("g", "t", ack_timeout_s=600)
    held = slow.receive(max_messages=5)
    clock.advance(10_000)
    rescuer = log.queue("g", "t", ack_timeout_s=600, max_deliveries=5)
    assert rescuer.claim(min_idle_s=11) == []  # not idle long enough
    claimed = rescuer.claim(min_idle_s=10, max_messages=3)
    assert len(claimed) == 3 and all(m.delivery_count == 2 for m in claimed)
    assert {p.member_id for p in log.pending("g", member_id=rescuer.member_id)} == {
        rescuer.member_id}
    assert len(log.pending("g", member_id=rescuer.member_id)) == 3
    by_offset = {(m.partition, m.offset): m for m in held}
    with pytest.raises(DeliveryLostError):  # the former owner lost them
        by_offset[(claimed[0].partition, claimed[0].offset)].ack()
    for message in claimed:
        message.ack()
    assert log.pending_summary("g").count == 2


def test_claim_by_offset_and_dead_letters_past_max_deliveries(log, clock):
    slow = log.queue("g", "t", ack_timeout_s=600)
    slow.receive(max_messages=5)
    rescuer = log.queue("g", "t", max_deliveries=1)
    assert rescuer.claim(0, partition=1, offsets=[1]) == []  # a 2nd delivery: dead-lettered
    [letter] = log.read("t.dlq", 1, 0)
    assert (letter.value, letter.headers["dlq.offset"]) == (b"e", b"1")
    assert log.pending_summary("g").count == 4
    with pytest.raises(ConfigError):
        rescuer.claim(0, offsets=[-1])


def test_receipts_ack_from_anywhere_once_and_stale_ones_fail(log, clock):
    received = log.receive_with_receipts("g", "t", max_messages=2, visibility_s=10)
    assert len(received) == 2
    assert [p.member_id for p in log.pending("g")] == [0, 0]  # held by their receipts
    log.queue("g", "t").receive(max_messages=10)  # a worker does not take them
    assert len(log.pending("g", member_id=0)) == 2
    log.ack_receipts("g", [received[0].receipt])
    log.ack_receipts("g", [received[0].receipt])  # twice: still fine
    clock.advance(11_000)  # the second one's lock runs out and a worker takes it again
    log.queue("g", "t").receive(max_messages=10)
    with pytest.raises(DeliveryLostError, match="stale receipt"):
        log.ack_receipts("g", [received[1].receipt])
    with pytest.raises(ConfigError, match="not a receipt handle"):
        log.ack_receipts("g", ["t:0:x"])


def test_receipt_handles_round_trip():
    from mqlog.consumer._receipts import Receipt

    receipt = Receipt("jobs.p9", 3, 17, 2, 1_700_000_000_123)
    assert Receipt.parse(str(receipt)) == receipt
    for bad in ("", "a:b", "jobs:1:2:3", "bad/name:0:0:1:1", "jobs:-1:0:1:1"):
        with pytest.raises(ConfigError):
            Receipt.parse(bad)
