"""Every error raised for bad input: its type, its message, and a directory left unchanged.

Each call here is rejected; the log directory (every file's name, size and
bytes) must be exactly as it was before the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mqlog
from mqlog import (
    ConfigError,
    InvalidTopicError,
    LogClosedError,
    MqlogError,
    OffsetOutOfRangeError,
    Record,
    RecordTooLargeError,
    TopicConfig,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)

T = "t"
MAX = 1000
VALID_OPTIONS = ", ".join(sorted(field.name for field in dataclasses.fields(TopicConfig)))

Call = Callable[[mqlog.Log], object]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by relative path, with its bytes (so its size too)."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def populate(log: mqlog.Log) -> None:
    """Topic ``t``: 2 partitions, 5 records in partition 0 (rolled once), 1 in partition 1."""
    log.create_topic(T, partitions=2, segment_bytes=4096, max_record_bytes=MAX)
    log.append(T, 0, [b"a" * MAX, Record(b"b", key=b"k", headers={"h": b"v"})])
    log.append(T, 0, [b"c" * MAX, b"d" * MAX])
    log.append(T, 0, [b"e" * MAX])
    log.append(T, 1, [b"x"])
    assert log.describe_topic(T).partitions[0].segment_count == 2


@pytest.fixture
def log(log_dir: Path, clock) -> Iterator[mqlog.Log]:
    """An open log holding the populated topic ``t``."""
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        populate(log)
        yield log


def assert_rejected(log: mqlog.Log, log_dir: Path, call: Call, error: type[Exception],
                    message: str) -> pytest.ExceptionInfo:
    """``call(log)`` raises exactly ``error`` with ``message`` and changes no file."""
    before = snapshot(log_dir)
    with pytest.raises(error) as info:
        call(log)
    assert type(info.value) is error
    assert str(info.value) == message
    assert snapshot(log_dir) == before
    return info


def cases(*rows: tuple) -> list:
    """pytest.param rows (id, call, error, message) -> params with readable ids."""
    return [pytest.param(call, error, message, id=name) for name, call, error, message in rows]


# -- topic names -----------------------------------------------------------------------------

OUTSIDE = "has characters outside [a-zA-Z0-9._-]"
BAD_NAMES = [
    ("../x", f"topic name '../x' {OUTSIDE}"),
    ("a/b", f"topic name 'a/b' {OUTSIDE}"),
    ("a b", f"topic name 'a b' {OUTSIDE}"),
    ("t\n", f"topic name 't\\n' {OUTSIDE}"),
    ("é", f"topic name 'é' {OUTSIDE}"),
    ("", "topic name is empty"),
    ("a" * 250, "topic name is 250 characters long, the maximum is 249"),
    (".", "topic name cannot be '.'"),
    ("..", "topic name cannot be '..'"),
    (123, "topic name must be a str, not int"),
    (None, "topic name must be a str, not NoneType"),
    (b"t", "topic name must be a str, not bytes"),
]


@pytest.mark.parametrize(("name", "message"), BAD_NAMES + [
    ("__internal", "topic name '__internal' starts with '__', reserved for internal topics"),
])
def test_create_topic_rejects_bad_names(log: mqlog.Log, log_dir: Path, name: object,
                                        message: str) -> None:
    assert_rejected(log, log_dir, lambda lg: lg.create_topic(name), InvalidTopicError, message)
    assert log.topics() == [T]


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
@pytest.mark.parametrize("operation", [
    lambda lg, name: lg.append(name, 0, [b"x"]),
    lambda lg, name: lg.read(name, 0, 0),
    lambda lg, name: lg.describe_topic(name),
    lambda lg, name: lg.alter_topic(name, flush_ms=5),
    lambda lg, name: lg.delete_topic(name),
    lambda lg, name: lg.end_offset(name, 0),
], ids=["append", "read", "describe", "alter", "delete", "end_offset"])
def test_every_operation_rejects_bad_names(log: mqlog.Log, log_dir: Path, operation,
                                           name: object, message: str) -> None:
    assert_rejected(log, log_dir, lambda lg: operation(lg, name), InvalidTopicError, message)


# -- topics and partitions -------------------------------------------------------------------


def unknown(name: str) -> str:
    """The message of UnknownTopicError for ``name``."""
    return f"unknown topic {name!r}"


NO_PARTITION = "topic 't' has no partition {}: it has partitions 0..1"


@pytest.mark.parametrize(("call", "error", "message"), cases(
    ("exists", lambda lg: lg.create_topic(T), TopicExistsError, "topic 't' already exists"),
    ("exists-other-config", lambda lg: lg.create_topic(T, partitions=5, segment_bytes=8192),
     TopicExistsError, "topic 't' already exists"),
    ("read", lambda lg: lg.read("nope", 0, 0), UnknownTopicError, unknown("nope")),
    ("append", lambda lg: lg.append("nope", 0, [b"x"]), UnknownTopicError, unknown("nope")),
    ("iter", lambda lg: list(lg.iter("nope", 0)), UnknownTopicError, unknown("nope")),
    ("describe", lambda lg: lg.describe_topic("nope"), UnknownTopicError, unknown("nope")),
    ("alter", lambda lg: lg.alter_topic("nope", flush_ms=5), UnknownTopicError,
     unknown("nope")),
    ("delete", lambda lg: lg.delete_topic("nope"), UnknownTopicError, unknown("nope")),
    ("delete-internal", lambda lg: lg.delete_topic("__nope"), UnknownTopicError,
     unknown("__nope")),
    ("start", lambda lg: lg.start_offset("nope", 0), UnknownTopicError, unknown("nope")),
    ("end", lambda lg: lg.end_offset("nope", 0), UnknownTopicError, unknown("nope")),
    ("for-time", lambda lg: lg.offset_for_time("nope", 0, 0), UnknownTopicError,
     unknown("nope")),
    ("retention", lambda lg: lg.enforce_retention("nope"), UnknownTopicError, unknown("nope")),
    ("read-2", lambda lg: lg.read(T, 2, 0), UnknownPartitionError, NO_PARTITION.format(2)),
    ("read-minus-1", lambda lg: lg.read(T, -1, 0), UnknownPartitionError,
     NO_PARTITION.format(-1)),
    ("append-9", lambda lg: lg.append(T, 9, [b"x"]), UnknownPartitionError,
     NO_PARTITION.format(9)),
    ("end-2", lambda lg: lg.end_offset(T, 2), UnknownPartitionError, NO_PARTITION.format(2)),
    ("partition-str", lambda lg: lg.append(T, "0", [b"x"]), TypeError,
     "partition must be an int, not str"),
    ("partition-none", lambda lg: lg.read(T, None, 0), TypeError,
     "partition must be an int, not NoneType"),
    ("partition-bool", lambda lg: lg.append(T, True, [b"x"]), TypeError,
     "partition must be an int, not bool"),
    ("partition-float", lambda lg: lg.read(T, 0.0, 0), TypeError,
     "partition must be an int, not float"),
))
def test_topic_and_partition_errors(log: mqlog.Log, log_dir: Path, call: Call,
                                    error: type[Exception], message: str) -> None:
    assert_rejected(log, log_dir, call, error, message)


# -- records ---------------------------------------------------------------------------------


def too_large(index: int, size: int, parts: bool = False) -> str:
    """The message of RecordTooLargeError (``parts``: a record with a key or headers)."""
    what = " (key + headers + value)" if parts else ""
    return f"record {index} is {size} bytes{what}, over max_record_bytes={MAX}"


@pytest.mark.parametrize(("records", "error", "message"), [
    pytest.param([b"ok", b"x" * (MAX + 1), b"ok"], RecordTooLargeError, too_large(1, MAX + 1),
                 id="value"),
    pytest.param([b"ok", Record(b"x" * 990, key=b"k" * 11)], RecordTooLargeError,
                 too_large(1, MAX + 1, parts=True), id="key"),
    pytest.param([Record(b"x" * 995, headers={"h": b"v"})], RecordTooLargeError,
                 too_large(0, 995 + 6, parts=True), id="headers"),
    pytest.param([b"ok", "é" * 501], RecordTooLargeError, too_large(1, 1002, parts=True),
                 id="str-utf8"),
    pytest.param([b"ok", 5], TypeError, "record 1: value must be bytes or str, not int",
                 id="int"),
    pytest.param([{"value": b"x"}], TypeError, "record 0: value must be bytes or str, not dict",
                 id="dict"),
    pytest.param([None], TypeError, "record 0: value must be bytes or str, not NoneType",
                 id="none"),
    pytest.param([Record(None)], TypeError, "record 0: value must be bytes or str, not NoneType",
                 id="record-none"),
    pytest.param([b"ok", Record(b"v", key=5)], TypeError,
                 "record 1: key must be bytes or str, not int", id="key-int"),
    pytest.param([Record(b"v", headers=[("a", b"x")])], TypeError,
                 "record 0: headers must be a mapping of str to bytes", id="headers-list"),
    pytest.param([Record(b"v", headers=[])], TypeError,
                 "record 0: headers must be a mapping of str to bytes", id="headers-empty-list"),
    pytest.param([Record(b"v", headers={"a": 1})], TypeError,
                 "record 0: header 'a' must be bytes or str, not int", id="header-int"),
    pytest.param([Record(b"v", headers={1: b"x"})], TypeError,
                 "record 0: header names must be str, not int", id="header-name-int"),
    pytest.param([Record(b"v", timestamp="now")], TypeError,
                 "record 0: timestamp must be an int (ms since the epoch)", id="ts-str"),
    pytest.param([Record(b"v", timestamp=1.5)], TypeError,
                 "record 0: timestamp must be an int (ms since the epoch)", id="ts-float"),
    pytest.param([Record(b"v", timestamp=True)], TypeError,
                 "record 0: timestamp must be an int (ms since the epoch)", id="ts-bool"),
    pytest.param([Record(b"v", timestamp=2**63)], ConfigError,
                 "record 0: timestamp 9223372036854775808 out of range", id="ts-range"),
])
def test_bad_records_write_nothing(log: mqlog.Log, log_dir: Path, records: list,
                                   error: type[Exception], message: str) -> None:
    assert_rejected(log, log_dir, lambda lg: lg.append(T, 0, records), error, message)
    assert log.end_offset(T, 0) == 5


@pytest.mark.parametrize("records", ["abc", b"abc", {b"key": b"value"}],
                         ids=["str", "bytes", "dict"])
def test_records_must_be_a_list(log: mqlog.Log, log_dir: Path, records: object) -> None:
    """A bare value or mapping is not a list of records (a str is not a list of 1-char values)."""
    before = snapshot(log_dir)
    with pytest.raises(TypeError, match=r"\brecords\b"):
        log.append(T, 0, records)
    assert snapshot(log_dir) == before
    assert log.end_offset(T, 0) == 5


def test_a_record_of_exactly_max_record_bytes_is_accepted(log: mqlog.Log) -> None:
    assert log.append(T, 0, [b"x" * MAX, Record(b"x" * (MAX - 2), key=b"kk")]) == 5


# -- offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "offset"), [
    pytest.param(lambda lg: lg.read(T, 0, -1), -1, id="read-below"),
    pytest.param(lambda lg: lg.read(T, 0, 6), 6, id="read-beyond"),
    pytest.param(lambda lg: lg.read(T, 0, 2**70), 2**70, id="read-huge"),
    pytest.param(lambda lg: list(lg.iter(T, 0, start=6)), 6, id="iter-beyond"),
    pytest.param(lambda lg: list(lg.iter(T, 0, start=-3)), -3, id="iter-below"),
])
def test_offsets_out_of_range(log: mqlog.Log, log_dir: Path, call: Call, offset: int) -> None:
    info = assert_rejected(log, log_dir, call, OffsetOutOfRangeError,
                           f"offset {offset} is out of range for t/0: valid offsets are 0..5")
    assert (info.value.offset, info.value.start_offset, info.value.end_offset) == (offset, 0, 5)


def test_reading_at_the_end_returns_nothing(log: mqlog.Log) -> None:
    assert log.read(T, 0, 5) == []
    assert list(log.iter(T, 0, start=5)) == []


@pytest.mark.parametrize(("call", "error", "message"), cases(
    ("offset-str", lambda lg: lg.read(T, 0, "0"), TypeError, "offset must be an int, not str"),
    ("offset-bool", lambda lg: lg.read(T, 0, False), TypeError,
     "offset must be an int, not bool"),
    ("offset-float", lambda lg: lg.read(T, 0, 1.0), TypeError,
     "offset must be an int, not float"),
    ("iter-start-str", lambda lg: list(lg.iter(T, 0, start="0")), TypeError,
     "offset must be an int, not str"),
    ("max-records-0", lambda lg: lg.read(T, 0, 0, max_records=0), ConfigError,
     "max_records must be a positive int, not 0"),
    ("max-records-negative", lambda lg: lg.read(T, 0, 0, max_records=-1), ConfigError,
     "max_records must be a positive int, not -1"),
    ("max-records-str", lambda lg: lg.read(T, 0, 0, max_records="5"), TypeError,
     "max_records must be a positive int, not '5'"),
))
def test_bad_read_arguments(log: mqlog.Log, log_dir: Path, call: Call, error: type[Exception],
                            message: str) -> None:
    assert_rejected(log, log_dir, call, error, message)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"segment_bytes": 4095}, "segment_bytes must be between 4096 and 2147483647, not 4095"),
    ({"segment_bytes": 2**31},
     "segment_bytes must be between 4096 and 2147483647, not 2147483648"),
    ({"segment_bytes": "big"}, "segment_bytes must be an int, not str"),
    ({"segment_bytes": True}, "segment_bytes must be an int, not bool"),
    ({"segment_bytes": 8192.0}, "segment_bytes must be an int, not float"),
    ({"segment_ms": 0}, "segment_ms must be >= 1, not 0"),
    ({"index_interval_bytes": 0},
     "index_interval_bytes must be between 1 and 1073741824, not 0"),
    ({"retention_ms": -1}, "retention_ms must be >= 0, not -1"),
    ({"retention_bytes": -5}, "retention_bytes must be >= 0, not -5"),
    ({"max_record_bytes": 0}, "max_record_bytes must be between 1 and 67108864, not 0"),
    ({"max_record_bytes": 64 * 2**20 + 1},
     "max_record_bytes must be between 1 and 67108864, not 67108865"),
    ({"durability": "sometimes"},
     "durability must be one of none, interval, always, not 'sometimes'"),
    ({"durability": None}, "durability must be one of none, interval, always, not None"),
    ({"flush_ms": 0}, "flush_ms must be >= 1, not 0"),
    ({"partitions": 0}, "partitions must be an int from 1 to 10000, not 0"),
    ({"partitions": 10_001}, "partitions must be an int from 1 to 10000, not 10001"),
    ({"partitions": "2"}, "partitions must be an int from 1 to 10000, not '2'"),
    ({"partitions": True}, "partitions must be an int from 1 to 10000, not True"),
])
def test_bad_config_values(log: mqlog.Log, log_dir: Path, options: dict, message: str) -> None:
    assert_rejected(log, log_dir, lambda lg: lg.create_topic("new", **options), ConfigError,
                    message)
    if "partitions" not in options:
        assert_rejected(log, log_dir, lambda lg: lg.alter_topic(T, **options), ConfigError,
                        message)
    assert log.topics() == [T]


def test_partition_count_only_grows(log: mqlog.Log, log_dir: Path) -> None:
    assert_rejected(log, log_dir, lambda lg: lg.alter_topic(T, partitions=1), ConfigError,
                    "topic 't' has 2 partitions; the count can only grow")
    assert_rejected(log, log_dir, lambda lg: lg.alter_topic(T, partitions=0), ConfigError,
                    "partitions must be an int from 1 to 10000, not 0")


@pytest.mark.parametrize(("call", "message"), [
    pytest.param(lambda lg: lg.create_topic("new", bogus=1),
                 f"unknown topic option(s): bogus; valid: {VALID_OPTIONS}", id="create"),
    pytest.param(lambda lg: lg.alter_topic(T, retention=5, a=1),
                 f"unknown topic option(s): a, retention; valid: {VALID_OPTIONS}", id="alter"),
    pytest.param(lambda lg: lg.alter_topic(T, segment_bytes=8192, retentionms=5),
                 f"unknown topic option(s): retentionms; valid: {VALID_OPTIONS}",
                 id="alter-with-valid"),
])
def test_unknown_config_keys(log: mqlog.Log, log_dir: Path, call: Call, message: str) -> None:
    assert_rejected(log, log_dir, call, TypeError, message)
    assert log.describe_topic(T).config.segment_bytes == 4096


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"segment_bytes": 1}, ConfigError,
     "segment_bytes must be between 4096 and 2147483647, not 1"),
    ({"bogus": 1}, TypeError, f"unknown topic option(s): bogus; valid: {VALID_OPTIONS}"),
])
def test_open_with_bad_defaults_creates_nothing(tmp_path: Path, options: dict,
                                                error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        mqlog.open(tmp_path / "new", **options)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []


def test_open_missing_directory_without_create(tmp_path: Path) -> None:
    with pytest.raises(MqlogError) as info:
        mqlog.open(tmp_path / "missing", create=False)
    assert str(info.value) == f"log directory {tmp_path / 'missing'} does not exist"
    assert list(tmp_path.iterdir()) == []


# -- a fresh Log object ----------------------------------------------------------------------


def test_rejected_calls_leave_a_log_at_rest_unchanged(log_dir: Path, clock) -> None:
    """Open, fail, close: every file is as the last close left it."""
    with mqlog.open(log_dir, clock=clock, durability="none") as log:
        populate(log)
    before = snapshot(log_dir)
    with mqlog.open(log_dir, clock=clock) as log:
        for call, error in [
            (lambda: log.append(T, 0, [b"ok", b"x" * (MAX + 1)]), RecordTooLargeError),
            (lambda: log.append(T, 1, [b"ok", 5]), TypeError),
            (lambda: log.read(T, 0, 9), OffsetOutOfRangeError),
            (lambda: log.read(T, 3, 0), UnknownPartitionError),
            (lambda: log.create_topic(T), TopicExistsError),
            (lambda: log.alter_topic(T, segment_bytes=1), ConfigError),
        ]:
            with pytest.raises(error):
                call()
    assert snapshot(log_dir) == before


# -- closed logs -----------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    pytest.param(lambda lg: lg.create_topic("new"), id="create"),
    pytest.param(lambda lg: lg.topics(), id="topics"),
    pytest.param(lambda lg: lg.describe_topic(T), id="describe"),
    pytest.param(lambda lg: lg.alter_topic(T, flush_ms=5), id="alter"),
    pytest.param(lambda lg: lg.delete_topic(T), id="delete"),
    pytest.param(lambda lg: lg.append(T, 0, [b"x"]), id="append"),
    pytest.param(lambda lg: lg.read(T, 0, 0), id="read"),
    pytest.param(lambda lg: list(lg.iter(T, 0)), id="iter"),
    pytest.param(lambda lg: lg.offset_for_time(T, 0, 0), id="offset_for_time"),
    pytest.param(lambda lg: lg.start_offset(T, 0), id="start_offset"),
    pytest.param(lambda lg: lg.end_offset(T, 1), id="end_offset"),
    pytest.param(lambda lg: lg.enforce_retention(), id="enforce_retention"),
    pytest.param(lambda lg: lg.flush(), id="flush"),
])
def test_closed_log_raises(log_dir: Path, clock, call: Call) -> None:
    log = mqlog.open(log_dir, clock=clock)
    populate(log)
    log.close()
    assert_rejected(log, log_dir, call, LogClosedError, f"log {log_dir} is closed")


def test_iterator_of_a_closed_log_raises(log_dir: Path, clock) -> None:
    log = mqlog.open(log_dir, clock=clock)
    populate(log)
    records = log.iter(T, 0)
    assert next(records).offset == 0
    log.close()
    remaining = []
    with pytest.raises(LogClosedError):
        remaining.extend(records)  # served from what was already read, then closed
    assert [r.offset for r in remaining] == [1, 2, 3, 4][: len(remaining)]
