"""ListOffsets (key 2, v1-v9): offsets by position or by time.

Per partition, the request's timestamp is one of: -2 (EARLIEST, and -4,
EARLIEST_LOCAL: there is no tiered storage) -> the log start offset; -1
(LATEST) -> the end offset (the high watermark: mqlog has no uncommitted
records, so the isolation level changes nothing); a time in ms -> the first
offset whose timestamp is at or after it (``Engine.offset_for_time``), with
that record's timestamp, or offset -1 when every record is older (as
Kafka); -3 (MAX_TIMESTAMP, KIP-734) -> the first record holding the
partition's largest timestamp, with it (``Engine.newest_record``), or offset
-1 on an empty partition. Other negative values (-5, tiered storage's) are
answered UNSUPPORTED_VERSION. Unknown topics or partitions are
UNKNOWN_TOPIC_OR_PARTITION.
Leader epochs are 0, as Metadata reports them.
"""

from __future__ import annotations

import asyncio
import datetime

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError
from mqlog.logstore import Engine
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 9

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
NO_OFFSET = -1
NO_TIMESTAMP = -1


async def handle(server: ServerState, request: Request) -> Entity:
    """One answer per partition asked for, grouped by topic as asked."""
    cls = response_type(API_KEY, request.api_version)
    topic_entry = part(cls, "ListOffsetsTopicResponse")
    asked = [(topic.name, [p.partition_index for p in topic.partitions],
              [p.timestamp for p in topic.partitions]) for topic in request.body.topics]
    found = await asyncio.to_thread(_look_up_all, server.engine, asked)
    topics = []
    for (name, numbers, _), answers in zip(asked, found, strict=True):
        partitions = tuple(
            build(part(cls, "ListOffsetsPartitionResponse"), partition_index=number,
                  error_code=code, timestamp=timestamp, offset=offset, leader_epoch=0,
                  old_style_offsets=(offset,) if offset >= 0 else ())
            for number, (code, offset, timestamp) in zip(numbers, answers, strict=True))
        topics.append(build(topic_entry, name=name, partitions=partitions))
    return build(cls, throttle_time=datetime.timedelta(0), topics=tuple(topics))


def _look_up_all(engine: Engine, asked: list[tuple[str, list[int], list[int]]]
                 ) -> list[list[tuple[ErrorCode, int, int]]]:
    """(error, offset, timestamp) per partition asked, off the event loop (a
    lookup by time may read a segment index from disk)."""
    return [[_look_up(engine, name, number, timestamp)
             for number, timestamp in zip(numbers, timestamps, strict=True)]
            for name, numbers, timestamps in asked]


def _look_up(engine: Engine, topic: str, partition: int,
             timestamp: int) -> tuple[ErrorCode, int, int]:
    try:
        if timestamp in (EARLIEST, EARLIEST_LOCAL):
            return ErrorCode.none, engine.start_offset(topic, partition), NO_TIMESTAMP
        if timestamp == LATEST:
            return ErrorCode.none, engine.end_offset(topic, partition), NO_TIMESTAMP
        if timestamp == MAX_TIMESTAMP:
            newest = engine.newest_record(topic, partition)
            if newest is None:
                return ErrorCode.none, NO_OFFSET, NO_TIMESTAMP
            return ErrorCode.none, *newest
        if timestamp < 0:
            return ErrorCode.unsupported_version, NO_OFFSET, NO_TIMESTAMP
        offset = engine.offset_for_time(topic, partition, timestamp)
        found = engine.read(topic, partition, offset, max_records=1)
    except MqlogError as error:
        return error_code(error), NO_OFFSET, NO_TIMESTAMP
    if not found:  # every record is older: no offset, as Kafka answers
        return ErrorCode.none, NO_OFFSET, NO_TIMESTAMP
    record = found[0]
    assert record.offset is not None and record.timestamp is not None  # records read have both
    return ErrorCode.none, record.offset, record.timestamp
