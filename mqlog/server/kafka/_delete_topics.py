"""DeleteTopics (key 20, v1-v6): delete topics by name (v6: or by topic id).

Each topic is answered on its own: an unknown one is
UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked by id), mqlog's
internal ``__`` topics are refused (INVALID_TOPIC_EXCEPTION: the committed
offsets and replies live there), anything else is deleted with its data,
as ``Log.delete_topic`` does.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code, error_message
from mqlog.server.kafka._metadata import is_internal
from mqlog.server.kafka._topic_ids import ZERO_UUID, topic_for_id, topic_id

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 6


async def handle(server: ServerState, request: Request) -> Entity:
    """One result per topic asked for, in the request's order."""
    body = request.body
    cls = response_type(API_KEY, request.api_version)
    if request.api_version >= 6:
        wanted = [(topic.name, topic.topic_id) for topic in body.topics]
    else:
        wanted = [(name, None) for name in body.topic_names]
    results = [await _delete(server, cls, name, wanted_id) for name, wanted_id in wanted]
    return build(cls, throttle_time=datetime.timedelta(0), responses=tuple(results))


async def _delete(server: ServerState, cls: type, name: str | None,
                  wanted_id: uuid.UUID | None) -> Entity:
    result = part(cls, "DeletableTopicResult")
    if name is None:
        name = topic_for_id(server.engine, server.cluster_id, wanted_id or ZERO_UUID)
        if name is None:
            return build(result, name=None, topic_id=wanted_id,
                         error_code=ErrorCode.unknown_topic_id,
                         error_message=f"no topic has id {wanted_id}")
    code, message = ErrorCode.none, None
    if is_internal(name):
        code, message = ErrorCode.invalid_topic_exception, f"{name!r} is an internal topic"
    else:
        try:
            await asyncio.to_thread(server.engine.delete_topic, name)
        except MqlogError as error:
            code, message = error_code(error), error_message(error)
    return build(result, name=name, topic_id=topic_id(server.cluster_id, name),
                 error_code=code, error_message=message)
