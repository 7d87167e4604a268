"""Metadata (key 3, v0-v12): the one broker, and the topics with their partitions.

This server is the only broker (``server.node_id`` at the advertised
address), the controller, and the leader of every partition, with itself as
the only replica. Topics whose names start ``__`` are mqlog's internal ones
(committed offsets, replies) and are flagged ``is_internal``. A missing topic
is created when the request allows it (v4+: ``allow_auto_topic_creation``;
before v4 always) and the server's ``auto_create_topics`` is on, with
``default_partitions`` partitions; otherwise it is answered
UNKNOWN_TOPIC_OR_PARTITION. Internal names are never auto-created.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid

from kio.schema.errors import ErrorCode

from mqlog.errors import MqlogError, TopicExistsError
from mqlog.names import INTERNAL_PREFIX
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._errors import error_code
from mqlog.server.kafka._settings import settings
from mqlog.server.kafka._topic_ids import ZERO_UUID, topic_for_id, topic_id

API_KEY = 3
MIN_VERSION = 0
MAX_VERSION = 12

#: "Not requested" for the authorized-operations fields (no ACLs here).
_NO_OPERATIONS = -2147483648


def is_internal(topic: str) -> bool:
    """Whether ``topic`` is one of mqlog's internal topics."""
    return topic.startswith(INTERNAL_PREFIX)


async def handle(server: ServerState, request: Request) -> Entity:
    """Brokers and the topics asked for (all of them when the request says so)."""
    body = request.body
    version = request.api_version
    cls = response_type(API_KEY, version)
    if body.topics is None or (version == 0 and not body.topics):
        wanted: list[tuple[str | None, uuid.UUID | None]] = [
            (name, None) for name in server.engine.topics()]
    else:
        wanted = [(topic.name, getattr(topic, "topic_id", None)) for topic in body.topics]
    create = settings(server).auto_create_topics and getattr(
        body, "allow_auto_topic_creation", True)
    topics = [await _topic(server, cls, name, wanted_id, create) for name, wanted_id in wanted]
    broker = part(cls, "MetadataResponseBroker")(
        node_id=server.node_id, host=server.host, port=server.port)
    return build(cls, throttle_time=datetime.timedelta(0), brokers=(broker,),
                 cluster_id=server.cluster_id, controller_id=server.node_id,
                 topics=tuple(topics), cluster_authorized_operations=_NO_OPERATIONS)


async def _topic(server: ServerState, cls: type, name: str | None,
                 wanted_id: uuid.UUID | None, create: bool) -> Entity:
    """One topic's entry: its partitions, or the error that stands for it."""
    if name is None:  # v10+: asked by id
        name = topic_for_id(server.engine, server.cluster_id, wanted_id or ZERO_UUID)
        if name is None:
            return _error_topic(cls, None, wanted_id or ZERO_UUID, ErrorCode.unknown_topic_id)
    try:
        if not server.engine.has_topic(name):
            if not create or is_internal(name):
                return _error_topic(cls, name, ZERO_UUID, ErrorCode.unknown_topic_or_partition)
            await _create(server, name)
        count = server.engine.partition_count(name)
    except MqlogError as error:  # an invalid name, a topic deleted meanwhile
        return _error_topic(cls, name, ZERO_UUID, error_code(error))
    entry = part(cls, "MetadataResponsePartition")
    nodes = (server.node_id,)
    partitions = tuple(
        build(entry, error_code=ErrorCode.none, partition_index=number,
              leader_id=server.node_id, leader_epoch=0, replica_nodes=nodes, isr_nodes=nodes,
              offline_replicas=())
        for number in range(count))
    return build(part(cls, "MetadataResponseTopic"), error_code=ErrorCode.none, name=name,
                 topic_id=topic_id(server.cluster_id, name), is_internal=is_internal(name),
                 partitions=partitions, topic_authorized_operations=_NO_OPERATIONS)


async def _create(server: ServerState, name: str) -> None:
    """Create ``name`` with the default partition count (a concurrent creation
    of the same topic, by another request or process, is as good)."""
    partitions = settings(server).default_partitions
    try:
        await asyncio.to_thread(server.engine.create_topic, name, partitions)
    except TopicExistsError:
        pass


def _error_topic(cls: type, name: str | None, wanted_id: uuid.UUID,
                 code: ErrorCode) -> Entity:
    return build(part(cls, "MetadataResponseTopic"), error_code=code, name=name,
                 topic_id=wanted_id, is_internal=False, partitions=(),
                 topic_authorized_operations=_NO_OPERATIONS)
