"""The public names of the mqlog package and its error hierarchy."""

from __future__ import annotations

import inspect

import pytest

import mqlog
import mqlog.errors
import mqlog.log

#: The errors of the log store (other parts of mqlog add their own to mqlog.errors).
ERRORS = [
    "ConfigError",
    "CorruptRecordError",
    "InvalidTopicError",
    "LogClosedError",
    "MqlogError",
    "OffsetOutOfRangeError",
    "RecordTooLargeError",
    "TopicExistsError",
    "UnknownPartitionError",
    "UnknownTopicError",
]


def public_names(module) -> set[str]:
    """Names a star import would reasonably expose: public, not submodules."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value)
        and name not in ("annotations",)
    }


def test_all_matches_what_is_exported() -> None:
    assert len(mqlog.__all__) == len(set(mqlog.__all__))
    assert mqlog.__all__ == sorted(mqlog.__all__)
    assert set(mqlog.__all__) == public_names(mqlog)
    for name in mqlog.__all__:
        assert getattr(mqlog, name) is not None


def test_the_log_store_api_is_exported() -> None:
    assert {"Log", "PartitionDescription", "Record", "TopicConfig", "TopicDescription",
            "open"} <= set(mqlog.__all__)
    assert set(ERRORS) <= set(mqlog.__all__)
    assert mqlog.open is mqlog.log.open
    assert mqlog.__version__ == "0.1.0"


def defined_errors() -> list[str]:
    """Every exception class defined in mqlog.errors."""
    return sorted(
        name for name, value in vars(mqlog.errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
        and value.__module__ == "mqlog.errors"
    )


def test_the_log_store_errors_are_defined() -> None:
    assert set(ERRORS) <= set(defined_errors())


@pytest.mark.parametrize("name", defined_errors())
def test_every_error_is_importable_from_both_places(name: str) -> None:
    error = getattr(mqlog.errors, name)
    assert getattr(mqlog, name) is error
    assert issubclass(error, mqlog.MqlogError)
    assert issubclass(error, Exception)


@pytest.mark.parametrize("name", ERRORS)
def test_log_store_errors_are_not_retriable(name: str) -> None:
    assert getattr(mqlog, name).retriable is False


@pytest.mark.parametrize(("name", "builtin"), [
    ("ConfigError", ValueError),
    ("InvalidTopicError", ValueError),
    ("RecordTooLargeError", ValueError),
    ("UnknownTopicError", KeyError),
    ("UnknownPartitionError", KeyError),
    ("OffsetOutOfRangeError", IndexError),
])
def test_errors_are_also_the_matching_builtin(name: str, builtin: type) -> None:
    assert issubclass(getattr(mqlog, name), builtin)


@pytest.mark.parametrize("error", [mqlog.UnknownTopicError, mqlog.UnknownPartitionError])
def test_key_errors_are_not_quoted(error: type) -> None:
    assert str(error("unknown topic 'x'")) == "unknown topic 'x'"
    assert str(error()) == ""


def test_offset_out_of_range_carries_the_valid_range() -> None:
    error = mqlog.OffsetOutOfRangeError("message", offset=9, start_offset=2, end_offset=5)
    assert (str(error), error.offset, error.start_offset, error.end_offset) == ("message", 9, 2, 5)
    with pytest.raises(TypeError):
        mqlog.OffsetOutOfRangeError("message", 9, 2, 5)  # type: ignore[misc]


def test_corrupt_record_carries_where() -> None:
    error = mqlog.CorruptRecordError("bad", topic="t", partition=1, offset=7, file="/x.log")
    assert (str(error), error.topic, error.partition, error.offset, error.file) == (
        "bad", "t", 1, 7, "/x.log"
    )
