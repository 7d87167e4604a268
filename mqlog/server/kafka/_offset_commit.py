"""OffsetCommit: Kafka clients' commits are mqlog's committed offsets.

A member of a Kafka group commits through its :class:`~mqlog.consumer.GroupMembership`
(commit authority: its member id, its generation, and the owner lock of each
partition). A commit with no member id and generation -1 (a consumer that
uses ``assign()``, or an admin tool) goes straight to the offset store while
the group has no Kafka member, as Kafka accepts it of an empty group.

Each partition is checked first: an unknown topic or partition gets
UNKNOWN_TOPIC_OR_PARTITION, a negative offset INVALID_COMMIT_OFFSET_SIZE;
the others are committed together, in one atomic commit per metadata string
(clients send one string for all).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import defaultdict
from collections.abc import Mapping

from kio.schema.errors import ErrorCode

from mqlog.consumer import TopicPartition, is_queue_group, offset_store
from mqlog.errors import (
    CommitFailedError,
    ConfigError,
    IllegalGenerationError,
    UnknownMemberError,
)
from mqlog.logstore import Engine
from mqlog.names import validate_name
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._group_coordinator import GroupCoordinator
from mqlog.server.kafka._group_handlers import coordinator
from mqlog.server.kafka._group_state import COMPLETING, STABLE, Group, Member

log = logging.getLogger("mqlog.server.kafka.groups")


async def offset_commit(server: ServerState, request: Request) -> Entity:
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    generation = getattr(body, "generation_id_or_member_epoch",
                         getattr(body, "generation_id", -1))
    errors: dict[TopicPartition, ErrorCode] = {}
    by_metadata: dict[str, dict[TopicPartition, int]] = defaultdict(dict)
    for topic in body.topics:
        for p in topic.partitions:
            tp = TopicPartition(topic.name, p.partition_index)
            errors[tp] = _check(server.engine, tp, p.committed_offset)
            if errors[tp] == ErrorCode.none:
                by_metadata[p.committed_metadata or ""][tp] = int(p.committed_offset)
    for metadata, offsets in by_metadata.items():
        error = await commit(coordinator(server), server.engine, body.group_id,
                             body.member_id if hasattr(body, "member_id") else "",
                             generation, offsets, metadata,
                             getattr(body, "group_instance_id", None))
        errors.update(dict.fromkeys(offsets, error))
    topic_cls, partition_cls = part(cls, "OffsetCommitResponseTopic"), part(
        cls, "OffsetCommitResponsePartition")
    topics = tuple(
        build(topic_cls, name=topic.name, partitions=tuple(
            build(partition_cls, partition_index=p.partition_index,
                  error_code=errors[TopicPartition(topic.name, p.partition_index)])
            for p in topic.partitions))
        for topic in body.topics)
    return build(cls, throttle_time=datetime.timedelta(0), topics=topics)


def _check(engine: Engine, tp: TopicPartition, offset: int) -> ErrorCode:
    if not engine.has_topic(tp.topic) or not 0 <= tp.partition < engine.partition_count(
            tp.topic):
        return ErrorCode.unknown_topic_or_partition
    if offset < 0:
        return ErrorCode.invalid_commit_offset_size
    return ErrorCode.none


async def commit(groups: GroupCoordinator, engine: Engine, group_id: str, member_id: str,
                 generation: int, offsets: Mapping[TopicPartition, int],
                 metadata: str, instance_id: str | None = None) -> ErrorCode:
    """Commit checked ``offsets`` for ``group_id`` (see the module)."""
    group = groups.find(group_id)
    if generation < 0 and not member_id:
        if group is not None and group.members:
            return ErrorCode.unknown_member_id
        try:
            if is_queue_group(engine, validate_name("group", group_id)):
                return ErrorCode.invalid_group_id
        except ConfigError:
            return ErrorCode.invalid_group_id
        await asyncio.to_thread(offset_store(engine).commit, group_id, offsets, "", metadata)
        return ErrorCode.none
    if group is None:
        return ErrorCode.unknown_member_id
    return await asyncio.shield(_commit(group, member_id, generation, offsets, metadata,
                                        instance_id))


async def _commit(group: Group, member_id: str, generation: int,
                  offsets: Mapping[TopicPartition, int], metadata: str,
                  instance_id: str | None) -> ErrorCode:
    async with group.lock:
        if group.fenced(member_id, instance_id):
            return ErrorCode.fenced_instance_id
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if group.state == COMPLETING:
            return ErrorCode.rebalance_in_progress
        try:
            await asyncio.to_thread(_commit_as_owner, member, generation, offsets, metadata)
        except UnknownMemberError:
            return ErrorCode.unknown_member_id
        except IllegalGenerationError:
            return ErrorCode.illegal_generation
        except CommitFailedError as error:
            log.info("group %s: commit refused: %s", group.name, error)
            return (ErrorCode.illegal_generation if group.state == STABLE
                    else ErrorCode.rebalance_in_progress)
        return ErrorCode.none


def _commit_as_owner(member: Member, generation: int, offsets: Mapping[TopicPartition, int],
                     metadata: str) -> None:
    """Commit through the membership; a partition assigned but not taken yet (its
    previous owner let go only now) is taken by a heartbeat, then it commits."""
    try:
        member.membership.commit(member.mqlog_id, generation, offsets, metadata)
    except (UnknownMemberError, IllegalGenerationError):
        raise
    except CommitFailedError:
        if not set(offsets) <= member.wanted:
            raise
        member.membership.heartbeat(member.mqlog_id, generation)
        member.membership.commit(member.mqlog_id, generation, offsets, metadata)
