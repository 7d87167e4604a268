"""Releasing (nack) and extending messages by receipt handle (``Log.nack_receipt``,
``Log.extend_receipt``), on the fake clock: current handles change the message,
stale ones raise DeliveryLostError and change nothing."""

from __future__ import annotations

import pytest

import mqlog
from mqlog.errors import ConfigError, DeliveryLostError, UnknownGroupError


@pytest.fixture
def log(log_dir, clock):
    """A log on the fake clock with a one-partition topic ``t`` of two records."""
    with mqlog.open(log_dir, clock=clock, durability="none") as opened:
        opened.create_topic("t")
        opened.append("t", 0, [b"a", b"b"])
        yield opened


def receive_one(log, **options):
    received = log.receive_with_receipts("g", "t", visibility_s=10, **options)
    assert len(received) == 1
    return received[0]


def test_nack_makes_the_message_deliverable_after_its_delay(log, clock):
    first = receive_one(log)
    log.nack_receipt("g", first.receipt, delay_s=5, reason="busy")
    assert log.pending("g") == []  # released: held by nobody
    second = receive_one(log)  # b: a is delayed
    assert second.message.value == b"b"
    clock.advance(5_000)
    again = receive_one(log)
    assert (again.message.value, again.delivery_count) == (b"a", 2)
    with pytest.raises(DeliveryLostError, match="stale receipt"):
        log.nack_receipt("g", first.receipt, delay_s=0)  # released already


def test_nack_without_a_delay_uses_the_back_off(log, clock):
    first = receive_one(log)
    log.nack_receipt("g", first.receipt)
    assert [m.message.value for m in log.receive_with_receipts("g", "t", max_messages=2)
            ] == [b"b"]
    clock.advance(1_000)  # the first back-off is 0.5 s (+-20%)
    assert receive_one(log).message.value == b"a"


def test_nacked_past_max_deliveries_goes_to_the_dead_letters_with_its_reason(log, clock):
    for attempt in range(2):
        received = receive_one(log, max_deliveries=2)
        assert received.message.value == b"a"
        log.nack_receipt("g", received.receipt, delay_s=0, reason=f"attempt {attempt}")
    assert receive_one(log, max_deliveries=2).message.value == b"b"
    [dead] = log.read("t.dlq", 0, 0)
    assert (dead.value, dead.headers["dlq.reason"], dead.headers["dlq.delivery_count"]) == (
        b"a", b"attempt 1", b"2")


def test_extend_holds_the_message_longer_and_keeps_the_handle_current(log, clock):
    first = receive_one(log)
    clock.advance(8_000)
    log.extend_receipt("g", first.receipt, 10)
    clock.advance(8_000)  # past the first visibility, within the extension
    assert receive_one(log).message.value == b"b"
    assert log.receive_with_receipts("g", "t") == []
    log.ack_receipts("g", [first.receipt])
    assert [p.offset for p in log.pending("g")] == [1]


def test_extend_by_zero_frees_the_message_at_once(log, clock):
    first = receive_one(log)
    log.extend_receipt("g", first.receipt, 0)
    clock.advance(1)
    again = receive_one(log)
    assert (again.message.value, again.delivery_count) == (b"a", 2)


def test_stale_handles_change_nothing(log, clock):
    first = receive_one(log)
    clock.advance(11_000)  # the lock runs out and someone else takes the message
    second = receive_one(log)
    assert second.message.value == b"a" and second.receipt != first.receipt
    with pytest.raises(DeliveryLostError, match="stale receipt"):
        log.extend_receipt("g", first.receipt, 60)
    with pytest.raises(DeliveryLostError, match="stale receipt"):
        log.nack_receipt("g", first.receipt, delay_s=0, reason="late")
    [pending] = log.pending("g")
    assert (pending.delivery_count, pending.deadline_ms) == (2, log.now_ms() + 10_000)
    log.ack_receipts("g", [second.receipt])  # the current holder still acks
    with pytest.raises(DeliveryLostError):
        log.extend_receipt("g", second.receipt, 1)  # finished


def test_bad_input_is_refused_before_anything_changes(log):
    first = receive_one(log)
    with pytest.raises(ConfigError, match="not a receipt handle"):
        log.nack_receipt("g", "t:0:x")
    with pytest.raises(ConfigError):
        log.nack_receipt("g", first.receipt, delay_s=-1)
    with pytest.raises(TypeError):
        log.extend_receipt("g", first.receipt, "10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        log.nack_receipt("g", first.receipt, reason=b"x")  # type: ignore[arg-type]
    with pytest.raises(UnknownGroupError):
        log.extend_receipt("nope", first.receipt, 1)
    with pytest.raises(DeliveryLostError):  # a handle of a partition the group never saw
        log.extend_receipt("g", "t:5:0:1:1", 1)
    [pending] = log.pending("g")
    assert pending.delivery_count == 1
    log.ack_receipts("g", [first.receipt])


def test_next_ready_ms_names_the_next_delay_or_lock_to_run_out(log, clock):
    from mqlog.consumer import next_ready_ms

    assert next_ready_ms(log.engine, "g", "t") is None  # no state yet
    first = receive_one(log)  # held 10 s
    now = log.now_ms()
    assert next_ready_ms(log.engine, "g", "t") == now + 10_000 + 1
    second = receive_one(log)
    log.nack_receipt("g", second.receipt, delay_s=3)
    assert next_ready_ms(log.engine, "g", "t") == now + 3_000 + 1
    log.ack_receipts("g", [first.receipt])
    clock.advance(3_000)
    assert next_ready_ms(log.engine, "g", "t") is None  # b is ready now: nothing to wait for
    assert next_ready_ms(log.engine, "other", "t") is None
