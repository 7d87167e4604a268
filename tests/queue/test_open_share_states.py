"""Acking by receipt handle with share states kept open (``OpenShareStates``):
the same answers as opening them per call, also after the group's files are
removed or made again by another hand."""

from __future__ import annotations

import os

import pytest

import mqlog
from mqlog.consumer import OpenShareStates, ack_receipts
from mqlog.errors import DeliveryLostError


@pytest.fixture
def log(log_dir):
    """A log with a one-partition topic ``t`` of three records."""
    with mqlog.open(log_dir, durability="none") as opened:
        opened.create_topic("t")
        opened.append("t", 0, [b"a", b"b", b"c"])
        yield opened


@pytest.fixture
def states(log):
    kept = OpenShareStates(log.engine)
    yield kept
    kept.close()


def test_acks_through_kept_states_finish_the_messages(log, states):
    first, second = log.receive_with_receipts("g", "t", max_messages=2, visibility_s=30)
    ack_receipts(log.engine, "g", [first.receipt], states=states)
    ack_receipts(log.engine, "g", [first.receipt], states=states)  # twice: still fine
    ack_receipts(log.engine, "g", [second.receipt], states=states)
    assert log.pending("g") == []
    [third] = log.receive_with_receipts("g", "t", max_messages=5)
    assert third.message.value == b"c"


def test_a_stale_handle_is_refused_with_kept_states(log, states):
    [first] = log.receive_with_receipts("g", "t", visibility_s=30)
    log.nack_receipt("g", first.receipt, delay_s=0)
    with pytest.raises(DeliveryLostError, match="stale receipt"):
        ack_receipts(log.engine, "g", [first.receipt], states=states)


def test_a_state_file_made_again_is_reopened_not_written_through_the_old_one(log, states,
                                                                             log_dir):
    [first] = log.receive_with_receipts("g", "t", visibility_s=30)
    ack_receipts(log.engine, "g", [first.receipt], states=states)  # the state is kept open
    log.delete_group("g")  # its files removed: the group starts over
    [again] = log.receive_with_receipts("g", "t", visibility_s=30)  # in a new file
    assert again.message.value == b"a"
    ack_receipts(log.engine, "g", [again.receipt], states=states)
    with mqlog.open(log_dir, durability="none") as other:  # the new file has the ack
        assert other.pending("g") == []
        assert [r.message.value for r in other.receive_with_receipts("g", "t", max_messages=5)
                ] == [b"b", b"c"]


def test_a_removed_state_file_makes_handles_stale(log, states, log_dir):
    [first] = log.receive_with_receipts("g", "t", visibility_s=30)
    ack_receipts(log.engine, "g", [first.receipt], states=states)
    [second] = log.receive_with_receipts("g", "t", visibility_s=30)
    queues = os.path.join(log_dir, "queues", "g", "t")
    os.unlink(os.path.join(queues, os.listdir(queues)[0]))
    with pytest.raises(DeliveryLostError, match="stale receipt"):
        ack_receipts(log.engine, "g", [second.receipt], states=states)
