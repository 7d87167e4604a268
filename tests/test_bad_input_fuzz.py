"""Random bad arguments thrown at the public API.

Each example picks one call (``mqlog.open``, topic admin, append, reads,
producer, consumer, queue, group admin, redrive) and draws its arguments, at
least one of them from a pool of values that call must refuse: wrong types,
negative and huge numbers, NaN and infinities, bools for ints, empty strings,
path-like and over-long names. Whatever was drawn, the call must raise an
MqlogError or a TypeError (nothing else, no crash), and the log directory
(every entry's name and bytes) must be exactly as before.

Bounded in ``make test`` (EXAMPLES); ``MQLOG_SOAK=1`` runs many more.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqlog
from mqlog import MqlogError, Record, TopicPartition
from tests._directory import digest
from tests.conftest import FakeClock

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
EXAMPLES = 2000 if SOAK else 200
T = "t"
DLQ = "t.dlq"
MAX_RECORD_BYTES = 1000
class _Omit:
    """An argument left out of the call."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT = _Omit()

# -- pools of values ---------------------------------------------------------------------------

ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.binary(max_size=4), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([object(), math.nan, -math.inf, 2**63, -(2**63) - 1, datetime.timedelta(1)]),
)
BAD_NAMES = st.one_of(
    st.sampled_from(["", ".", "..", "a/b", "../x", "/abs", "a b", "é", "t\n", "x" * 250,
                     "a\0b", "~creating-x", "-/"]),
    st.text(alphabet="/\\ \0é\n", min_size=1, max_size=4),
    st.integers(), st.none(), st.binary(max_size=3), st.floats(), st.booleans(),
    st.lists(st.text(max_size=2), max_size=2), st.just(Path("x")),
)
#: Names no topic may have (the valid names of BAD_NAMES are group names, where
#: "..." style names are fine; here only names every call must refuse).
BAD_TOPIC_NAMES = st.one_of(BAD_NAMES, st.just("__x"))
NOT_AN_INT = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3),
    st.binary(max_size=2), st.lists(st.integers(), max_size=1), st.just(object()),
)
NEGATIVE = st.integers(min_value=-(2**70), max_value=-1)
HUGE = st.integers(min_value=2**63, max_value=2**80)
BAD_PARTITIONS = st.one_of(NOT_AN_INT, NEGATIVE, st.integers(min_value=2, max_value=2**70))
BAD_OFFSETS = st.one_of(NOT_AN_INT, NEGATIVE, st.integers(min_value=10**6, max_value=2**80))
BAD_COUNTS = st.one_of(NOT_AN_INT, st.integers(min_value=-(2**70), max_value=0))
BAD_SECONDS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=3), st.just(object()),
    st.sampled_from([math.nan, math.inf, -math.inf, -1, -0.5, 1e300, 2**80]),
)
BAD_TIMESTAMPS = st.one_of(
    st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.binary(max_size=2),
    st.lists(st.integers(), max_size=1), st.just(datetime.datetime(2024, 1, 1)),
)
BAD_RECORD_LISTS = st.one_of(
    st.text(max_size=3), st.binary(max_size=3), st.integers(), st.none(),
    st.dictionaries(st.binary(max_size=2), st.binary(max_size=2), max_size=2),
    st.lists(st.one_of(
        st.integers(), st.none(), st.floats(), st.lists(st.binary(max_size=1), max_size=1),
        st.just(b"x" * (MAX_RECORD_BYTES + 1)),
        st.builds(Record, NOT_AN_INT.filter(lambda v: not isinstance(v, (bytes, str)))),
        st.builds(Record, st.just(b"v"), key=st.integers()),
        st.builds(Record, st.just(b"v"), headers=st.one_of(
            st.lists(st.integers(), min_size=1, max_size=1),
            st.dictionaries(st.integers(), st.binary(), min_size=1, max_size=1),
            st.dictionaries(st.text(max_size=2), st.integers(), min_size=1, max_size=1))),
        st.builds(Record, st.just(b"v"), timestamp=st.one_of(BAD_TIMESTAMPS, HUGE)),
    ), min_size=1, max_size=3).map(lambda bad: [b"ok", *bad]),
)
#: Topic settings that are out of range, of the wrong type or unknown.
BAD_TOPIC_CONFIG = st.one_of(
    st.fixed_dictionaries({"segment_bytes": st.one_of(NOT_AN_INT, NEGATIVE, HUGE,
                                                       st.integers(0, 4095))}),
    st.fixed_dictionaries({"durability": ANYTHING.filter(
        lambda v: v not in ("none", "interval", "always"))}),
    st.fixed_dictionaries({"flush_ms": st.one_of(NOT_AN_INT, NEGATIVE, st.just(0))}),
    st.fixed_dictionaries({"retention_ms": st.one_of(NEGATIVE, st.text(max_size=2))}),
    st.fixed_dictionaries({"max_record_bytes": st.one_of(NOT_AN_INT, HUGE, st.just(0))}),
    st.fixed_dictionaries({"min_cleanable_dirty_ratio": st.one_of(
        st.floats(allow_nan=True).filter(lambda v: not 0 <= v <= 1), st.text(max_size=2))}),
    st.fixed_dictionaries({"cleanup_policy": ANYTHING.filter(
        lambda v: v not in ("delete", "compact"))}),
    st.dictionaries(st.sampled_from(["bogus", "retention", "segment"]), ANYTHING,
                    min_size=1, max_size=2),
)
BAD_CONSUMER_CONFIG = st.one_of(
    st.fixed_dictionaries({"max_poll_records": BAD_COUNTS}),
    st.fixed_dictionaries({"auto_offset_reset": ANYTHING.filter(
        lambda v: v not in ("earliest", "latest", "error"))}),
    st.fixed_dictionaries({"enable_auto_commit": ANYTHING.filter(
        lambda v: not isinstance(v, bool))}),
    st.fixed_dictionaries({"fetch_max_bytes": BAD_COUNTS}),
    st.fixed_dictionaries({"client_id": NOT_AN_INT.filter(lambda v: not isinstance(v, str))}),
    st.dictionaries(st.sampled_from(["bogus", "group_id"]), ANYTHING, min_size=1, max_size=1),
)
BAD_PRODUCER_CONFIG = st.one_of(
    st.fixed_dictionaries({"linger_ms": st.one_of(NOT_AN_INT, NEGATIVE)}),
    st.fixed_dictionaries({"batch_bytes": st.one_of(NOT_AN_INT, NEGATIVE)}),
    st.fixed_dictionaries({"idempotent": ANYTHING.filter(lambda v: not isinstance(v, bool))}),
    st.fixed_dictionaries({"partitioner": ANYTHING.filter(lambda v: v is not None)}),
    st.dictionaries(st.sampled_from(["bogus", "acks"]), ANYTHING, min_size=1, max_size=1),
)


def draw_arguments(data: st.DataObject, spec: dict[str, tuple]) -> dict:
    """One value per argument of ``spec`` ({name: (valid strategy, bad strategy)}),
    at least one of them bad; OMIT values are left out."""
    bad = data.draw(st.sets(st.sampled_from(sorted(spec)), min_size=1), label="bad")
    drawn = {name: data.draw(spec[name][1] if name in bad else spec[name][0], label=name)
             for name in spec}
    return {name: value for name, value in drawn.items() if value is not OMIT}


def keep(value: object) -> st.SearchStrategy:
    return st.just(value)


def omitted_or(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just(OMIT), strategy)


# -- the calls ---------------------------------------------------------------------------------


def create_topic(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "name": (keep("fresh"), BAD_TOPIC_NAMES),
        "partitions": (keep(1), st.one_of(NOT_AN_INT, NEGATIVE, st.just(0),
                                          st.integers(10_001, 2**70))),
        "config": (keep({}), BAD_TOPIC_CONFIG),
    })
    log.create_topic(args["name"], args["partitions"], **args["config"])


def alter_topic(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "name": (keep(T), st.one_of(BAD_TOPIC_NAMES, st.just("nope"))),
        "partitions": (keep(None), st.one_of(NOT_AN_INT.filter(lambda v: v is not None),
                                             NEGATIVE, st.just(1), st.integers(10_001, 2**70))),
        "config": (keep({}), BAD_TOPIC_CONFIG),
    })
    log.alter_topic(args["name"], args["partitions"], **args["config"])


def append(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "topic": (keep(T), st.one_of(BAD_TOPIC_NAMES, st.just("nope"))),
        "partition": (keep(0), BAD_PARTITIONS),
        "records": (keep([b"x"]), BAD_RECORD_LISTS),
    })
    log.append(args["topic"], args["partition"], args["records"])


def read(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "topic": (keep(T), st.one_of(BAD_TOPIC_NAMES, st.just("nope"))),
        "partition": (keep(0), BAD_PARTITIONS),
        "offset": (keep(0), BAD_OFFSETS),
        "max_records": (omitted_or(st.integers(1, 10)), BAD_COUNTS),
        "max_bytes": (omitted_or(st.integers(1, 100)), st.one_of(
            st.booleans(), st.floats(allow_nan=True), st.text(max_size=2), NEGATIVE)),
    })
    columns = data.draw(st.booleans(), label="read_columns")
    call = log.read_columns if columns else log.read
    call(args.pop("topic"), args.pop("partition"), args.pop("offset"), **args)


def offset_for_time(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "topic": (keep(T), st.one_of(BAD_TOPIC_NAMES, st.just("nope"))),
        "partition": (keep(0), BAD_PARTITIONS),
        "ts_ms": (st.integers(-(2**80), 2**80), BAD_TIMESTAMPS),
    })
    log.offset_for_time(args["topic"], args["partition"], args["ts_ms"])


def producer(log: mqlog.Log, data: st.DataObject) -> None:
    log.producer(**data.draw(BAD_PRODUCER_CONFIG, label="config")).close()


def send(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "topic": (keep(T), st.one_of(BAD_TOPIC_NAMES, st.just("nope"))),
        "value": (keep(b"v"), st.one_of(
            NOT_AN_INT.filter(lambda v: not isinstance(v, (str, bytes))),
            st.just(b"x" * (MAX_RECORD_BYTES + 1)))),
        "key": (omitted_or(st.binary(max_size=3)), st.one_of(
            st.integers(), st.floats(), st.lists(st.integers(), min_size=1, max_size=1))),
        "headers": (omitted_or(keep({"h": b"v"})), st.one_of(
            st.lists(st.integers(), max_size=1), st.integers(), st.text(min_size=1, max_size=2),
            st.dictionaries(st.integers(), st.binary(), min_size=1, max_size=1),
            st.dictionaries(st.text(max_size=2), st.integers(), min_size=1, max_size=1))),
        "partition": (omitted_or(keep(1)), BAD_PARTITIONS.filter(lambda v: v is not None)),
        "timestamp": (omitted_or(keep(5)), st.one_of(BAD_TIMESTAMPS, HUGE)),
        "delay_s": (omitted_or(keep(0.5)), BAD_SECONDS.filter(lambda v: v is not None)),
        "ttl_s": (omitted_or(keep(60)), st.one_of(BAD_SECONDS.filter(lambda v: v is not None),
                                                  st.just(0))),
        "priority": (omitted_or(st.integers(0, 9)), st.one_of(
            NOT_AN_INT.filter(lambda v: v is not None and v is not False),
            st.integers(10, 2**70), NEGATIVE)),
        "on_delivery": (omitted_or(keep(print)), st.one_of(st.integers(), st.text(max_size=2))),
    })
    with log.producer() as sender:
        sender.send(args.pop("topic"), args.pop("value"), **args)


def consumer(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "group": (keep("g"), BAD_NAMES.filter(lambda v: v is not None)),
        "topics": (keep([T]), st.one_of(st.just(["nope"]), st.just([T, "a b"]),
                                        st.integers(), st.just([5]))),
        "config": (keep({}), BAD_CONSUMER_CONFIG),
    })
    log.consumer(args["group"], args["topics"], **args["config"]).close()


def consumer_calls(log: mqlog.Log, data: st.DataObject) -> None:
    """seek, seek_to_time and commit on a consumer of group g that reads t/0."""
    call = data.draw(st.sampled_from(["seek", "seek_to_time", "commit", "poll"]), label="call")
    with log.consumer("g", auto_offset_reset="earliest") as reader:
        reader.assign([TopicPartition(T, 0)])
        if call == "seek":
            args = draw_arguments(data, {
                "tp": (keep(TopicPartition(T, 0)), st.sampled_from(
                    [TopicPartition(T, 1), ("nope", 0), (T, "0"), 5, None])),
                "offset": (keep(0), st.one_of(NOT_AN_INT, NEGATIVE)),
            })
            reader.seek(args["tp"], args["offset"])
        elif call == "seek_to_time":
            reader.seek_to_time(data.draw(BAD_TIMESTAMPS, label="ts_ms"))
        elif call == "commit":
            args = draw_arguments(data, {
                "tp": (keep(TopicPartition(T, 0)), st.sampled_from(
                    [("nope", 0), (T, 9), (T, -1), (T, "0"), ("a/b", 0)])),
                "offset": (keep(1), st.one_of(NOT_AN_INT, NEGATIVE)),
            })
            reader.commit({args["tp"]: args["offset"]})
        else:
            args = draw_arguments(data, {
                "timeout": (keep(0), st.one_of(st.text(max_size=2), st.just(math.nan),
                                               st.lists(st.integers(), max_size=1))),
                "max_records": (omitted_or(keep(5)), BAD_COUNTS.filter(lambda v: v is not None)),
            })
            reader.poll(**args)


def queue(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "group": (keep("w"), BAD_NAMES),
        "topics": (keep([T]), st.one_of(st.just([]), st.just(["nope"]), st.just(["a/b"]),
                                        st.integers(), st.just([5]))),
        "ack_timeout_s": (omitted_or(keep(5)), BAD_SECONDS.filter(lambda v: v is not None)),
        "max_deliveries": (omitted_or(keep(3)), st.one_of(
            NOT_AN_INT.filter(lambda v: v is not None), st.integers(-(2**70), 0),
            st.integers(255, 2**70))),
        "dead_letter_topic": (omitted_or(keep("dead")), BAD_TOPIC_NAMES.filter(
            lambda v: v is not None)),
        "backoff": (omitted_or(keep(None)), st.one_of(st.integers(), st.text(min_size=1,
                                                                             max_size=2))),
    })
    log.queue(args.pop("group"), args.pop("topics"), **args).close()


def reset_offsets(log: mqlog.Log, data: st.DataObject) -> None:
    how = data.draw(st.sampled_from(["to", "shift_by", "by_duration"]), label="how")
    bad_how = {
        "to": st.one_of(st.text(max_size=3).filter(lambda v: v not in ("earliest", "latest")),
                        st.floats(), st.just(True), st.binary(max_size=2)),
        "shift_by": st.one_of(st.floats(), st.text(max_size=2), st.just(True)),
        "by_duration": st.one_of(st.integers(), st.text(max_size=2), st.floats()),
    }[how]
    args = draw_arguments(data, {
        "group": (st.sampled_from(["g", "q"]), BAD_NAMES),
        "topic": (keep(T), st.one_of(BAD_TOPIC_NAMES, st.just("nope"))),
        "partitions": (omitted_or(keep([0])), st.one_of(
            st.integers(), st.just([5]), st.just(["0"]), st.just([-1]), st.just([None]))),
        how: (keep({"to": "earliest", "shift_by": 1,
                    "by_duration": datetime.timedelta(seconds=1)}[how]), bad_how),
        "both": (keep(OMIT), st.just("x")),  # a second choice of to/shift_by/by_duration
    })
    if args.pop("both", None) is not None:
        args["shift_by" if how != "shift_by" else "to"] = 1 if how != "shift_by" else "latest"
    log.reset_offsets(args.pop("group"), args.pop("topic"), **args)


def group_admin(log: mqlog.Log, data: st.DataObject) -> None:
    call = data.draw(st.sampled_from([log.delete_group, log.describe_group,
                                      log.describe_queue]), label="call")
    call(data.draw(st.one_of(BAD_NAMES, st.just("nope")), label="group"))


def redrive(log: mqlog.Log, data: st.DataObject) -> None:
    args = draw_arguments(data, {
        "dlq_topic": (keep(DLQ), st.one_of(BAD_TOPIC_NAMES, st.just("nope"), st.just(T))),
        "offsets": (omitted_or(keep([0])), st.one_of(
            st.integers(), st.just(["0"]), st.just([None]), st.just([1.5]))),
        "where": (omitted_or(keep(None)), st.one_of(st.integers(), st.text(min_size=1,
                                                                           max_size=2))),
    })
    log.redrive(**args)


CALLS: list[Callable[[mqlog.Log, st.DataObject], None]] = [
    create_topic, alter_topic, append, read, offset_for_time, producer, send, consumer,
    consumer_calls, queue, reset_offsets, group_admin, redrive,
]


# -- the log and the property -------------------------------------------------------------------


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mqlog.Log]:
    """Topic t (2 partitions, records in both, small segments), its dead letters in
    t.dlq, consumer group g with a committed offset, queue group q."""
    clock = FakeClock()
    path = tmp_path_factory.mktemp("fuzz") / "log"
    with mqlog.open(path, clock=clock, durability="none", segment_bytes=64 * 1024,
                    max_record_bytes=MAX_RECORD_BYTES) as log:
        log.create_topic(T, partitions=2)
        log.append(T, 0, [b"a", Record(b"b", key=b"k", headers={"h": b"v"})])
        log.append(T, 1, [b"c"])
        with log.queue("dead-letters", T, max_deliveries=1) as worker:
            for message in worker.receive(10):
                message.nack(delay_s=0, reason="boom")
            assert worker.receive(10) == []
        with log.consumer("g") as member:
            member.assign([TopicPartition(T, 0)])
            member.commit({TopicPartition(T, 0): 1})
        with log.queue("q", T) as worker:
            worker.receive(1)[0].ack()
        for name in [*log.topics(), "__consumer_offsets"]:  # recovered and mapped: the
            for number in range(len(log.describe_topic(name).partitions)):  # first open
                log.end_offset(name, number)  # of a partition grows its files
        yield log


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_bad_arguments_raise_and_change_nothing(log: mqlog.Log, data: st.DataObject) -> None:
    call = data.draw(st.sampled_from(CALLS), label="call")
    before = digest(Path(log.path))
    with pytest.raises((MqlogError, TypeError)):
        call(log, data)
    assert digest(Path(log.path)) == before, f"{call.__name__} changed the log directory"


@settings(max_examples=EXAMPLES // 4, deadline=None)
@given(config=st.one_of(
           BAD_TOPIC_CONFIG, st.just({"create": False}),
           st.fixed_dictionaries({"clock": st.one_of(st.integers(), st.text(max_size=2))})),
       name=st.sampled_from(["new", "a/b/c", "x" * 200]),
       kind=st.sampled_from([str, Path, os.fsencode]))
def test_open_with_bad_arguments_creates_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                 config: dict, name: str, kind) -> None:
    parent = tmp_path_factory.mktemp("open")
    with pytest.raises((MqlogError, TypeError)):
        mqlog.open(kind(os.path.join(parent, name)), **config).close()
    assert list(parent.iterdir()) == []
