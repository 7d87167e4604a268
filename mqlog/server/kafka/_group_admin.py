"""DescribeGroups, ListGroups, DeleteGroups: every consumer group of the log,
whoever formed it.

A group whose members are Kafka clients is shown as the coordinator holds it
(Kafka's states, the members' metadata and assignment bytes as sent). Any
other consumer group of the log (embedded consumers, or only committed
offsets) is shown through ``mqlog.consumer.admin``: its state (Empty, Stable,
or PreparingRebalance for mqlog's Rebalancing), its members with their
assignment encoded in the consumer protocol, so Kafka's admin tools read it.
Queue groups are not Kafka consumer groups and are not listed.
"""

from __future__ import annotations

import asyncio
import datetime

from kio.schema.errors import ErrorCode

from mqlog.consumer import GroupDescription, admin, is_queue_group
from mqlog.errors import ConfigError, GroupNotEmptyError, UnknownGroupError
from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._group_handlers import coordinator
from mqlog.server.kafka._group_protocol import (
    CONSUMER_PROTOCOL_TYPE,
    encode_assignment,
    encode_subscription,
)
from mqlog.server.kafka._group_state import EMPTY, PREPARING, GroupSnapshot, MemberSnapshot

NO_THROTTLE = datetime.timedelta(0)
#: Kafka's state of a group that does not exist.
DEAD = "Dead"
_STATES = {"Empty": EMPTY, "Stable": "Stable", "Rebalancing": PREPARING}


async def describe_groups(server: ServerState, request: Request) -> Entity:
    cls = response_type(request.api_key, request.api_version)
    group_cls, member_cls = part(cls, "DescribedGroup"), part(cls, "DescribedGroupMember")
    described = []
    for name in request.body.groups:
        snapshot, error = await _snapshot(server, name)
        if snapshot is None:
            snapshot = GroupSnapshot(name, DEAD, "", "", ())
        described.append(build(
            group_cls, error_code=error, error_message=None, group_id=name,
            group_state=snapshot.state, protocol_type=snapshot.protocol_type,
            protocol_data=snapshot.protocol, authorized_operations=-2147483648,
            members=tuple(build(member_cls, member_id=m.member_id,
                                group_instance_id=m.instance_id,
                                client_id=m.client_id, client_host=m.client_host,
                                member_metadata=m.metadata, member_assignment=m.assignment)
                          for m in snapshot.members)))
    return build(cls, throttle_time=NO_THROTTLE, groups=tuple(described))


async def _snapshot(server: ServerState, name: str) -> tuple[GroupSnapshot | None, ErrorCode]:
    """The group as Kafka shows it: the coordinator's while Kafka clients are its
    members, else mqlog's description (None: no such group)."""
    held = coordinator(server).snapshot(name)
    if held is not None and held.members:
        return held, ErrorCode.none
    try:
        if is_queue_group(server.engine, name):
            return None, ErrorCode.none
        description = await asyncio.to_thread(admin.describe_group, server.engine, name)
    except UnknownGroupError:
        return None, ErrorCode.none
    except ConfigError:
        return None, ErrorCode.invalid_group_id
    return _from_mqlog(description), ErrorCode.none


def _from_mqlog(description: GroupDescription) -> GroupSnapshot:
    members = tuple(
        MemberSnapshot(m.member_id, m.client_id, m.host if m.pid == 0 else f"{m.host} pid {m.pid}",
                       encode_subscription(tp.topic for tp in m.assignment),
                       encode_assignment(m.assignment))
        for m in description.members)
    return GroupSnapshot(description.group, _STATES.get(description.state, description.state),
                         CONSUMER_PROTOCOL_TYPE, "", members)


async def list_groups(server: ServerState, request: Request) -> Entity:
    cls = response_type(request.api_key, request.api_version)
    body = request.body
    wanted_states = set(getattr(body, "states_filter", ()) or ())
    wanted_types = set(getattr(body, "types_filter", ()) or ())
    names = set(await asyncio.to_thread(admin.list_groups, server.engine))
    names.update(s.group for s in coordinator(server).snapshots() if s.members)
    listed = []
    for name in sorted(names):
        snapshot, _error = await _snapshot(server, name)
        if snapshot is None:
            continue  # a queue group, or deleted meanwhile
        if wanted_states and snapshot.state not in wanted_states:
            continue
        if wanted_types and "classic" not in {t.lower() for t in wanted_types}:
            continue
        listed.append(build(part(cls, "ListedGroup"), group_id=name,
                            protocol_type=snapshot.protocol_type, group_state=snapshot.state,
                            group_type="classic"))
    return build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                 groups=tuple(listed))


async def delete_groups(server: ServerState, request: Request) -> Entity:
    cls = response_type(request.api_key, request.api_version)
    results = []
    for name in request.body.groups_names:
        results.append(build(part(cls, "DeletableGroupResult"), group_id=name,
                             error_code=await _delete(server, name)))
    return build(cls, throttle_time=NO_THROTTLE, results=tuple(results))


async def _delete(server: ServerState, name: str) -> ErrorCode:
    groups = coordinator(server)
    if not groups.forget(name):
        return ErrorCode.non_empty_group
    try:
        if is_queue_group(server.engine, name):
            return ErrorCode.group_id_not_found
        await asyncio.to_thread(admin.delete_group, server.engine, name)
    except UnknownGroupError:
        return ErrorCode.group_id_not_found
    except GroupNotEmptyError:
        return ErrorCode.non_empty_group
    except ConfigError:
        return ErrorCode.invalid_group_id
    return ErrorCode.none
