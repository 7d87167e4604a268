"""GET /groups and GET /groups/{group}: consumer groups and queue groups with their
lag.

The figures are ``Log.describe_group``'s (and, for a queue group's depth,
``Log.describe_queue``'s), summed as ``mqlog.monitor`` defines them: a
consumer group's lag in a partition counts the offsets from its committed
offset (or the log start) to the end; a queue group's counts the records not
finished yet (ready, in flight or delayed). A group's ``lag`` is the sum over
its partitions. ``members`` is a count in the list and the members themselves
in a group's description.
"""

from __future__ import annotations

from typing import Literal, cast

import pydantic
from fastapi import APIRouter, Request

from mqlog import monitor
from mqlog.server.http._log_api import log_of

router = APIRouter(tags=["log"])

GroupKind = Literal["consumer", "queue"]


class GroupSummary(pydantic.BaseModel):
    group: str
    kind: GroupKind
    #: "Empty", "Stable" or "Rebalancing".
    state: str
    #: Live members (queue groups: workers).
    members: int
    lag: int


class GroupList(pydantic.BaseModel):
    groups: list[GroupSummary]


class AssignedPartition(pydantic.BaseModel):
    topic: str
    partition: int


class Member(pydantic.BaseModel):
    member_id: str
    client_id: str
    host: str
    pid: int
    #: What the member owns (queue groups: every partition, shared by all workers).
    assignment: list[AssignedPartition]


class GroupPartition(pydantic.BaseModel):
    topic: str
    partition: int
    #: Consumer group: the committed offset (null: none). Queue group: its position,
    #: the first record not finished.
    committed_offset: int | None
    end_offset: int
    lag: int
    oldest_unconsumed_age_ms: int | None
    #: The member owning the partition (consumer groups), if any.
    member_id: str | None


class QueuePartition(pydantic.BaseModel):
    """A queue group's depth in one partition (``Log.describe_queue``)."""

    topic: str
    partition: int
    position: int
    end_offset: int
    lag: int
    ready: int
    in_flight: int
    delayed: int
    expired: int
    dead_lettered: int
    corrupt: int


class GroupInfo(pydantic.BaseModel):
    group: str
    kind: GroupKind
    state: str
    generation: int
    members: list[Member]
    lag: int
    partitions: list[GroupPartition]
    #: Queue groups only (null for a consumer group).
    queue: list[QueuePartition] | None


@router.get("/groups", response_model=GroupList, summary="List the groups with their lag")
async def list_groups(request: Request) -> GroupList:
    """Every consumer group and queue group: kind, state, live members, total lag."""
    sample = monitor.sample_lag(log_of(request))
    return GroupList(groups=[
        GroupSummary(group=group.group, kind=_kind(group.kind), state=group.state,
                     members=group.members, lag=group.total_lag)
        for group in sample.groups])


@router.get("/groups/{group}", response_model=GroupInfo, summary="Describe a group")
async def describe_group(request: Request, group: str) -> GroupInfo:
    """Members, per-partition offsets and lag; a queue group's depth per partition."""
    log = log_of(request)
    description = log.describe_group(group)
    queue = None
    if description.kind == "queue":
        queue = [QueuePartition(topic=row.topic, partition=row.partition, position=row.position,
                                end_offset=row.end_offset, lag=row.lag, ready=row.ready,
                                in_flight=row.in_flight, delayed=row.delayed,
                                expired=row.expired, dead_lettered=row.dead_lettered,
                                corrupt=row.corrupt)
                 for row in log.describe_queue(group)]
    return GroupInfo(
        group=description.group, kind=_kind(description.kind), state=description.state,
        generation=description.generation, lag=monitor.group_lag(description).total_lag,
        members=[Member(member_id=m.member_id, client_id=m.client_id, host=m.host, pid=m.pid,
                        assignment=[AssignedPartition(topic=tp.topic, partition=tp.partition)
                                    for tp in m.assignment])
                 for m in description.members],
        partitions=[GroupPartition(topic=p.topic, partition=p.partition,
                                   committed_offset=p.committed_offset,
                                   end_offset=p.end_offset, lag=p.lag,
                                   oldest_unconsumed_age_ms=p.oldest_unconsumed_age_ms,
                                   member_id=p.member_id)
                    for p in description.partitions],
        queue=queue)


def _kind(kind: str) -> GroupKind:
    """GroupDescription.kind, one of its two values (the model checks it)."""
    return cast(GroupKind, kind)
