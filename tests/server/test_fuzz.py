"""The request decoder and dispatch under random and mutated frames.

Random bytes, and valid requests of every served API with bytes replaced,
inserted, removed, cut off or overwritten by an absurd length: decoding raises nothing but
MalformedRequestError, and a request that decodes is answered by its
handler with a response that encodes (handlers answer bad input with error
codes, never an exception), within a bound. CreateTopics and
CreatePartitions run with ``validate_only`` (every check, no creation: a
mutated count could ask for thousands of partitions, which is legal but
slow). Bounded (EXAMPLES); ``MQLOG_SOAK=1`` runs many more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.serial import entity_reader

import mqlog
from mqlog import Record
from mqlog.logstore._kafka_batch import encode_records
from mqlog.server.kafka._apis import EXTENSION, Api
from mqlog.server.kafka._codec import (
    MalformedRequestError,
    Request,
    decode_request,
    encode_response,
    part,
    response_type,
)
from mqlog.server.kafka._context import Later, ServerState
from mqlog.server.kafka._handlers import default_table
from tests.server._serve import REPO_ROOT, encode_request

SOAK = os.environ.get("MQLOG_SOAK", "") not in ("", "0")
EXAMPLES = 10_000 if SOAK else 1000
#: Longest a handler may take on one request here (a hang guard, not a timing test).
HANDLER_BOUND_S = 10
VALIDATE_ONLY = (19, 37, 44, 33)  # CreateTopics, CreatePartitions, (Incremental)AlterConfigs


#: One Kafka RecordBatch v2 of two records, for the Produce seeds.
_KAFKA_BATCH = encode_records([Record(b"a", key=b"k", timestamp=1), Record(b"b", timestamp=2)], 0)


def _seeds() -> list[bytes]:
    """Valid request frames (without the size prefix) of every served API."""
    def body(key: int, version: int, **fields: object) -> bytes:
        return encode_request(key, version, 7, **fields)[4:]

    metadata = load_request_schema(3, 12)
    create = load_request_schema(19, 7)
    offsets = load_request_schema(2, 9)
    describe = load_request_schema(32, 4)
    grow = load_request_schema(37, 3)
    delete = load_request_schema(20, 6)
    alter = load_request_schema(44, 1)
    replace = load_request_schema(33, 2)
    trim = load_request_schema(21, 2)
    produce = load_request_schema(0, 9)
    fetch = load_request_schema(1, 12)
    fetch_old = load_request_schema(1, 7)
    seconds = datetime.timedelta(seconds=1)
    return [
        body(0, 9, transactional_id=None, acks=1, timeout=seconds, topic_data=(
            part(produce, "TopicProduceData")(name="t", partition_data=(
                part(produce, "PartitionProduceData")(index=1, records=_KAFKA_BATCH),)),)),
        body(0, 3, transactional_id=None, acks=-1, timeout=seconds, topic_data=(
            part(load_request_schema(0, 3), "TopicProduceData")(name="t", partition_data=(
                part(load_request_schema(0, 3), "PartitionProduceData")(
                    index=0, records=_KAFKA_BATCH),)),)),
        body(1, 12, replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0,
             session_id=0, session_epoch=-1, cluster_id="c", rack_id="r",
             topics=(part(fetch, "FetchTopic")(topic="t", partitions=(
                 part(fetch, "FetchPartition")(partition=0, fetch_offset=1,
                                               partition_max_bytes=1 << 20),)),),
             forgotten_topics_data=(part(fetch, "ForgottenTopic")(topic="x",
                                                                  partitions=(1, 2)),)),
        body(1, 7, replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0,
             max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
             topics=(part(fetch_old, "FetchTopic")(topic="t", partitions=(
                 part(fetch_old, "FetchPartition")(partition=1, fetch_offset=0,
                                                   partition_max_bytes=100),)),),
             forgotten_topics_data=()),
        body(18, 3, client_software_name="fuzz", client_software_version="1"),
        body(18, 0),
        body(3, 12, topics=(part(metadata, "MetadataRequestTopic")(name="t", topic_id=None),),
             allow_auto_topic_creation=True, include_topic_authorized_operations=False),
        body(3, 1, topics=None),
        body(19, 7, topics=(part(create, "CreatableTopic")(
            name="n", num_partitions=2, replication_factor=1, assignments=(),
            configs=(part(create, "CreatableTopicConfig")(name="retention.ms", value="1"),)),),
            timeout=seconds, validate_only=True),
        body(2, 9, replica_id=-1, isolation_level=0, topics=(part(offsets, "ListOffsetsTopic")(
            name="t", partitions=(part(offsets, "ListOffsetsPartition")(
                partition_index=0, current_leader_epoch=-1, timestamp=-1),
                part(offsets, "ListOffsetsPartition")(
                partition_index=0, current_leader_epoch=-1, timestamp=-3),)),)),
        body(32, 4, resources=(part(describe, "DescribeConfigsResource")(
            resource_type=2, resource_name="t", configuration_keys=None),),
            include_synonyms=False, include_documentation=True),
        body(37, 3, topics=(part(grow, "CreatePartitionsTopic")(
            name="t", count=3, assignments=None),), timeout=seconds, validate_only=True),
        body(20, 6, topics=(part(delete, "DeleteTopicState")(name="gone", topic_id=None),),
             timeout=seconds),
        body(44, 1, resources=(part(alter, "AlterConfigsResource")(
            resource_type=2, resource_name="t", configs=(part(alter, "AlterableConfig")(
                name="cleanup.policy", config_operation=2, value="compact"),)),),
            validate_only=True),
        body(33, 2, resources=(part(replace, "AlterConfigsResource")(
            resource_type=2, resource_name="t", configs=(part(replace, "AlterableConfig")(
                name="retention.ms", value="60000"),)),), validate_only=True),
        body(21, 2, topics=(part(trim, "DeleteRecordsTopic")(
            name="t", partitions=(part(trim, "DeleteRecordsPartition")(
                partition_index=1, offset=0),)),), timeout=seconds),
    ]


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed with a few bytes replaced, inserted or removed, or cut short."""
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(len(frame) - 1, 0)))
        kind = draw(st.sampled_from(["replace", "insert", "remove", "cut", "absurd"]))
        if kind == "absurd":
            length = draw(st.sampled_from(ABSURD_LENGTHS))
            frame[where:where + len(length)] = length
        elif kind == "replace" and frame:
            frame[where] = draw(st.integers(0, 255))
        elif kind == "insert":
            frame[where:where] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "remove" and frame:
            del frame[where]
        elif kind == "cut":
            del frame[where:]
    return bytes(frame)


def _headed_noise() -> st.SearchStrategy[bytes]:
    """A served API's key and version, a correlation id, then random bytes."""
    apis = [(api.api_key, version) for api in default_table()
            for version in range(api.min_version, api.max_version + 1)]
    return st.builds(lambda kv, rest: struct.pack(">hhi", *kv, 1) + rest,
                     st.sampled_from(apis), st.binary(max_size=64))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A server state over a log with topic ``t`` (2 partitions, a few records),
    and an event loop to run handlers on."""
    log = mqlog.open(Path(tmp_path_factory.mktemp("fuzz")) / "log")
    log.create_topic("t", partitions=2)
    log.append("t", 0, [b"a", b"b", b"c"])
    state = ServerState(log.engine, "127.0.0.1", 9092, "fuzz-cluster")
    state.extensions[EXTENSION] = default_table()
    loop = asyncio.new_event_loop()
    yield state, loop
    loop.close()
    log.close()


#: Array lengths no frame can hold: the largest 5-byte varint and int32.
ABSURD_LENGTHS = (b"\xff\xff\xff\xff\x0f", b"\x7f\xff\xff\xff")

_ABSURD_CHECK = """
import sys
from mqlog.server.kafka._codec import MalformedRequestError, decode_request
from tests.server.test_fuzz import ABSURD_LENGTHS, SEEDS
for seed in SEEDS:
    for where in range(8, len(seed)):
        for length in ABSURD_LENGTHS:
            frame = seed[:where] + length + seed[where + len(length):]
            try:
                decode_request(frame)
            except MalformedRequestError:
                pass
print("ok")
"""


def test_absurd_lengths_anywhere_are_refused_not_fatal() -> None:
    """Every seed with an absurd length written at each position after its header
    prefix decodes or is refused. In a child process: the failure this guards
    against (kio's native reader reserving room for billions of elements) aborts
    the process rather than raising."""
    result = subprocess.run([sys.executable, "-c", _ABSURD_CHECK], capture_output=True,
                            text=True, timeout=300, cwd=REPO_ROOT,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frame=st.one_of(st.binary(max_size=128), mutated(), _headed_noise()))
def test_any_frame_is_refused_or_answered(served, frame: bytes) -> None:
    state, loop = served
    try:
        request = decode_request(frame)
    except MalformedRequestError:
        return
    api = default_table().get(request.api_key)
    if api is None or not api.supports(request.api_version):
        return  # the connection closes it before decoding (tests/server/test_connections)
    if request.api_key in VALIDATE_ONLY:
        request = request._replace(body=dataclasses.replace(request.body, validate_only=True))
    response = loop.run_until_complete(
        asyncio.wait_for(_answer(api, state, request), HANDLER_BOUND_S))
    if isinstance(response, bytes):  # written by hand (_hot_responses): kio reads it back
        check_frame(request, response)
    else:
        encode_response(request.api_key, request.api_version, request.correlation_id, response)


async def _answer(api: Api, state: ServerState, request: Request) -> object:
    """The response of ``api``'s handler, a plain function or ``async def``, to
    ``request``, once a :class:`Later` it returned resolved."""
    response = api.handler(state, request)
    if not api.immediate:
        response = await response
    if isinstance(response, Later):
        response = await response.future
    return response


def check_frame(request, frame: bytes) -> None:
    """``frame`` is a whole response to ``request`` as kio's codec reads it."""
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    schema = response_type(request.api_key, request.api_version)
    header, used = entity_reader(schema.__header_schema__)(frame, 4)
    assert header.correlation_id == request.correlation_id
    _body, body_used = entity_reader(schema)(frame, 4 + used)
    assert 4 + used + body_used == len(frame)


def test_the_seeds_are_answered_without_error(served) -> None:
    """The fuzz starts from requests that are valid (else it only tests refusals)."""
    state, loop = served
    for frame in SEEDS:
        request = decode_request(frame)
        api = default_table().get(request.api_key)
        assert api is not None and api.supports(request.api_version)
        response = loop.run_until_complete(_answer(api, state, request))
        if isinstance(response, bytes):
            check_frame(request, response)
