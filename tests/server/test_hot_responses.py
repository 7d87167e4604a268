"""The hand-written Produce and Fetch responses are byte for byte what kio's
schema-generated codec writes, in every version the server serves."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from mqlog.server.kafka import _fetch, _produce
from mqlog.server.kafka._codec import NO_THROTTLE, build, encode_response, part, response_type
from mqlog.server.kafka._hot_responses import (
    FetchedPartition,
    ProducedPartition,
    fetch_response,
    produce_response,
)

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
offsets = st.integers(-1, 2**63 - 1)
codes = st.sampled_from([0, 1, 3, 10, 56, 87])
produced = st.lists(st.tuples(names, st.lists(st.builds(
    ProducedPartition, st.integers(0, 2**31 - 1), codes, offsets, offsets,
    st.none() | names), max_size=3)), max_size=3)
fetched = st.lists(st.tuples(names, st.uuids(), st.lists(st.builds(
    FetchedPartition, st.integers(0, 2**31 - 1), codes, offsets, offsets,
    st.none() | st.lists(st.binary(max_size=100), max_size=3)), max_size=3)), max_size=3)


def kio_produce(version: int, correlation: int, topics) -> bytes:
    cls = response_type(0, version)
    body = build(cls, throttle_time=NO_THROTTLE, responses=tuple(
        build(part(cls, "TopicProduceResponse"), name=name, partition_responses=tuple(
            build(part(cls, "PartitionProduceResponse"), index=p.partition,
                  error_code=ErrorCode(p.error_code), base_offset=p.base_offset,
                  log_append_time=None,
                  log_start_offset=p.log_start_offset, record_errors=(),
                  error_message=p.error_message) for p in partitions))
        for name, partitions in topics))
    return encode_response(0, version, correlation, body)


def kio_fetch(version: int, correlation: int, topics) -> bytes:
    cls = response_type(1, version)
    return encode_response(1, version, correlation, build(
        cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none, session_id=0, node_endpoints=(),
        responses=tuple(build(part(cls, "FetchableTopicResponse"), topic=name, topic_id=identifier,
                              partitions=tuple(build(
                                  part(cls, "PartitionData"), partition_index=p.partition,
                                  error_code=ErrorCode(p.error_code),
                                  high_watermark=p.high_watermark,
                                  last_stable_offset=p.high_watermark,
                                  log_start_offset=p.log_start_offset, aborted_transactions=None,
                                  preferred_read_replica=-1,
                                  records=b"".join(p.records or ()))  # errors: empty
                                  for p in partitions))
                        for name, identifier, partitions in topics)))


@pytest.mark.parametrize("version", range(_produce.MIN_VERSION, _produce.MAX_VERSION + 1))
@settings(max_examples=40, deadline=None)
@given(topics=produced, correlation=st.integers(-2**31, 2**31 - 1))
def test_produce_responses_match_kio(version, topics, correlation):
    assert produce_response(version, correlation, topics) == kio_produce(version, correlation,
                                                                          topics)


@pytest.mark.parametrize("version", range(_fetch.MIN_VERSION, _fetch.MAX_VERSION + 1))
@settings(max_examples=40, deadline=None)
@given(topics=fetched, correlation=st.integers(-2**31, 2**31 - 1))
def test_fetch_responses_match_kio(version, topics, correlation):
    assert fetch_response(version, correlation, topics) == kio_fetch(version, correlation, topics)


def test_a_fetch_response_carries_the_records_as_given():
    records = bytes(range(256)) * 10
    frame = fetch_response(16, 7, [("t", uuid.uuid4(),
                                    [FetchedPartition(0, 0, 10, 0, [records, records])])])
    # then the tagged fields of the partition, the topic and the body
    assert frame.endswith(records + records + b"\0\0\0")
