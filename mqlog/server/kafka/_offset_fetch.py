"""OffsetFetch and OffsetDelete: mqlog's committed offsets, whoever committed
them (Kafka clients, embedded consumers, ``mqlog seek``).

OffsetFetch answers -1 (and empty metadata) for a partition the group has no
offset for, as Kafka does; with no topics named (null) it answers every
offset the group committed. OffsetDelete is ``admin.delete_offsets``, refused
per partition with GROUP_SUBSCRIBED_TO_TOPIC while a live member owns a
partition of the topic.
"""

from __future__ import annotations

import asyncio
import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from mqlog.consumer import TopicPartition, admin, offset_store
from mqlog.errors import GroupNotEmptyError, MqlogError, UnknownGroupError
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState

NO_THROTTLE = datetime.timedelta(0)


async def offset_fetch(server: ServerState, request: Request) -> Entity:
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    store = await asyncio.to_thread(offset_store, server.engine)  # may create its topic
    if hasattr(body, "groups"):  # v8+: several groups
        group_cls = part(cls, "OffsetFetchResponseGroup")
        groups = []
        for asked in body.groups:
            committed = await asyncio.to_thread(store.group_offsets, asked.group_id)
            groups.append(build(group_cls, group_id=asked.group_id, error_code=ErrorCode.none,
                                topics=_topics(cls, "s", asked.topics, committed)))
        return build(cls, throttle_time=NO_THROTTLE, groups=tuple(groups))
    committed = await asyncio.to_thread(store.group_offsets, body.group_id)
    return build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                 topics=_topics(cls, "", body.topics, committed))


def _topics(cls: type, plural: str, asked: Iterable[Entity] | None,
            committed: Mapping[TopicPartition, Any]) -> tuple[Entity, ...]:
    """The response's topics for the ``asked`` topics (None: every committed one);
    ``plural`` is the suffix v8+ gives its entity names."""
    wanted: dict[str, list[int]] = defaultdict(list)
    if asked is None:
        for tp in sorted(committed):
            wanted[tp.topic].append(tp.partition)
    else:
        for topic in asked:
            wanted[topic.name].extend(int(p) for p in topic.partition_indexes)
    topic_cls = part(cls, f"OffsetFetchResponseTopic{plural}")
    partition_cls = part(cls, f"OffsetFetchResponsePartition{plural}")
    out = []
    for name, numbers in wanted.items():
        partitions = []
        for number in numbers:
            value = committed.get(TopicPartition(name, number))
            partitions.append(build(
                partition_cls, partition_index=number,
                committed_offset=-1 if value is None else value.offset,
                committed_leader_epoch=-1, metadata="" if value is None else value.metadata,
                error_code=ErrorCode.none))
        out.append(build(topic_cls, name=name, partitions=tuple(partitions)))
    return tuple(out)


async def offset_delete(server: ServerState, request: Request) -> Entity:
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    topic_cls = part(cls, "OffsetDeleteResponseTopic")
    partition_cls = part(cls, "OffsetDeleteResponsePartition")
    error = ErrorCode.none
    topics = []
    for topic in body.topics:
        numbers = [p.partition_index for p in topic.partitions]
        code = ErrorCode.none
        try:
            await asyncio.to_thread(admin.delete_offsets, server.engine, body.group_id,
                                    topic.name, numbers)
        except UnknownGroupError:
            error = ErrorCode.group_id_not_found
        except GroupNotEmptyError:
            code = ErrorCode.group_subscribed_to_topic
        except MqlogError:
            error = ErrorCode.invalid_group_id
        topics.append(build(topic_cls, name=topic.name, partitions=tuple(
            build(partition_cls, partition_index=number, error_code=code)
            for number in numbers)))
    if error != ErrorCode.none:
        topics = []
    return build(cls, throttle_time=NO_THROTTLE, error_code=error, topics=tuple(topics))
