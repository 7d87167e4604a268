"""CreatePartitions (key 37, v0-v3): raise topics' partition counts.

A count is the new total, and it must be more than the topic has
(INVALID_PARTITIONS otherwise: partitions are never removed, keyed records
would move). Assignments may only name this broker
(INVALID_REPLICA_ASSIGNMENT). mqlog's internal topics are refused.
``validate_only`` checks and changes nothing.
"""

from __future__ import annotations

import asyncio
import collections
import datetime

from kio.schema.errors import ErrorCode

from mqlog.errors import ConfigError, MqlogError
from mqlog.logstore import check_new_topic
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code, error_message
from mqlog.server.kafka._metadata import is_internal

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3


async def handle(server: ServerState, request: Request) -> Entity:
    """One result per topic asked for, in the request's order."""
    body = request.body
    cls = response_type(API_KEY, request.api_version)
    counts = collections.Counter(topic.name for topic in body.topics)
    results = []
    for topic in body.topics:
        message: str | None
        if counts[topic.name] > 1:
            code, message = ErrorCode.invalid_request, f"{topic.name!r} is named more than once"
        else:
            code, message = await _grow(server, topic, body.validate_only)
        results.append(build(part(cls, "CreatePartitionsTopicResult"), name=topic.name,
                             error_code=code, error_message=message))
    return build(cls, throttle_time=datetime.timedelta(0), results=tuple(results))


async def _grow(server: ServerState, topic: Entity,
                validate_only: bool) -> tuple[ErrorCode, str | None]:
    if is_internal(topic.name):
        return ErrorCode.invalid_topic_exception, f"{topic.name!r} is an internal topic"
    try:
        current = server.engine.partition_count(topic.name)
        check_new_topic(topic.name, topic.count)
    except ConfigError as error:
        return ErrorCode.invalid_partitions, error_message(error)
    except MqlogError as error:
        return error_code(error), error_message(error)
    if topic.count <= current:
        return ErrorCode.invalid_partitions, (
            f"topic {topic.name!r} has {current} partitions; the count can only grow")
    assignments = topic.assignments or ()
    if assignments and (len(assignments) != topic.count - current or any(
            list(a.broker_ids) != [server.node_id] for a in assignments)):
        return ErrorCode.invalid_replica_assignment, (
            f"one assignment per new partition, each [{server.node_id}] (the only broker)")
    if validate_only:
        return ErrorCode.none, None
    try:
        await asyncio.to_thread(server.engine.alter_topic, topic.name, topic.count)
    except ConfigError as error:  # another process grew it meanwhile
        return ErrorCode.invalid_partitions, error_message(error)
    except MqlogError as error:
        return error_code(error), error_message(error)
    return ErrorCode.none, None
