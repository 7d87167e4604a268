"""Delayed delivery, priorities, time to live, the idempotent producer and
request/reply."""

from __future__ import annotations

import threading
import time

import pytest

import mqlog
from mqlog.errors import ProducerSequenceError
from mqlog.logstore import ProducerBatch, _partition


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log(tmp_path, clock):
    with mqlog.open(tmp_path / "log", durability="none", clock=clock) as opened:
        opened.create_topic("jobs", partitions=2)
        yield opened


def values(messages):
    return [m.value for m in messages]


def test_delayed_messages_wait_and_do_not_hold_up_later_ones(log, clock):
    with log.producer() as producer:
        producer.send("jobs", b"later", delay_s=60, partition=0)
        producer.send("jobs", b"now", partition=0)
        producer.send("jobs", b"at", deliver_at=clock.now_ms + 30_000, partition=0)
    queue = log.queue("w", ["jobs"])
    first = queue.receive(10)
    assert values(first) == [b"now"]
    first[0].ack()
    assert queue.receive(10) == []
    clock.now_ms += 30_000
    at = queue.receive(10)
    assert values(at) == [b"at"] and at[0].delivery_count == 1  # held back: not counted
    clock.now_ms += 30_000
    later = queue.receive(10)
    assert values(later) == [b"later"] and later[0].delivery_count == 1
    rows = {r.partition: r for r in log.describe_queue("w")}
    assert rows[0].in_flight == 2


def test_a_waiting_receive_wakes_when_a_delay_runs_out(tmp_path):
    with mqlog.open(tmp_path / "log", durability="none") as log:
        log.create_topic("jobs")
        with log.producer() as producer:
            producer.send("jobs", b"soon", delay_s=0.3)
        queue = log.queue("w", ["jobs"])
        began = time.monotonic()
        got = queue.receive(10, timeout=5)
        waited = time.monotonic() - began
    assert values(got) == [b"soon"]
    assert 0.2 <= waited < 2.0


def test_delay_arguments_are_checked(log):
    with log.producer() as producer:
        with pytest.raises(ValueError, match="delay_s or deliver_at, not both"):
            producer.send("jobs", b"x", delay_s=1, deliver_at=5)
        with pytest.raises(ValueError, match="delay_s must be a number >= 0"):
            producer.send("jobs", b"x", delay_s=-1)
        with pytest.raises(TypeError, match="deliver_at must be an int"):
            producer.send("jobs", b"x", deliver_at=1.5)
        with pytest.raises(ValueError, match="ttl_s must be a number > 0"):
            producer.send("jobs", b"x", ttl_s=0)
        with pytest.raises(ValueError, match="priority must be an int from 0 to 9"):
            producer.send("jobs", b"x", priority=10)


def test_higher_priorities_are_received_first(log):
    with log.producer() as producer:
        for index in range(3):
            producer.send("jobs", f"low{index}".encode(), partition=0)
        producer.send("jobs", b"mid", priority=4, partition=1)
        producer.send("jobs", b"top", priority=9, partition=0)
        producer.send("jobs", b"top2", priority=9, partition=0)
    assert {"jobs.p4", "jobs.p9"} <= set(log.topics())
    assert len(log.describe_topic("jobs.p9").partitions) == 2
    queue = log.queue("w", ["jobs"])
    assert values(queue.receive(2)) == [b"top", b"top2"]
    assert values(queue.receive(1)) == [b"mid"]
    assert values(queue.receive(10)) == [b"low0", b"low1", b"low2"]


def test_expired_messages_are_counted_not_delivered(log, clock):
    with log.producer() as producer:
        producer.send("jobs", b"quote", ttl_s=10, partition=0)
        producer.send("jobs", b"keep", partition=0)
    clock.now_ms += 11_000
    queue = log.queue("w", ["jobs"])
    assert values(queue.receive(10)) == [b"keep"]
    [row] = [r for r in log.describe_queue("w") if r.partition == 0]
    assert (row.expired, row.dead_lettered) == (1, 0)


def test_topic_ttl_can_dead_letter_expired_messages(log, clock):
    log.create_topic("quotes", message_ttl_ms=5_000, dead_letter_expired=True)
    log.append("quotes", 0, [b"old"])
    clock.now_ms += 6_000
    log.append("quotes", 0, [b"fresh"])
    queue = log.queue("w", ["quotes"])
    assert values(queue.receive(10)) == [b"fresh"]
    [dead] = log.read("quotes.dlq", 0, 0)
    assert dead.value == b"old" and dead.headers["dlq.reason"] == b"expired"
    with pytest.raises(mqlog.ConfigError, match="message_ttl_ms"):
        log.create_topic("bad", message_ttl_ms=0)


def test_idempotent_producer_writes_a_retried_batch_once(tmp_path, monkeypatch):
    with mqlog.open(tmp_path / "log", durability="always") as log:
        log.create_topic("t")
        real = _partition.Partition.flush
        failures = [1]

        def flush_failing_once(self):  # the batch is written, then the flush "fails"
            if failures[0]:
                failures[0] -= 1
                raise OSError(5, "simulated I/O error")
            return real(self)

        monkeypatch.setattr(_partition.Partition, "flush", flush_failing_once)
        with log.producer(idempotent=True) as producer:
            assert producer.send("t", b"once").result(5).offset == 0
            assert producer.send("t", b"next").result(5).offset == 1
        assert values(log.read("t", 0, 0)) == [b"once", b"next"]
        failures[0] = 1
        # Without idempotence there is no retry: the error shows.
        with log.producer() as plain, pytest.raises(OSError, match="simulated"):
            plain.send("t", b"plain").result(5)


def test_producer_sequences_are_checked(tmp_path):
    with mqlog.open(tmp_path / "log", durability="none") as log:
        log.create_topic("t")
        partition = log.engine.partition("t", 0)
        assert partition.append([b"a"], None, ProducerBatch(7, 0, 0)) == 0
        assert partition.append([b"a"], None, ProducerBatch(7, 0, 0)) == 0  # the retry
        assert partition.append([b"b", b"c"], None, ProducerBatch(7, 0, 1)) == 1
        with pytest.raises(ProducerSequenceError, match="sent sequence 5; expected 3"):
            partition.append([b"d"], None, ProducerBatch(7, 0, 5))
        assert partition.append([b"d"], None, ProducerBatch(8, 0, 3)) == 3  # new: any start
        assert values(log.read("t", 0, 0)) == [b"a", b"b", b"c", b"d"]
    with mqlog.open(tmp_path / "log", durability="none") as log:  # survives reopening
        assert log.engine.partition("t", 0).append([b"b", b"c"], None, ProducerBatch(7, 0, 1)) == 1
        assert log.append("t", 0, [b"e"], producer=ProducerBatch(7, 0, 3)) == 4
        assert log.end_offset("t", 0) == 5


def test_request_reply(log):
    log.create_topic("rpc", partitions=2)
    responder = log.responder("rpc", lambda message: message.value.upper())
    server = threading.Thread(target=responder.serve)
    server.start()
    try:
        reply = log.request("rpc", b"ping", timeout=10)
        assert reply.value == b"PING"
        assert log.request("rpc", "str", timeout=10).value == b"STR"
    finally:
        responder.stop()
        server.join()
    with pytest.raises(TimeoutError, match="no reply on 'rpc'"):
        log.request("rpc", b"nobody", timeout=0.2)


def test_a_failing_handler_is_answered_with_its_error_and_not_retried(log):
    log.create_topic("rpc")
    calls = []

    def handler(message):
        calls.append(message.delivery_count)
        raise KeyError("no such symbol")

    responder = log.responder("rpc", handler, backoff=lambda deliveries: 0.0)
    server = threading.Thread(target=responder.serve)
    server.start()
    try:
        with pytest.raises(mqlog.RemoteHandlerError) as raised:
            log.request("rpc", b"x", timeout=10)
    finally:
        responder.stop()
        server.join()
    assert (raised.value.type_name, raised.value.message) == ("KeyError", "'no such symbol'")
    assert "KeyError" in str(raised.value)
    assert calls == [1]
    assert log.describe_queue("responders")[0].lag == 0  # acked
