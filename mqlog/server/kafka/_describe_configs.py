"""DescribeConfigs (key 32, v1-v4): topic configs under Kafka's names, and the broker's.

A topic resource (type 2) lists every TopicConfig field (see
``_topic_configs``), with source DYNAMIC_TOPIC_CONFIG where the topic sets
it apart from the default and DEFAULT_CONFIG elsewhere. The broker resource
(type 4, named by the node id or empty) lists the few server settings that
clients ask about, read-only. ``configuration_keys`` filters either. Other
resource types are answered INVALID_REQUEST, an unknown topic
UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

import datetime

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code, error_message
from mqlog.server.kafka._limits import limits_of
from mqlog.server.kafka._settings import settings
from mqlog.server.kafka._topic_configs import config_type, is_default, kafka_values

API_KEY = 32
MIN_VERSION = 1
MAX_VERSION = 4

TOPIC = 2
BROKER = 4
#: Kafka's ConfigSource codes.
_DYNAMIC_TOPIC = 1
_STATIC_BROKER = 4
_DEFAULT = 5
#: Kafka's ConfigType codes.
_BOOLEAN, _INT, _LONG = 1, 3, 5

#: One config as answered: (name, value, read only, source, type, documentation).
_Config = tuple[str, str, bool, int, int, str]


async def handle(server: ServerState, request: Request) -> Entity:
    """One result per resource asked for, in the request's order."""
    cls = response_type(API_KEY, request.api_version)
    results = [_describe(server, cls, resource, request.body.include_documentation
                         if request.api_version >= 3 else False)
               for resource in request.body.resources]
    return build(cls, throttle_time=datetime.timedelta(0), results=tuple(results))


def _describe(server: ServerState, cls: type, resource: Entity, documented: bool) -> Entity:
    result = part(cls, "DescribeConfigsResult")
    code, message, configs = ErrorCode.none, None, []
    try:
        if resource.resource_type == TOPIC:
            configs = _topic_configs(server, resource.resource_name)
        elif resource.resource_type == BROKER and resource.resource_name in (
                "", str(server.node_id)):
            configs = _broker_configs(server)
        else:
            code = ErrorCode.invalid_request
            message = (f"resource type {resource.resource_type} named "
                       f"{resource.resource_name!r}: only topics (2) and broker "
                       f"{server.node_id} (4) are described")
    except MqlogError as error:
        code, message = error_code(error), error_message(error)
    wanted = resource.configuration_keys
    entry = part(cls, "DescribeConfigsResourceResult")
    entries = tuple(
        build(entry, name=name, value=value, read_only=read_only, config_source=source,
              is_default=source == _DEFAULT, is_sensitive=False, synonyms=(),
              config_type=kind, documentation=doc if documented else None)
        for name, value, read_only, source, kind, doc in configs
        if not wanted or name in wanted)
    return build(result, error_code=code, error_message=message,
                 resource_type=resource.resource_type, resource_name=resource.resource_name,
                 configs=entries)


def _topic_configs(server: ServerState, topic: str) -> list[_Config]:
    config = server.engine.topic_config(topic)
    return [(name, value, False, _DEFAULT if is_default(setting, config) else _DYNAMIC_TOPIC,
             config_type(setting), setting.help)
            for setting, name, value in kafka_values(config)]


def _broker_configs(server: ServerState) -> list[_Config]:
    options, limits = settings(server), limits_of(server)
    return [
        ("broker.id", str(server.node_id), True, _STATIC_BROKER, _INT, "This server's node id."),
        ("auto.create.topics.enable", str(options.auto_create_topics).lower(), True,
         _STATIC_BROKER, _BOOLEAN, "Metadata requests may create missing topics."),
        ("num.partitions", str(options.default_partitions), True, _STATIC_BROKER, _INT,
         "Partitions of topics created without a count."),
        ("socket.request.max.bytes", str(limits.max_request_bytes), True, _STATIC_BROKER,
         _INT, "The largest request accepted."),
        ("max.connections", str(limits.max_connections), True, _STATIC_BROKER, _INT,
         "Client connections open at once."),
        ("connections.max.idle.ms", str(int(limits.idle_timeout_s * 1000)), True,
         _STATIC_BROKER, _LONG, "Idle connections are closed after this long."),
    ]
