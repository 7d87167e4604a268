"""The tables every handler shares: error codes, topic config names, address rules."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from mqlog import errors
from mqlog.errors import ConfigError
from mqlog.logstore import TopicConfig
from mqlog.server._address import is_loopback, parse_address
from mqlog.server.kafka._errors import error_code
from mqlog.server.kafka._topic_configs import checked_config, kafka_values, topic_options


@pytest.mark.parametrize(("error", "code"), [
    (errors.UnknownTopicError("t"), ErrorCode.unknown_topic_or_partition),
    (errors.TopicExistsError("t"), ErrorCode.topic_already_exists),
    (errors.UnknownMemberError("m"), ErrorCode.unknown_member_id),  # before CommitFailedError
    (errors.IllegalGenerationError("g"), ErrorCode.illegal_generation),
    (errors.CommitFailedError("c"), ErrorCode.rebalance_in_progress),
    (errors.InvalidProducerEpochError("e"), ErrorCode.invalid_producer_epoch),
    (errors.ProducerSequenceError("s"), ErrorCode.out_of_order_sequence_number),
    (errors.MqlogError("other"), ErrorCode.unknown_server_error),
    (RuntimeError("a bug"), ErrorCode.unknown_server_error),
])
def test_the_most_specific_error_code_wins(error: BaseException, code: ErrorCode) -> None:
    assert error_code(error) == code


def test_every_topic_setting_round_trips_under_its_kafka_name() -> None:
    config = TopicConfig(retention_ms=5000, retention_bytes=None, cleanup_policy="compact",
                         durability="always", min_cleanable_dirty_ratio=0.25,
                         message_ttl_ms=1000, dead_letter_expired=True)
    pairs = [(name, value) for _, name, value in kafka_values(config)]
    assert checked_config(TopicConfig(), topic_options(pairs)) == config
    values = dict(pairs)
    assert (values["retention.ms"], values["retention.bytes"]) == ("5000", "-1")
    assert values["mqlog.dead.letter.expired"] == "true"


@pytest.mark.parametrize(("configs", "message"), [
    ([("min.insync.replicas", "2")], "unknown topic config 'min.insync.replicas'"),
    ([("retention.ms", "soon")], "not an integer"),
    ([("mqlog.durability", "sometimes")], "one of none, interval, always"),
    ([("mqlog.dead.letter.expired", "yes")], "not true or false"),
])
def test_bad_configs_are_config_errors_naming_them(configs: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        checked_config(TopicConfig(), topic_options(configs))


def test_a_value_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="segment_bytes"):
        checked_config(TopicConfig(), topic_options([("segment.bytes", "10")]))


def test_compact_delete_is_compact_and_null_keeps_the_default() -> None:
    assert topic_options([("cleanup.policy", "compact,delete"), ("retention.ms", None)]) == {
        "cleanup_policy": "compact"}


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:9092", ("127.0.0.1", 9092)),
    ("[::1]:0", ("::1", 0)),
    ("localhost:1", ("localhost", 1)),
])
def test_addresses_parse(text: str, parsed: tuple[str, int]) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["9092", ":9092", "host:", "host:-1", "host:65536", "h:x"])
def test_bad_addresses_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(text)


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.5.6.7", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "example.org"]))


@pytest.mark.parametrize("bad", [
    {"max_request_bytes": 0}, {"max_connections": -1}, {"max_in_flight_per_connection": True},
    {"max_waiting_per_connection": 0}, {"idle_timeout_s": 0}, {"shutdown_timeout_s": "1"},
])
def test_limits_are_checked(bad: dict) -> None:
    from mqlog.server import KafkaLimits

    with pytest.raises(ConfigError):
        KafkaLimits(**bad)


@pytest.mark.parametrize("bad", [{"auto_create_topics": 1}, {"default_partitions": 0}])
def test_settings_are_checked(bad: dict) -> None:
    from mqlog.server import KafkaSettings

    with pytest.raises(ConfigError):
        KafkaSettings(**bad)
