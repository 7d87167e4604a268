"""DeleteRecords (key 21, v0-v2): move partitions' log start offsets up.

Each partition asked goes through ``Engine.delete_records``: the records
below the offset are no longer read, found or counted, whole segments below it
are deleted, and the new start is durable before the answer (its
``low_watermark``). Offset -1 means the partition's end (every record), as in
Kafka. An offset at or below the start changes nothing and answers the start;
beyond the end it is OFFSET_OUT_OF_RANGE, an unknown topic or partition
UNKNOWN_TOPIC_OR_PARTITION, and mqlog's internal topics are refused
(INVALID_TOPIC_EXCEPTION). Each partition stands alone: one refused leaves the
others done.
"""

from __future__ import annotations

import asyncio
import datetime

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code
from mqlog.server.kafka._metadata import is_internal

API_KEY = 21
MIN_VERSION = 0
MAX_VERSION = 2

#: The offset that asks for every record of the partition to go.
END_OFFSET = -1


async def handle(server: ServerState, request: Request) -> Entity:
    """One result per partition asked for, in the request's order."""
    cls = response_type(API_KEY, request.api_version)
    partition_cls = part(cls, "DeleteRecordsPartitionResult")
    topics = []
    for topic in request.body.topics:
        partitions = []
        for asked in topic.partitions:
            code, low = await _delete(server, topic.name, asked.partition_index, asked.offset)
            partitions.append(build(partition_cls, partition_index=asked.partition_index,
                                    low_watermark=low, error_code=code))
        topics.append(build(part(cls, "DeleteRecordsTopicResult"), name=topic.name,
                            partitions=tuple(partitions)))
    return build(cls, throttle_time=datetime.timedelta(0), topics=tuple(topics))


async def _delete(server: ServerState, topic: str, partition: int,
                  offset: int) -> tuple[ErrorCode, int]:
    """(error code, the partition's start offset now: -1 on an error)."""
    if is_internal(topic):
        return ErrorCode.invalid_topic_exception, -1
    engine = server.engine
    try:
        if offset == END_OFFSET:
            offset = engine.end_offset(topic, partition)
        elif offset < 0:
            return ErrorCode.offset_out_of_range, -1
        low = await asyncio.to_thread(engine.delete_records, topic, partition, offset)
    except MqlogError as error:
        return error_code(error), -1
    return ErrorCode.none, low
