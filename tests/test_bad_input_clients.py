"""Bad input to the clients (queues, groups, producer, redrive): the documented
error, and a log directory left exactly as it was (every entry's name and bytes,
empty directories included)."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mqlog
from mqlog import ConfigError, InvalidTopicError, Record, TopicPartition
from tests._directory import snapshot

T = "t"
SEGMENT_BYTES = 64 * 1024


@pytest.fixture
def log(log_dir: Path, clock) -> Iterator[mqlog.Log]:
    """Topic ``t`` (2 partitions, 3 records in 0), a committed consumer group ``g``
    and a queue group ``q`` that has served partition 0. Small segments: every
    snapshot reads every file."""
    with mqlog.open(log_dir, clock=clock, durability="none", segment_bytes=SEGMENT_BYTES) as log:
        log.create_topic(T, partitions=2)
        log.append(T, 0, [b"a", b"b", b"c"])
        with log.consumer("g") as consumer:
            consumer.assign([TopicPartition(T, 0)])
            consumer.commit({TopicPartition(T, 0): 1})
        with log.queue("q", T) as worker:
            [message] = worker.receive(1)
            message.ack()
        for name in [*log.topics(), "__consumer_offsets"]:  # recovered and mapped: the
            for number in range(len(log.describe_topic(name).partitions)):  # first open
                log.end_offset(name, number)  # of a partition grows its files
        yield log


def rejected(log: mqlog.Log, call: Callable[[], object], error: type[Exception],
             match: str | None = None) -> pytest.ExceptionInfo:
    """``call()`` raises ``error`` (exactly that type) and changes nothing on disk."""
    before = snapshot(Path(log.path))
    with pytest.raises(error, match=match) as info:
        call()
    assert type(info.value) is error
    assert snapshot(Path(log.path)) == before
    return info


@pytest.mark.parametrize("group", [".", "..", "", "a/b", "../x", "a b", 5, None, "x" * 250])
def test_queue_group_names_are_checked_before_anything_is_written(log, group) -> None:
    """``queue("..")`` used to write members/ and t/ into the log root."""
    rejected(log, lambda: log.queue(group, T), ConfigError, match="group name")
    assert not (Path(log.path) / "members").exists()
    assert not (Path(log.path) / T).exists()


@pytest.mark.parametrize("group", ["", ".", "..", "a/b", "../queues/q", 7])
@pytest.mark.parametrize("call", [
    lambda lg, group: lg.reset_offsets(group, T, to="earliest"),
    lambda lg, group: lg.describe_group(group),
    lambda lg, group: lg.delete_group(group),
    lambda lg, group: lg.describe_queue(group),
    lambda lg, group: lg.consumer(group),
], ids=["reset_offsets", "describe_group", "delete_group", "describe_queue", "consumer"])
def test_every_group_call_checks_the_name(log, call, group) -> None:
    rejected(log, lambda: call(log, group), ConfigError, match="group name")


def test_a_consumer_with_a_bad_group_writes_no_offsets(log) -> None:
    """The name is checked when the consumer is made, not at subscribe: an assigned
    consumer used to commit offsets under any name."""
    rejected(log, lambda: log.consumer("a/b", auto_offset_reset="earliest"), ConfigError)


def test_dead_letter_topic_is_checked_at_queue(log) -> None:
    """``dead_letter_topic="a b"`` was accepted and broke receive() later."""
    rejected(log, lambda: log.queue("w", T, dead_letter_topic="a b"), InvalidTopicError,
             match="outside")
    rejected(log, lambda: log.queue("w", T, dead_letter_topic="__dlq"), InvalidTopicError)
    rejected(log, lambda: log.queue("w", T, dead_letter_topic=5), InvalidTopicError)


@pytest.mark.parametrize(("options", "error"), [
    ({"ack_timeout_s": math.nan}, ConfigError),
    ({"ack_timeout_s": math.inf}, ConfigError),
    ({"ack_timeout_s": 1e300}, ConfigError),
    ({"ack_timeout_s": True}, ConfigError),
    ({"backoff": 5}, ConfigError),
    ({"max_deliveries": True}, ConfigError),
])
def test_queue_options_are_checked(log, options, error) -> None:
    rejected(log, lambda: log.queue("w", T, **options), error)


def test_a_queue_needs_a_topic(log) -> None:
    rejected(log, lambda: log.queue("w", []), ConfigError, match="at least one topic")
    rejected(log, lambda: log.queue("w", 5), TypeError)


@pytest.mark.parametrize(("call", "error"), [
    (lambda w: w.receive(timeout=math.nan), ConfigError),
    (lambda w: w.receive(timeout=-1), ConfigError),
    (lambda w: w.receive(timeout="1"), TypeError),
    (lambda w: w.receive(max_messages=True), ConfigError),
], ids=["timeout-nan", "timeout-negative", "timeout-str", "max-messages-bool"])
def test_receive_arguments_are_checked(log, call, error) -> None:
    with log.queue("q", T) as worker:
        rejected(log, lambda: call(worker), error)


@pytest.mark.parametrize(("delay", "error"), [
    (math.nan, ConfigError), (math.inf, ConfigError), (-1, ConfigError), ("1", TypeError),
])
def test_nack_and_extend_times_are_checked(log, delay, error) -> None:
    with log.queue("q", T) as worker:
        [message] = worker.receive(1)
        rejected(log, lambda: message.nack(delay_s=delay), error)
        rejected(log, lambda: message.extend(delay), error)
        message.ack()


@pytest.mark.parametrize(("moment", "error"), [
    ("now", TypeError), (1.5, TypeError), (None, TypeError), (True, TypeError),
    (datetime.datetime(2024, 1, 1), TypeError),
])
def test_offset_for_time_takes_an_integer(log, moment, error) -> None:
    """``offset_for_time("now")`` leaked numpy's UFuncTypeError."""
    rejected(log, lambda: log.offset_for_time(T, 0, moment), error, match="timestamp")
    with log.consumer(auto_offset_reset="earliest") as reader:
        reader.assign([TopicPartition(T, 0)])
        rejected(log, lambda: reader.seek_to_time(moment), error, match="timestamp")


def test_offset_for_time_far_away_is_the_start_or_the_end(log) -> None:
    assert log.offset_for_time(T, 0, -(2**70)) == 0
    assert log.offset_for_time(T, 0, 2**70) == 3
    import numpy as np

    assert log.offset_for_time(T, 0, np.int64(0)) == 0


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"delay_s": "x"}, TypeError, "delay_s must be a number"),
    ({"delay_s": None, "ttl_s": "x"}, TypeError, "ttl_s must be a number"),
    ({"delay_s": True}, TypeError, "delay_s"),
    ({"delay_s": -1}, ConfigError, "delay_s must be a number >= 0"),
    ({"delay_s": math.nan}, ConfigError, "delay_s"),
    ({"delay_s": math.inf}, ConfigError, "delay_s"),
    ({"ttl_s": 0}, ConfigError, "ttl_s must be a number > 0"),
    ({"ttl_s": math.nan}, ConfigError, "ttl_s"),
    ({"deliver_at": 2**63}, ConfigError, "deliver_at"),
    ({"deliver_at": "soon"}, TypeError, "deliver_at"),
    ({"timestamp": 2**64}, ConfigError, "timestamp"),
    ({"priority": 10}, ConfigError, "priority"),
    ({"priority": "1"}, ConfigError, "priority"),
    ({"headers": []}, TypeError, "headers"),
    ({"on_delivery": 5}, TypeError, "on_delivery"),
])
def test_send_arguments_are_checked(log, options, error, match) -> None:
    """``send(delay_s="x")`` raised ValueError where the docs promise TypeError."""
    with log.producer() as producer:
        rejected(log, lambda: producer.send(T, b"x", **options), error, match=match)
        assert producer.flush() == 0
    assert log.topics() == ["__consumer_offsets", T]


@pytest.mark.parametrize(("options", "error"), [
    ({"value": 5}, TypeError),
    ({"partition": 7}, mqlog.UnknownPartitionError),
    ({"value": b"x" * (2 * 1024 * 1024)}, mqlog.RecordTooLargeError),
])
def test_a_rejected_send_creates_no_priority_lane(log, options, error) -> None:
    arguments = {"value": b"x", **options}
    with log.producer() as producer:
        rejected(log, lambda: producer.send(T, arguments.pop("value"), priority=3, **arguments),
                 error)
    assert log.topics() == ["__consumer_offsets", T]


def test_send_many_checks_its_arguments(log) -> None:
    with log.producer() as producer:
        rejected(log, lambda: producer.send_many(T, b"abc"), TypeError)
        rejected(log, lambda: producer.send_many(T, [b"a"], keys=[b"k", b"l"]), ConfigError)


def test_redrive_of_a_topic_that_is_not_a_dead_letter_topic(log) -> None:
    """``redrive("t")`` raised a bare KeyError after creating the mqlog-redrive group."""
    info = rejected(log, lambda: log.redrive(T), ConfigError,
                    match="'t' is not a dead-letter topic")
    assert "has no dlq.topic" in str(info.value)
    assert "mqlog-redrive" not in log.list_groups()


def test_redrive_of_an_empty_topic_moves_nothing_and_writes_nothing(log) -> None:
    log.create_topic("empty")
    log.end_offset("empty", 0)  # opened (its files grown) before the snapshot
    before = snapshot(Path(log.path))
    assert log.redrive("empty") == 0
    assert snapshot(Path(log.path)) == before


@pytest.mark.parametrize(("arguments", "error"), [
    ({"dlq_topic": "nope"}, mqlog.UnknownTopicError),
    ({"dlq_topic": "a b"}, InvalidTopicError),
    ({"offsets": ["1"]}, TypeError),
    ({"offsets": 5}, TypeError),
    ({"where": 5}, TypeError),
])
def test_redrive_arguments_are_checked(log, arguments, error) -> None:
    arguments = {"dlq_topic": T, **arguments}
    rejected(log, lambda: log.redrive(**arguments), error)


def test_redrive_leaves_records_without_an_origin(log) -> None:
    """A record appended to a dead-letter topic by hand (no dlq.* headers) stays."""
    with log.queue("w", T, max_deliveries=1) as worker:
        for message in worker.receive(10):
            message.nack(delay_s=0)
        assert worker.receive(10) == []
    dlq = f"{T}.dlq"
    log.append(dlq, 0, [Record(b"by hand", headers={"dlq.topic": b"a b"})])
    end = log.end_offset(T, 0)
    assert log.redrive(dlq) == 3
    assert log.end_offset(T, 0) == end + 3
    assert [r.value for r in log.read(dlq, 0, 3)] == [b"by hand"]


@pytest.mark.parametrize(("path", "error"), [("", ConfigError), (b"log", TypeError)])
def test_open_refuses_an_empty_or_bytes_path(tmp_path: Path, monkeypatch, path,
                                            error) -> None:
    """``open("")`` opened the current directory; ``open(b"log")`` created it, then
    failed."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error):
        mqlog.open(path)
    assert list(tmp_path.iterdir()) == []


def test_reset_offsets_to_a_moment_that_is_not_a_time(log, monkeypatch) -> None:
    """A naive datetime is local time: datetime.min east of UTC is before year 1."""
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    try:
        rejected(log, lambda: log.reset_offsets("g", T, to=datetime.datetime.min), ConfigError)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_request_and_responder_check_before_writing(log) -> None:
    """A request to an unknown topic used to create ``__replies`` first."""
    rejected(log, lambda: log.request("nope", b"x", timeout=1), mqlog.UnknownTopicError)
    rejected(log, lambda: log.request(T, 5, timeout=1), TypeError)
    rejected(log, lambda: log.request(T, b"x", timeout=math.nan), ConfigError)
    rejected(log, lambda: log.responder(T, handler=5), TypeError)
    rejected(log, lambda: log.responder("nope", handler=bytes), mqlog.UnknownTopicError)
