"""Produce and Fetch requests decoded by hand (``_hot_requests``) against kio.

For every version the server answers, random requests written by kio's
encoder (Kafka's schemas) decode to the same fields as kio's own reader
gives; every truncation of them, a null where none is allowed and an array
longer than its frame are refused with MalformedRequestError.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.serial import entity_reader, entity_writer

from mqlog.server.kafka import _hot_requests
from mqlog.server.kafka._codec import MalformedRequestError, decode_request

PRODUCE_VERSIONS = range(3, 13)
FETCH_VERSIONS = range(4, 17)

int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
names = st.text(max_size=12)
topic_ids = st.one_of(st.just(None), st.uuids())


def _schema(api_key: int, version: int) -> Any:
    """kio's request class (typed Any: its fields differ per version)."""
    return load_request_schema(api_key, version)


def _frame(api_key: int, version: int, body: Any, client_id: str | None) -> bytes:
    """A request frame (no size prefix) written by kio."""
    schema = type(body)
    header = schema.__header_schema__
    out = io.BytesIO()
    entity_writer(header)(out, header(request_api_key=api_key, request_api_version=version,
                                      correlation_id=11, client_id=client_id))
    entity_writer(schema)(out, body)
    return out.getvalue()


def _kio(frame: bytes, api_key: int, version: int) -> tuple[Any, Any]:
    schema = _schema(api_key, version)
    header, used = entity_reader(schema.__header_schema__)(frame, 0)
    return header, entity_reader(schema)(frame, used)[0]


def _same(hot: object, kio: object, path: str = "body") -> None:
    """Every field of the kio entity ``kio`` equals the same field of ``hot``
    (nested entities and tuples of them compared the same way); ``replica_state``
    is the one field the hand decoder skips."""
    for field in dataclasses.fields(kio):  # type: ignore[arg-type]
        if field.name == "replica_state":
            continue
        theirs = getattr(kio, field.name)
        ours = getattr(hot, field.name)
        where = f"{path}.{field.name}"
        if isinstance(theirs, tuple) and theirs and dataclasses.is_dataclass(theirs[0]):
            assert len(ours) == len(theirs), where
            for index, (mine, other) in enumerate(zip(ours, theirs)):
                _same(mine, other, f"{where}[{index}]")
        else:
            assert ours == theirs and type(ours) is type(theirs) or (
                ours == theirs and isinstance(ours, int)), (where, ours, theirs)


@st.composite
def produce_requests(draw: st.DrawFn) -> tuple[int, object]:
    version = draw(st.sampled_from(PRODUCE_VERSIONS))
    schema = _schema(0, version)
    module = sys.modules[schema.__module__]
    topics = tuple(module.TopicProduceData(name=draw(names), partition_data=tuple(
        module.PartitionProduceData(index=draw(int32),
                                    records=draw(st.one_of(st.none(), st.binary(max_size=40))))
        for _ in range(draw(st.integers(0, 3)))))
        for _ in range(draw(st.integers(0, 3))))
    return version, schema(transactional_id=draw(st.one_of(st.none(), names)),
                           acks=draw(st.sampled_from([-1, 0, 1])),
                           timeout=datetime.timedelta(milliseconds=draw(st.integers(0, 2**31 - 1))),
                           topic_data=topics)


@st.composite
def fetch_requests(draw: st.DrawFn) -> tuple[int, object]:
    version = draw(st.sampled_from(FETCH_VERSIONS))
    schema = _schema(1, version)
    module = sys.modules[schema.__module__]
    by_id = version >= 13
    fields = {field.name for field in dataclasses.fields(module.FetchPartition)}

    def partition() -> object:
        values = dict(partition=draw(int32), current_leader_epoch=draw(int32),
                      fetch_offset=draw(int64), last_fetched_epoch=draw(int32),
                      log_start_offset=draw(int64), partition_max_bytes=draw(int32))
        return module.FetchPartition(**{k: v for k, v in values.items() if k in fields})

    def named(cls: type, **rest: object) -> object:
        return cls(topic_id=draw(topic_ids), **rest) if by_id else cls(topic=draw(names), **rest)

    body: dict[str, object] = dict(
        max_wait=datetime.timedelta(milliseconds=draw(st.integers(0, 2**31 - 1))),
        min_bytes=draw(int32), max_bytes=draw(int32), isolation_level=draw(st.sampled_from([0, 1])),
        topics=tuple(named(module.FetchTopic, partitions=tuple(
            partition() for _ in range(draw(st.integers(0, 3)))))
            for _ in range(draw(st.integers(0, 3)))))
    if version <= 14:
        body["replica_id"] = draw(int32)
    if version >= 7:
        forgotten = tuple(named(module.ForgottenTopic,
                                partitions=tuple(draw(st.lists(int32, max_size=3))))
                          for _ in range(draw(st.integers(0, 2))))
        body.update(session_id=draw(int32), session_epoch=draw(int32),
                    forgotten_topics_data=forgotten)
    if version >= 11:
        body["rack_id"] = draw(names)
    if version >= 12:
        body["cluster_id"] = draw(st.one_of(st.none(), names))
    if version >= 15:
        body["replica_state"] = module.ReplicaState(replica_id=draw(int32),
                                                    replica_epoch=draw(int64))
    return version, schema(**body)


@settings(max_examples=300, deadline=None)
@given(request=st.one_of(produce_requests().map(lambda r: (0, *r)),
                         fetch_requests().map(lambda r: (1, *r))),
       client_id=st.one_of(st.none(), names))
def test_the_same_fields_as_kio_and_every_truncation_refused(
        request: tuple[int, int, Any], client_id: str | None) -> None:
    api_key, version, body = request
    frame = _frame(api_key, version, body, client_id)
    header, kio_body = _kio(frame, api_key, version)
    decoded = decode_request(frame)
    assert type(decoded.body).__module__ == _hot_requests.__name__
    assert (decoded.api_key, decoded.api_version, decoded.correlation_id) == (
        api_key, version, 11)
    assert decoded.client_id == (header.client_id or "")
    _same(decoded.body, kio_body)
    assert decode_request(frame + b"\x00\x01").body is not None  # trailing bytes ignored
    for cut in range(8, len(frame)):
        with pytest.raises(MalformedRequestError):
            decode_request(frame[:cut])


def test_every_version_is_decoded_by_hand() -> None:
    for version in PRODUCE_VERSIONS:
        assert _hot_requests.decodes(0, version)
    for version in FETCH_VERSIONS:
        assert _hot_requests.decodes(1, version)
    assert not _hot_requests.decodes(0, 13) and not _hot_requests.decodes(1, 17)
    assert not _hot_requests.decodes(3, 12)


def _produce_v3(topic_name_length: int, array_count: int = 1) -> bytes:
    header = struct.pack(">hhih", 0, 3, 1, -1)  # null client id
    body = struct.pack(">hhi", -1, 1, 1000) + struct.pack(">i", array_count)
    body += struct.pack(">h", topic_name_length) + b"t" * max(topic_name_length, 0)
    body += struct.pack(">i", 1) + struct.pack(">ii", 0, 3) + b"abc"
    return header + body


def test_nulls_and_absurd_lengths_are_refused() -> None:
    assert decode_request(_produce_v3(1)).body.topic_data[0].name == "t"
    with pytest.raises(MalformedRequestError, match="null string"):
        decode_request(_produce_v3(-1))  # a topic name may not be null
    with pytest.raises(MalformedRequestError, match="array of 2147483647 elements"):
        decode_request(_produce_v3(1, array_count=2**31 - 1))
    with pytest.raises(MalformedRequestError, match="null array"):
        decode_request(_produce_v3(1, array_count=-1))
    bad_text = _produce_v3(2).replace(b"tt", b"\xff\xfe")
    with pytest.raises(MalformedRequestError, match="UnicodeDecodeError"):
        decode_request(bad_text)


def test_a_zero_topic_id_is_none_as_kio_has_it() -> None:
    schema = _schema(1, 16)
    module = sys.modules[schema.__module__]
    for topic_id in (None, uuid.UUID(int=1)):
        body = schema(max_wait=datetime.timedelta(milliseconds=5), min_bytes=1,
                      topics=(module.FetchTopic(topic_id=topic_id, partitions=()),),
                      forgotten_topics_data=())
        decoded = decode_request(_frame(1, 16, body, "c"))
        assert decoded.body.topics[0].topic_id == topic_id
