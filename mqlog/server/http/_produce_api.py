"""POST /topics/{topic}/records: append a batch of records.

Each record goes to its ``partition`` if it names one, else to its key's
partition (``mqlog.producer.key_partition``, as the embedded Producer puts
it), else with the other keyless records of the request to one partition,
the next in turn for each request (round robin per topic, as Kafka's sticky
partitioner spreads batches).

The whole request is checked before anything is written: its size against
``HttpLimits.max_batch``, every payload's encoding, every partition, every
record's size against the topic's ``max_record_bytes``. Then each
partition's records are appended in one all-or-nothing append, in request
order; the offsets come back in request order. (An append can still fail
after an earlier partition's was made, e.g. on a full disk: the error is
answered and the earlier partition keeps its records.)

The appends run on the event loop without a flush; for a topic with
``durability="always"`` the response waits, without blocking the loop, until
the records are on stable storage (``_waiting.durable``: one flush at a time
per partition in a worker thread, shared by the requests waiting for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import msgpack
import pydantic
from fastapi import APIRouter, Request

from mqlog.errors import RecordTooLargeError, UnknownPartitionError
from mqlog.logstore import Record
from mqlog.producer import key_partition
from mqlog.server.http._errors import ApiError, ErrorBody
from mqlog.server.http._limits import HttpLimits
from mqlog.server.http._log_api import log_of, refuse_internal
from mqlog.server.http._payloads import Encoding, text_bytes
from mqlog.server.http._waiting import appended, durable

router = APIRouter(tags=["log"])

#: Timestamps a record may carry: ms since the epoch, as a signed 64-bit integer.
TIMESTAMP_MAX = 2**63 - 1


class RecordIn(pydantic.BaseModel):
    """One record to append; ``key``, ``value`` and header values in ``encoding``."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    value: str
    key: str | None = None
    headers: dict[str, str] | None = None
    partition: int | None = pydantic.Field(default=None, ge=0)
    #: ms since the epoch; the server's clock when absent.
    timestamp: int | None = pydantic.Field(default=None, ge=0, le=TIMESTAMP_MAX)
    encoding: Encoding = "utf-8"

    def record(self, index: int) -> Record:
        """The record to append, its bytes decoded (400 ``invalid_base64`` naming the
        field of record ``index`` that is not)."""
        where = f"records[{index}]"
        headers = {name: text_bytes(text, self.encoding, f"{where}.headers[{name!r}]")
                   for name, text in (self.headers or {}).items()}
        key = None if self.key is None else text_bytes(self.key, self.encoding, f"{where}.key")
        return Record(text_bytes(self.value, self.encoding, f"{where}.value"), key,
                      headers or None, self.timestamp)


class ProduceRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    records: list[RecordIn] = pydantic.Field(min_length=1)


class RecordOffset(pydantic.BaseModel):
    partition: int
    offset: int


class ProduceResponse(pydantic.BaseModel):
    """Where each record went, in the request's order."""

    offsets: list[RecordOffset]


@router.post("/topics/{topic}/records", response_model=ProduceResponse,
             summary="Append records to a topic",
             responses={500: {"model": ErrorBody, "description": "storage_failed: a write "
                                                                "or flush failed"},
                        507: {"model": ErrorBody, "description": "disk_full"}})
async def produce(request: Request, topic: str, body: ProduceRequest) -> ProduceResponse:
    """Append ``records`` (at most ``max_batch``) and answer their offsets once the
    topic's durability is met."""
    limits: HttpLimits = request.app.state.limits
    if len(body.records) > limits.max_batch:
        raise ApiError(400, "limit_exceeded", f"{len(body.records)} records in one request, "
                                              f"over max_batch={limits.max_batch}")
    refuse_internal(topic, "written")
    engine = log_of(request).engine
    engine.check_writable(f"append to {topic!r}")
    count = engine.partition_count(topic)
    config = engine.topic_config(topic)
    records = [item.record(index) for index, item in enumerate(body.records)]
    targets = _partitions(request, topic, body.records, records, count)
    for index, record in enumerate(records):
        size = _record_size(record)
        if size > config.max_record_bytes:
            raise RecordTooLargeError(f"record {index} is {size} bytes (key + headers + "
                                      f"value), over max_record_bytes="
                                      f"{config.max_record_bytes} of topic {topic!r}")
    by_partition: dict[int, list[int]] = {}
    for index, partition in enumerate(targets):
        by_partition.setdefault(partition, []).append(index)
    offsets = [0] * len(records)
    ends: dict[int, int] = {}
    try:
        for partition, indexes in by_partition.items():
            first = engine.append(topic, partition, [records[i] for i in indexes], flush=False)
            for position, index in enumerate(indexes):
                offsets[index] = first + position
            ends[partition] = first + len(indexes)
    finally:
        if ends:
            appended(request.app)
    if config.durability == "always":
        await asyncio.gather(*(durable(request.app, topic, partition, end)
                               for partition, end in ends.items()))
    return ProduceResponse(offsets=[RecordOffset(partition=p, offset=o)
                                    for p, o in zip(targets, offsets)])


def _partitions(request: Request, topic: str, items: list[RecordIn], records: list[Record],
                count: int) -> list[int]:
    """The partition of each record (see the module docstring); UnknownPartitionError
    for a partition the topic does not have."""
    keyless: int | None = None
    chosen = []
    for index, (item, record) in enumerate(zip(items, records)):
        if item.partition is not None:
            if item.partition >= count:
                raise UnknownPartitionError(f"record {index}: topic {topic!r} has no partition "
                                            f"{item.partition} (it has 0..{count - 1})")
            chosen.append(item.partition)
        elif record.key is not None:
            chosen.append(key_partition(record.key, count))
        else:
            if keyless is None:
                keyless = _next_keyless_partition(request, topic, count)
            chosen.append(keyless)
    return chosen


def _next_keyless_partition(request: Request, topic: str, count: int) -> int:
    """The partition of this request's keyless records: the one after the last
    request's, per topic."""
    turns: dict[str, int] | None = getattr(request.app.state, "keyless_turns", None)
    if turns is None:
        turns = request.app.state.keyless_turns = {}
    turns[topic] = (turns.get(topic, -1) + 1) % count
    return turns[topic]


def _record_size(record: Record) -> int:
    """The size the engine bounds by ``max_record_bytes``: key + headers (as stored,
    msgpack) + value."""
    headers: Mapping[str, bytes] | None = record.headers
    packed = msgpack.packb(dict(headers), use_bin_type=True) if headers else b""
    return len(record.key or b"") + len(packed) + len(record.value)
