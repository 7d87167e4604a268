"""CreateTopics (key 19, v2-v7): create topics, or only check that they could be.

Each topic is answered on its own: a bad name (INVALID_TOPIC_EXCEPTION; the
``__`` names are mqlog's), an existing one (TOPIC_ALREADY_EXISTS), a
replication factor other than 1 or -1 (INVALID_REPLICATION_FACTOR: there is
one broker), replica assignments naming another broker
(INVALID_REPLICA_ASSIGNMENT), a config with no mapping or a bad value
(INVALID_CONFIG, see ``_topic_configs``), a name twice in one request
(INVALID_REQUEST). ``num_partitions`` -1 takes the server's
``default_partitions``; given assignments, their count is the partition
count. ``validate_only`` checks all of that and creates nothing. v5+
responses carry the resulting partition count and configs.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from mqlog.errors import ConfigError, MqlogError
from mqlog.logstore import TopicConfig, check_new_topic
from mqlog.names import validate_name
from mqlog.server.kafka._codec import Entity, Request, build, has_field, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code, error_message
from mqlog.server.kafka._settings import settings
from mqlog.server.kafka._topic_configs import (
    checked_config,
    is_default,
    kafka_values,
    topic_options,
)
from mqlog.server.kafka._topic_ids import ZERO_UUID, topic_id

API_KEY = 19
MIN_VERSION = 2
MAX_VERSION = 7

#: DescribeConfigs' config sources: set on the topic, or the default.
SOURCE_TOPIC = 1
SOURCE_DEFAULT = 5


class _Refused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


async def handle(server: ServerState, request: Request) -> Entity:
    """One result per topic asked for, in the request's order."""
    body = request.body
    cls = response_type(API_KEY, request.api_version)
    topics = body.topics or ()  # a null array asks for nothing
    counts = collections.Counter(topic.name for topic in topics)
    results = []
    for topic in topics:
        try:
            if counts[topic.name] > 1:
                raise _Refused(ErrorCode.invalid_request,
                               f"topic {topic.name!r} is named more than once")
            partitions, config = _checked(server, topic)
            if not body.validate_only:
                await asyncio.to_thread(_create, server, topic.name, partitions, config)
        except _Refused as refused:
            results.append(_result(server, cls, topic.name, refused.code, str(refused)))
        except MqlogError as error:
            results.append(_result(server, cls, topic.name, error_code(error),
                                   error_message(error)))
        else:
            results.append(_result(server, cls, topic.name, ErrorCode.none, None,
                                   partitions, config))
    return build(cls, throttle_time=datetime.timedelta(0), topics=tuple(results))


def _checked(server: ServerState, topic: Entity) -> tuple[int, TopicConfig]:
    """(partition count, config) of a topic to create; raises what refuses it."""
    validate_name("topic", topic.name)  # InvalidTopicError: mapped by the caller
    partitions = topic.num_partitions
    if topic.assignments:
        if partitions != -1 or topic.replication_factor != -1:
            raise _Refused(ErrorCode.invalid_request, "give either assignments or "
                           "num_partitions and replication_factor, not both")
        for assignment in topic.assignments:
            if list(assignment.broker_ids) != [server.node_id]:
                raise _Refused(ErrorCode.invalid_replica_assignment,
                               f"partition {assignment.partition_index}: the only broker is "
                               f"{server.node_id}")
        partitions = len(topic.assignments)
    elif partitions == -1:
        partitions = settings(server).default_partitions
    if topic.replication_factor not in (-1, 1):
        raise _Refused(ErrorCode.invalid_replication_factor,
                       f"replication factor {topic.replication_factor}: this server is one "
                       f"broker, so 1 is the only factor")
    try:
        check_new_topic(topic.name, partitions)  # the name is valid: only the count fails
    except ConfigError as error:
        raise _Refused(ErrorCode.invalid_partitions, error_message(error)) from None
    try:
        config = checked_config(server.engine.topic_defaults,
                                topic_options((c.name, c.value) for c in topic.configs))
    except ConfigError as error:
        raise _Refused(ErrorCode.invalid_config, error_message(error)) from None
    if server.engine.has_topic(topic.name):
        raise _Refused(ErrorCode.topic_already_exists, f"topic {topic.name!r} already exists")
    return partitions, config


def _options(config: TopicConfig) -> dict[str, Any]:
    return {setting.name: getattr(config, setting.name) for setting, _, _ in kafka_values(config)}


def _create(server: ServerState, name: str, partitions: int, config: TopicConfig) -> None:
    server.engine.create_topic(name, partitions, **_options(config))


def _result(server: ServerState, cls: type, name: str, code: ErrorCode, message: str | None,
            partitions: int = -1, config: TopicConfig | None = None) -> Entity:
    result = part(cls, "CreatableTopicResult")
    configs = None
    if config is not None and has_field(result, "configs"):  # v5+
        entry = part(cls, "CreatableTopicConfigs")
        configs = tuple(
            build(entry, name=kafka, value=value, read_only=False, is_sensitive=False,
                  config_source=SOURCE_DEFAULT if is_default(setting, config) else SOURCE_TOPIC)
            for setting, kafka, value in kafka_values(config))
    return build(result, name=name, error_code=code, error_message=message,
                 topic_id=topic_id(server.cluster_id, name) if code == ErrorCode.none
                 else ZERO_UUID,
                 num_partitions=partitions, replication_factor=1 if partitions != -1 else -1,
                 configs=configs)
