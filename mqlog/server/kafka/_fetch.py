"""Fetch (API key 1): record batches from an offset, with long polling.

A fetch reads every partition asked (:meth:`Engine.read_kafka_batches`:
stored Kafka batches whole, so a fetch from an offset inside a batch returns
that batch, and native batches encoded from the offset). When the response
holds fewer than ``min_bytes`` it waits for an append -- by any process --
until ``max_wait`` has passed, then reads again
(``mqlog.logstore.append_watch``). The first read runs at once in the
connection's reader; the wait is a :class:`Later`, so the requests behind a
waiting fetch on its connection start (their responses still follow its own).

Bytes: a partition gets at most its ``partition_max_bytes``, the response at
most ``max_bytes``, except that the first partition with data returns at
least one batch (KIP-74), so a batch larger than the limits is never stuck.

Fetch sessions (KIP-227) are not kept: every response is full and carries
session id 0, which tells clients to send full requests. Topics are named by
id from v13 on (``_topic_ids``). Isolation levels are the same here: there
are no transactions, so the last stable offset is the high watermark.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError, UnknownTopicError
from mqlog.logstore import append_watch
from mqlog.server.kafka._codec import Entity, Request
from mqlog.server.kafka._context import Later, ServerState
from mqlog.server.kafka._errors import error_code
from mqlog.server.kafka._hot_responses import FetchedPartition, fetch_response
from mqlog.server.kafka._request_metrics import note_frame_errors
from mqlog.server.kafka._topic_ids import topic_for_id

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 16

UNKNOWN_TOPIC_ID = ErrorCode.unknown_topic_id.value
UNKNOWN_TOPIC_OR_PARTITION = ErrorCode.unknown_topic_or_partition.value
_TOPIC_NAMES = "fetch_topic_names"

#: Longest a fetch waits, whatever it asks (Kafka clients ask 500 ms by default).
MAX_WAIT_CAP_MS = 30_000


def handle(server: ServerState, request: Request) -> bytes | Later:
    """Read what the request asks; when that is less than ``min_bytes``, a
    :class:`Later` that waits up to ``max_wait`` for more."""
    body = request.body
    wait_ms = max(0, min(int(_milliseconds(body.max_wait)), MAX_WAIT_CAP_MS))
    deadline = time.monotonic() + wait_ms / 1000
    by_id = request.api_version >= 13
    seen = append_watch(server.engine).counter()
    topics, size = _read_all(server, body, by_id)
    if size >= body.min_bytes or deadline <= time.monotonic() or not topics:
        return _answer(request, topics)
    return Later(asyncio.ensure_future(_long_poll(server, request, by_id, deadline, seen)))


async def _long_poll(server: ServerState, request: Request, by_id: bool, deadline: float,
                     seen: int) -> bytes:
    """The response once ``min_bytes`` are there or ``deadline`` passed; ``seen``:
    the append counter before the last read found too little."""
    body = request.body
    watch = append_watch(server.engine)
    while True:
        await watch.changed(seen, deadline - time.monotonic())
        seen = watch.counter()
        topics, size = _read_all(server, body, by_id)
        if size >= body.min_bytes or deadline <= time.monotonic():
            return _answer(request, topics)


def _answer(request: Request,
            topics: list[tuple[str, uuid.UUID | None, list[FetchedPartition]]]) -> bytes:
    """The response frame, its partitions' error codes noted for the metrics."""
    note_frame_errors(p.error_code for _name, _id, partitions in topics for p in partitions)
    return fetch_response(request.api_version, request.correlation_id, topics)


def _milliseconds(value: object) -> float:
    seconds = getattr(value, "total_seconds", None)
    return seconds() * 1000 if seconds is not None else float(value)  # type: ignore[arg-type]


def _topic_named(server: ServerState, identifier: uuid.UUID) -> str | None:
    """The topic whose id is ``identifier``, remembered per server: deriving every
    topic's id on each fetch would cost in proportion to the topic count. A
    topic's id follows from its name alone, so a remembered name is right until
    the topic is deleted, which the engine's lookups find (by any process, at
    once: see ``TopicTable``): :func:`_read_all` then forgets the name and
    answers UNKNOWN_TOPIC_ID."""
    names: dict[uuid.UUID, str] = server.extensions.setdefault(_TOPIC_NAMES, {})
    name = names.get(identifier)
    if name is None:
        name = topic_for_id(server.engine, server.cluster_id, identifier)
        if name is not None:
            names[identifier] = name
    return name


def _forget_topic(server: ServerState, identifier: uuid.UUID) -> None:
    """Forget the name remembered for ``identifier``: its topic is gone."""
    server.extensions.get(_TOPIC_NAMES, {}).pop(identifier, None)


def _read_all(server: ServerState, body: Entity, by_id: bool
              ) -> tuple[list[tuple[str, uuid.UUID | None, list[FetchedPartition]]], int]:
    """Every partition asked: its batches (within the byte limits) and offsets.
    The high watermark is read after the batches, so it is never below them."""
    engine = server.engine
    budget = body.max_bytes
    size = 0
    topics = []
    for asked in body.topics:
        identifier = asked.topic_id if by_id else None
        name = _topic_named(server, asked.topic_id) if by_id else asked.topic
        partitions = []
        for wanted in asked.partitions:
            if name is None:
                partitions.append(FetchedPartition(wanted.partition, UNKNOWN_TOPIC_ID, -1, -1,
                                                   None))
                continue
            try:
                end = engine.end_offset(name, wanted.partition)
                limit = min(wanted.partition_max_bytes, budget - size)
                batches: list[bytes] = []  # nothing new, or no room left: no read
                if wanted.fetch_offset != end and (limit > 0 or not size):
                    batches = engine.read_kafka_batches(name, wanted.partition,
                                                        wanted.fetch_offset, max(limit, 1))
                    end = engine.end_offset(name, wanted.partition)  # not below the records
                start = engine.start_offset(name, wanted.partition)
            except UnknownTopicError:
                if identifier is not None:  # deleted since it was named: forget the name
                    _forget_topic(server, identifier)
                    code = UNKNOWN_TOPIC_ID
                else:
                    code = UNKNOWN_TOPIC_OR_PARTITION
                partitions.append(FetchedPartition(wanted.partition, code, -1, -1, None))
                continue
            except MqlogError as error:
                partitions.append(FetchedPartition(wanted.partition, error_code(error).value,
                                                   -1, -1, None))
                continue
            size += sum(map(len, batches))
            partitions.append(FetchedPartition(wanted.partition, 0, end, start, batches))
        topics.append((name or "", identifier, partitions))
    return topics, size
