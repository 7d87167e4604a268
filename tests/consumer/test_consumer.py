"""Consumer without a group: assignment, positions, resets, fetching, waiting, config, states."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

import mqlog
from mqlog import Record
from mqlog.consumer import ConsumerConfig, TopicPartition
from mqlog.errors import (
    ConfigError,
    IllegalStateError,
    LogClosedError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    UnknownTopicError,
)
from mqlog.logstore._record import Message

from . import described, fill, tps, value_of

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
TP2 = TopicPartition("t", 2)
#: Upper bound for "returned promptly" on a loaded machine: far below the timeouts used.
PROMPT_S = 3.0
DOCS = Path(__file__).resolve().parents[2] / "docs" / "consumers.md"


@pytest.fixture
def log(log_dir):
    with mqlog.open(log_dir, durability="none") as opened:
        opened.create_topic("t", partitions=3)
        yield opened


def reader(log: mqlog.Log, *partitions: TopicPartition, **config):
    """A group-less consumer assigned ``partitions`` (earliest unless told)."""
    config.setdefault("auto_offset_reset", "earliest")
    consumer = log.consumer(**config)
    consumer.assign(partitions)
    return consumer


# -- assignment and fetching ------------------------------------------------------------------


def test_poll_returns_messages_of_assigned_partitions_only(log):
    for partition in range(3):
        fill(log, "t", partition, 3)
    consumer = reader(log, TP0, TP2)
    assert consumer.assignment() == {TP0, TP2}
    messages = consumer.poll()
    assert all(type(m) is Message and m.topic == "t" for m in messages)
    assert described(messages) == [(p, o, value_of(p, o)) for p in (0, 2) for o in range(3)]
    assert consumer.poll() == []
    assert (consumer.position(TP0), consumer.position(TP2)) == (3, 3)


def test_auto_commit_without_a_group_is_skipped_as_on_close(log):
    """Positions of a consumer without a group have nowhere to be committed: polls
    past the auto-commit interval return records as usual (they used to fail)."""
    fill(log, "t", 0, 2)
    consumer = log.consumer(enable_auto_commit=True, auto_commit_interval_ms=1,
                            auto_offset_reset="earliest", max_poll_records=1)
    consumer.assign([TP0])
    first = consumer.poll()
    time.sleep(0.005)  # past the 1 ms interval: the next poll is due to auto-commit
    second = consumer.poll()
    consumer.close()
    assert [m.offset for m in first + second] == [0, 1]
    assert log.list_groups() == []


def test_assign_replaces_the_assignment_and_keeps_positions_of_kept_partitions(log):
    fill(log, "t", 0, 5)
    fill(log, "t", 1, 5)
    consumer = reader(log, TP0)
    consumer.poll(max_records=2)
    consumer.assign([TP0, ("t", 1)])
    assert consumer.assignment() == {TP0, TP1}
    assert (consumer.position(TP0), consumer.position(TP1)) == (2, 0)
    consumer.assign([])
    assert consumer.assignment() == set()
    assert consumer.poll() == []


def test_assign_unknown_topic_or_partition_raises(log):
    consumer = log.consumer()
    with pytest.raises(mqlog.UnknownTopicError, match="unknown topic 'nope'"):
        consumer.assign([TopicPartition("nope", 0)])
    with pytest.raises(mqlog.UnknownPartitionError, match="has no partition 3"):
        consumer.assign([TopicPartition("t", 3)])


def test_operations_on_unassigned_partitions_raise_illegal_state(log):
    consumer = reader(log, TP0)
    message = re.escape(f"{TP1} is not assigned to this consumer")
    with pytest.raises(IllegalStateError, match=message):
        consumer.position(TP1)
    with pytest.raises(IllegalStateError, match=message):
        consumer.seek(TP1, 0)
    with pytest.raises(IllegalStateError, match=message):
        consumer.pause(TP1)
    with pytest.raises(IllegalStateError, match=message):
        consumer.seek_to_end(TP1)


# -- auto_offset_reset ---------------------------------------------------------------------------


def test_reset_earliest_starts_at_the_log_start(log):
    fill(log, "t", 0, 4)
    consumer = reader(log, TP0, auto_offset_reset="earliest")
    assert consumer.position(TP0) == 0
    assert [m.offset for m in consumer.poll()] == [0, 1, 2, 3]


def test_reset_latest_starts_at_the_end_and_sees_only_new_records(log):
    fill(log, "t", 0, 4)
    consumer = reader(log, TP0, auto_offset_reset="latest")
    assert consumer.position(TP0) == 4
    assert consumer.poll() == []
    fill(log, "t", 0, 2)
    assert described(consumer.poll()) == [(0, 4, value_of(0, 4)), (0, 5, value_of(0, 5))]


def test_reset_error_without_committed_offset_raises_no_offset(log):
    fill(log, "t", 0, 4)
    consumer = reader(log, TP0, auto_offset_reset="error")
    expected = re.escape(f"no committed offset for {TP0} in group None and "
                         "auto_offset_reset='error'")
    for call in (consumer.poll, lambda: consumer.position(TP0), consumer.lag):
        with pytest.raises(NoOffsetForPartitionError, match=expected):
            call()
    consumer.seek(TP0, 1)  # an explicit position needs no reset
    assert [m.offset for m in consumer.poll()] == [1, 2, 3]


def padded(offset: int) -> bytes:
    """A 100-byte value of t/0 at ``offset``: ten batches of ten fill several segments."""
    return value_of(0, offset).ljust(100, b".")


@pytest.fixture
def trimmed(log_dir):
    """A log where group "g" committed offset 5 of t/0 and retention then deleted every
    closed segment, so the committed offset is below the log start."""
    with mqlog.open(log_dir, durability="none") as log:
        log.create_topic("t", segment_bytes=4096)
        for first in range(0, 100, 10):
            log.append("t", 0, [padded(o) for o in range(first, first + 10)])
        committer = log.consumer("g")
        committer.assign([TP0])
        committer.commit({TP0: 5})
        committer.close()
        log.alter_topic("t", retention_bytes=0)
        assert log.enforce_retention("t") >= 1
        assert log.start_offset("t", 0) > 5
        yield log


def _poll_for_records(consumer, timeout_s: float = 5.0) -> list[Message]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = consumer.poll(timeout=0.05)
        if messages:
            return messages
    return []


def test_committed_offset_deleted_by_retention_resets_to_earliest(trimmed):
    start = trimmed.start_offset("t", 0)
    consumer = reader(trimmed, TP0, auto_offset_reset="earliest", group="g")
    assert consumer.committed(TP0) == 5
    messages = _poll_for_records(consumer)
    assert [(m.offset, m.value) for m in messages] == [(o, padded(o)) for o in range(start, 100)]


def test_committed_offset_deleted_by_retention_resets_to_latest(trimmed):
    consumer = reader(trimmed, TP0, auto_offset_reset="latest", group="g")
    assert _poll_for_records(consumer, timeout_s=0.3) == []
    assert consumer.position(TP0) == 100
    fill(trimmed, "t", 0, 1)
    assert [m.offset for m in _poll_for_records(consumer)] == [100]


def test_committed_offset_deleted_by_retention_with_reset_error_raises(trimmed):
    start = trimmed.start_offset("t", 0)
    consumer = reader(trimmed, TP0, auto_offset_reset="error", group="g")
    with pytest.raises(OffsetOutOfRangeError) as caught:
        consumer.poll()
    error = caught.value
    assert (error.offset, error.start_offset, error.end_offset) == (5, start, 100)
    assert str(error) == (f"offset 5 is out of range for t/0: valid offsets are "
                          f"{start}..100")
    assert consumer.position(TP0) == 5  # nothing moved: the caller decides


def test_poll_right_after_an_out_of_range_reset_returns_the_records_there(log):
    """Records are there at the reset position, so a poll returns them at once
    instead of waiting for its timeout (or an append) first."""
    fill(log, "t", 0, 3)
    consumer = reader(log, TP0, auto_offset_reset="earliest")
    consumer.seek(TP0, 50)
    started = time.monotonic()
    messages = consumer.poll(timeout=2.0)
    assert [m.offset for m in messages] == [0, 1, 2]
    assert time.monotonic() - started < 0.5, "poll slept although records were there"


# -- positions -------------------------------------------------------------------------------------


def test_seek_moves_the_next_offset_and_validates(log):
    fill(log, "t", 0, 6)
    consumer = reader(log, TP0)
    consumer.seek(TP0, 4)
    assert consumer.position(TP0) == 4
    assert [m.offset for m in consumer.poll()] == [4, 5]
    consumer.seek(("t", 0), 1)  # plain tuples name partitions too
    assert [m.offset for m in consumer.poll(max_records=2)] == [1, 2]
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=re.escape(f"offset must be an int >= 0, not {bad!r}")):
            consumer.seek(TP0, bad)
    assert consumer.position(TP0) == 3


def test_seek_to_beginning_and_end_for_named_or_all_partitions(log):
    fill(log, "t", 0, 5)
    fill(log, "t", 1, 7)
    consumer = reader(log, TP0, TP1)
    consumer.seek_to_end()
    assert (consumer.position(TP0), consumer.position(TP1)) == (5, 7)
    assert consumer.poll() == []
    consumer.seek_to_beginning(TP1)
    assert (consumer.position(TP0), consumer.position(TP1)) == (5, 0)
    assert [(m.partition, m.offset) for m in consumer.poll()] == [(1, o) for o in range(7)]
    consumer.seek_to_beginning()
    assert (consumer.position(TP0), consumer.position(TP1)) == (0, 0)
    consumer.seek_to_end(TP0)
    assert (consumer.position(TP0), consumer.position(TP1)) == (5, 0)


def test_seek_past_the_end_applies_auto_offset_reset_on_fetch(log):
    fill(log, "t", 0, 3)
    consumer = reader(log, TP0, auto_offset_reset="latest")
    consumer.seek(TP0, 99)
    assert consumer.position(TP0) == 99  # checked on fetch, as documented
    consumer.poll()
    assert consumer.position(TP0) == 3


def test_seek_to_time_finds_the_first_record_at_or_after(log):
    for partition, base in ((0, 1000), (1, 1500)):
        log.append("t", partition, [Record(b"v%d" % i, timestamp=base + 1000 * i)
                                    for i in range(5)])
    consumer = reader(log, TP0, TP1)
    consumer.seek_to_time(2500)  # every partition
    assert (consumer.position(TP0), consumer.position(TP1)) == (2, 1)
    consumer.seek_to_time(3000, TP1)
    assert (consumer.position(TP0), consumer.position(TP1)) == (2, 2)
    consumer.seek_to_time(10**13)
    assert (consumer.position(TP0), consumer.position(TP1)) == (5, 5)
    consumer.seek_to_time(0, TP0)
    assert [m.timestamp for m in consumer.poll()] == [1000, 2000, 3000, 4000, 5000]


def test_pause_stops_fetching_and_resume_restarts(log):
    fill(log, "t", 0, 2)
    fill(log, "t", 1, 2)
    consumer = reader(log, TP0, TP1)
    consumer.pause(TP0)
    assert consumer.paused() == {TP0}
    assert [(m.partition, m.offset) for m in consumer.poll()] == [(1, 0), (1, 1)]
    assert consumer.poll() == []
    assert consumer.position(TP0) == 0
    consumer.pause()
    assert consumer.paused() == {TP0, TP1}
    fill(log, "t", 1, 1)
    assert consumer.poll() == []
    consumer.resume(TP0)
    assert consumer.paused() == {TP1}
    assert [(m.partition, m.offset) for m in consumer.poll()] == [(0, 0), (0, 1)]
    consumer.resume()
    assert consumer.paused() == set()
    assert [(m.partition, m.offset) for m in consumer.poll()] == [(1, 2)]


def test_lag_is_end_minus_position_per_partition(log):
    fill(log, "t", 0, 10)
    fill(log, "t", 1, 4)
    consumer = reader(log, TP0, TP1, TP2)
    assert consumer.lag() == {TP0: 10, TP1: 4, TP2: 0}
    consumer.poll(max_records=3)
    assert consumer.lag() == {TP0: 7, TP1: 4, TP2: 0}
    fill(log, "t", 2, 5)
    consumer.seek_to_end(TP0)
    assert consumer.lag() == {TP0: 0, TP1: 4, TP2: 5}


# -- how much one poll returns ---------------------------------------------------------------------


def test_zero_copy_returns_memoryviews_of_the_same_bytes(log):
    log.append("t", 0, [Record(b"value-%d" % i, key=b"key-%d" % i) for i in range(3)])
    messages = reader(log, TP0, zero_copy=True).poll()
    assert all(isinstance(m.value, memoryview) and isinstance(m.key, memoryview)
               for m in messages)
    assert [(bytes(m.key), bytes(m.value)) for m in messages] == [
        (b"key-%d" % i, b"value-%d" % i) for i in range(3)]
    copied = reader(log, TP0).poll()
    assert [type(m.value) for m in copied] == [bytes] * 3


@pytest.mark.parametrize("bad", [0, -1])
def test_poll_rejects_a_max_records_below_one(log, bad):
    fill(log, "t", 0, 2)
    consumer = reader(log, TP0)
    with pytest.raises(ValueError, match="max_records"):
        consumer.poll(max_records=bad)
    assert [m.offset for m in consumer.poll()] == [0, 1]


def test_max_poll_records_bounds_each_poll_and_poll_can_lower_it(log):
    fill(log, "t", 0, 12)
    consumer = reader(log, TP0, max_poll_records=5)
    assert [m.offset for m in consumer.poll()] == [0, 1, 2, 3, 4]
    assert [m.offset for m in consumer.poll(max_records=2)] == [5, 6]
    assert [m.offset for m in consumer.poll(max_records=100)] == [7, 8, 9, 10, 11]


def test_partitions_are_served_in_turn(log):
    for partition in range(3):
        fill(log, "t", partition, 10)
    consumer = reader(log, TP0, TP1, TP2, max_poll_records=4)
    batches = [[(m.partition, m.offset) for m in consumer.poll()] for _ in range(9)]
    assert batches == [
        [(0, 0), (0, 1), (0, 2), (0, 3)],
        [(1, 0), (1, 1), (1, 2), (1, 3)],
        [(2, 0), (2, 1), (2, 2), (2, 3)],
        [(0, 4), (0, 5), (0, 6), (0, 7)],
        [(1, 4), (1, 5), (1, 6), (1, 7)],
        [(2, 4), (2, 5), (2, 6), (2, 7)],
        [(0, 8), (0, 9), (1, 8), (1, 9)],
        [(2, 8), (2, 9)],
        [],
    ]


def test_a_busy_partition_does_not_starve_the_others(log):
    fill(log, "t", 0, 1000)
    fill(log, "t", 1, 3)
    consumer = reader(log, TP0, TP1, max_poll_records=50)
    first, second = consumer.poll(), consumer.poll()
    assert {m.partition for m in first} == {0}
    assert [(m.partition, m.offset) for m in second] == [(1, 0), (1, 1), (1, 2)] + [
        (0, o) for o in range(50, 97)]


def test_fetch_max_bytes_bounds_one_poll_across_partitions(log):
    for partition in range(3):
        log.append("t", partition, [bytes(100)] * 5)
    consumer = reader(log, TP0, TP1, TP2, fetch_max_bytes=250)
    seen = 0
    while seen < 15:
        messages = consumer.poll()
        size = sum(len(m.value) for m in messages)
        assert len(messages) == 1 or size <= 250, (
            f"one poll returned {size} bytes > fetch_max_bytes=250: "
            f"{[(m.partition, m.offset) for m in messages]}")
        seen += len(messages)


def test_fetch_max_bytes_counts_keys_and_headers(log):
    log.append("t", 0, [Record(bytes(50), key=bytes(30), headers={"h": bytes(10)})] * 4)
    consumer = reader(log, TP0, fetch_max_bytes=250)
    assert [m.offset for m in consumer.poll()] == [0, 1]


def test_a_record_larger_than_fetch_max_bytes_is_still_returned(log):
    log.append("t", 0, [bytes(1000), b"small"])
    consumer = reader(log, TP0, fetch_max_bytes=10)
    assert [len(m.value) for m in consumer.poll()] == [1000]
    assert [m.value for m in consumer.poll()] == [b"small"]


# -- waiting ---------------------------------------------------------------------------------------


def test_poll_waits_and_wakes_when_another_thread_appends(log):
    consumer = reader(log, TP1, auto_offset_reset="latest")
    assert consumer.poll() == []
    timer = threading.Timer(0.2, lambda: fill(log, "t", 1, 1))
    timer.start()
    try:
        started = time.monotonic()
        messages = consumer.poll(timeout=30.0)
        waited = time.monotonic() - started
    finally:
        timer.join()
    assert described(messages) == [(1, 0, value_of(1, 0))]
    assert waited < PROMPT_S, f"poll returned {waited:.2f} s after being woken"


def test_poll_returns_empty_after_its_timeout(log):
    consumer = reader(log, TP0)
    started = time.monotonic()
    assert consumer.poll(timeout=0.5) == []
    waited = time.monotonic() - started
    assert 0.45 <= waited < 0.5 + PROMPT_S


def test_an_append_to_an_unassigned_partition_does_not_end_the_wait(log):
    consumer = reader(log, TP0)
    timer = threading.Timer(0.1, lambda: fill(log, "t", 1, 1))
    timer.start()
    started = time.monotonic()
    try:
        assert consumer.poll(timeout=0.6) == []
    finally:
        timer.join()
    assert time.monotonic() - started >= 0.55


def test_iteration_yields_everything_then_stops_after_consumer_timeout(log):
    fill(log, "t", 0, 7)
    consumer = reader(log, TP0, consumer_timeout_ms=300, max_poll_records=3)
    started = time.monotonic()
    offsets = [m.offset for m in consumer]
    elapsed = time.monotonic() - started
    assert offsets == list(range(7))
    assert 0.25 <= elapsed < 0.3 + PROMPT_S
    fill(log, "t", 0, 1)
    assert [m.offset for m in consumer] == [7]  # a new iteration continues


def test_iteration_with_zero_timeout_yields_what_is_there(log):
    fill(log, "t", 2, 2)
    consumer = reader(log, TP2, consumer_timeout_ms=0)
    assert [m.offset for m in consumer] == [0, 1]


def test_close_from_another_thread_ends_a_blocked_poll(log):
    consumer = reader(log, TP0)
    outcome: list[BaseException | list] = []

    def blocked() -> None:
        try:
            outcome.append(consumer.poll(timeout=None))
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.2)
    consumer.close()
    thread.join(timeout=PROMPT_S)
    assert not thread.is_alive(), "poll(timeout=None) kept waiting after close()"
    assert len(outcome) == 1 and isinstance(outcome[0], LogClosedError)
    assert str(outcome[0]) == "consumer is closed"


# -- configuration ---------------------------------------------------------------------------------


def test_defaults(log):
    config = log.consumer().config
    assert config == ConsumerConfig(client_id=config.client_id)
    assert (config.auto_offset_reset, config.enable_auto_commit, config.auto_commit_interval_ms,
            config.max_poll_records, config.max_poll_interval_ms, config.fetch_max_bytes,
            config.assignor, config.consumer_timeout_ms, config.group_check_interval_ms) == (
        "latest", False, 5000, 500, 300_000, 50 * 1024 * 1024, "sticky", None, 100)
    assert re.fullmatch(r".+-\d+", config.client_id)


def test_unknown_setting_raises_type_error(log):
    with pytest.raises(TypeError, match="max_poll_recs"):
        log.consumer(max_poll_recs=5)


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("auto_offset_reset", "smallest",
     "auto_offset_reset must be one of earliest, latest, error, not 'smallest'"),
    ("assignor", "cooperative",
     "assignor must be one of range, roundrobin, sticky, not 'cooperative'"),
    ("enable_auto_commit", 1, "enable_auto_commit must be a bool"),
    ("client_id", 7, "client_id must be a str"),
    ("max_poll_records", 0, "max_poll_records must be a positive int, not 0"),
    ("max_poll_interval_ms", -1, "max_poll_interval_ms must be a positive int, not -1"),
    ("fetch_max_bytes", True, "fetch_max_bytes must be a positive int, not True"),
    ("auto_commit_interval_ms", "5", "auto_commit_interval_ms must be a positive int, not '5'"),
    ("group_check_interval_ms", 1.5, "group_check_interval_ms must be a positive int, not 1.5"),
    ("consumer_timeout_ms", -1, "consumer_timeout_ms must be a positive int, not -1"),
    ("zero_copy", "yes", "zero_copy must be a bool"),
])
def test_invalid_setting_raises_config_error_before_joining(log, setting, value, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        log.consumer("g", topics=["t"], **{setting: value})
    assert log.list_groups() == []


def test_every_documented_setting_is_accepted():
    """The settings table of docs/consumers.md names only real ConsumerConfig fields."""
    table = DOCS.read_text().split("| setting | default | meaning |")[2]
    documented = re.findall(r"^\| `(\w+)` \|", table.split("\n\n")[0], flags=re.MULTILINE)
    fields = set(ConsumerConfig.__dataclass_fields__)
    assert len(documented) >= 10
    assert sorted(set(documented) - fields) == []


# -- states ----------------------------------------------------------------------------------------


def test_commit_and_subscribe_without_group_raise_illegal_state(log):
    consumer = reader(log, TP0)
    with pytest.raises(IllegalStateError, match=re.escape(
            "commit needs a group: Log.consumer(group=...)")):
        consumer.commit()
    with pytest.raises(IllegalStateError, match=re.escape(
            "subscribe needs a group: Log.consumer(group=...)")):
        consumer.subscribe(["t"])
    assert consumer.committed(TP0) is None
    with pytest.raises(IllegalStateError, match="subscribe needs a group"):
        log.consumer(topics=["t"])


def test_assign_after_subscribe_and_subscribe_after_assign_raise_illegal_state(log):
    member = log.consumer("g", topics=["t"])
    try:
        with pytest.raises(IllegalStateError,
                           match=re.escape("this consumer subscribed; it cannot also assign()")):
            member.assign([TP0])
        assert member.assignment() == tps("t", 0, 1, 2)
    finally:
        member.close()
    manual = log.consumer("g2")
    manual.assign([TP0])
    with pytest.raises(IllegalStateError,
                       match=re.escape("this consumer uses assign(); it cannot also subscribe")):
        manual.subscribe(["t"])


def test_closed_consumer_raises_log_closed_error(log):
    fill(log, "t", 0, 1)
    consumer = log.consumer("g", auto_offset_reset="earliest")
    consumer.assign([TP0])
    consumer.close()
    consumer.close()  # idempotent
    calls = {
        "poll": consumer.poll,
        "commit": consumer.commit,
        "assign": lambda: consumer.assign([TP1]),
        "subscribe": lambda: consumer.subscribe(["t"]),
    }
    for name, call in calls.items():
        with pytest.raises(LogClosedError, match="^consumer is closed$"):
            call()
            pytest.fail(f"{name} on a closed consumer did not raise")
    assert list(consumer) == []  # iterating a closed consumer ends at once
    assert consumer.committed(TP0) is None


def test_context_manager_closes(log):
    with reader(log, TP0) as consumer:
        assert consumer.poll() == []
    with pytest.raises(LogClosedError):
        consumer.poll()


def test_group_consumer_with_manual_assignment_commits(log):
    fill(log, "t", 0, 5)
    consumer = reader(log, TP0, group="manual")
    assert [m.offset for m in consumer.poll(max_records=3)] == [0, 1, 2]
    assert consumer.commit() == {TP0: 3}
    assert consumer.committed(TP0) == 3
    assert consumer.commit({TP1: 1}) == {TP1: 1}  # no membership: any partition
    consumer.close()
    again = reader(log, TP0, group="manual", auto_offset_reset="latest")
    assert [m.offset for m in again.poll()] == [3, 4]


# -- columnar polls -------------------------------------------------------------------------------


def test_poll_columns_gives_one_columns_object_per_partition_and_moves_positions(log):
    for partition in range(3):
        fill(log, "t", partition, 4)
    consumer = reader(log, TP0, TP1, TP2, group="columns")
    pieces = consumer.poll_columns(max_records=10)
    assert all(type(piece) is mqlog.RecordColumns for piece in pieces)
    assert [(c.partition, c.offsets.tolist()) for c in pieces] == [
        (0, [0, 1, 2, 3]), (1, [0, 1, 2, 3]), (2, [0, 1])]  # 10 records in all
    assert [v for c in pieces for v in c.values()] == [
        value_of(p, o) for p, last in ((0, 4), (1, 4), (2, 2)) for o in range(last)]
    assert consumer.commit() == {TP0: 4, TP1: 4, TP2: 2}
    assert described(consumer.poll()) == [(2, 2, value_of(2, 2)), (2, 3, value_of(2, 3))]
    assert consumer.poll_columns() == []
    consumer.close()


def test_poll_columns_keeps_the_fetch_byte_budget_and_waits(log):
    log.append("t", 0, [bytes(100)] * 5)
    consumer = reader(log, TP0, fetch_max_bytes=250)
    assert [[len(c) for c in consumer.poll_columns()] for _ in range(3)] == [[2], [2], [1]]
    began = time.monotonic()
    assert consumer.poll_columns(timeout=0.05) == []
    assert time.monotonic() - began >= 0.05
    threading.Timer(0.05, lambda: log.append("t", 0, [b"late"])).start()
    [late] = consumer.poll_columns(timeout=PROMPT_S * 2)
    assert (late.offsets.tolist(), late.values()) == ([5], [b"late"])


def test_poll_quick_reads_only_when_the_round_does_no_group_work(log):
    consumer = log.consumer("g", auto_offset_reset="earliest", group_check_interval_ms=60_000)
    consumer.subscribe(["t"])
    assert not consumer.round_is_quick()  # its first heartbeat looks at the group
    assert consumer.poll() == []  # looked; every partition has a position now
    assert consumer.round_is_quick()
    assert consumer.poll_quick() == []
    fill(log, "t", 1, 2)
    assert described(consumer.poll_quick()) == [(1, 0, value_of(1, 0)), (1, 1, value_of(1, 1))]
    fill(log, "t", 1, 1)
    assert [c.partition for c in consumer.poll_quick(columns=True)] == [1]
    consumer.close()

    waiting = log.consumer("w", auto_offset_reset="earliest", group_check_interval_ms=60_000)
    waiting.subscribe(["t"])
    assert waiting.poll_quick() is None  # a look at the group is due: nothing done
    assert len(waiting.poll()) == 3  # what poll_quick did not take
    assert waiting.round_is_quick()
    waiting.close()


def test_a_waiting_poll_reads_a_topic_deleted_and_created_again_elsewhere(log, log_dir):
    """A consumer at the end of a partition whose topic another process deletes
    and creates again is woken, and reads the new topic (its position beyond
    the new end: auto_offset_reset applies)."""
    fill(log, "t", 0, 2)
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([TP0])
    assert len(consumer.poll(1.0)) == 2
    got: list[Message] = []
    waiting = threading.Thread(target=lambda: got.extend(consumer.poll(timeout=30.0)))
    waiting.start()
    time.sleep(0.1)
    with mqlog.open(log_dir) as other:
        other.delete_topic("t")
        other.create_topic("t", partitions=3)
        other.append("t", 0, [b"new"])
    started = time.monotonic()
    waiting.join(30.0)
    assert [m.value for m in got] == [b"new"]
    assert time.monotonic() - started < PROMPT_S


def test_a_deleted_topic_is_skipped_until_created_again(log, log_dir, caplog):
    """While an assigned partition's topic is missing, polls read the others
    (one warning), lag leaves it out and seeks in it raise UnknownTopicError;
    once a topic of that name has it again, polls read it."""
    log.create_topic("u")
    consumer = log.consumer(auto_offset_reset="earliest")
    consumer.assign([TP0, TopicPartition("u", 0)])
    with mqlog.open(log_dir) as other:
        other.delete_topic("t")
        other.append("u", 0, [b"u1"])
        assert [m.value for m in consumer.poll(1.0)] == [b"u1"]
        assert consumer.poll(0.1) == []
        assert [r.message for r in caplog.records].count(
            "t/0: its topic was deleted; polls skip it until a topic of that name has "
            "it again") == 1
        assert consumer.lag() == {TopicPartition("u", 0): 0}
        with pytest.raises(UnknownTopicError, match="'t' was deleted"):
            consumer.seek_to_end(TP0)
        other.create_topic("t")
        other.append("t", 0, [b"t1"])
    assert [m.value for m in consumer.poll(1.0)] == [b"t1"]
    assert consumer.lag() == {TP0: 0, TopicPartition("u", 0): 0}


def test_a_group_member_keeps_reading_a_topic_deleted_and_created_again(log, log_dir):
    fill(log, "t", 1, 1)
    member = log.consumer(group="g", topics=["t"], auto_offset_reset="earliest")
    got: list[Message] = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        got += member.poll(0.5)
    assert len(got) == 1
    with mqlog.open(log_dir) as other:
        other.delete_topic("t")
        other.create_topic("t", partitions=3)
        other.append("t", 2, [b"again"])
    assert [m.value for m in member.poll(PROMPT_S)] == [b"again"]
