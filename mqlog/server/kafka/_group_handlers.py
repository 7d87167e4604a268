"""Handlers of Kafka's group membership APIs: FindCoordinator, JoinGroup,
SyncGroup, Heartbeat, LeaveGroup. They translate between kio entities and the
group coordinator (``_group_coordinator``), which holds the state.

This server is the coordinator of every group. Any version of these APIs that
kio describes decodes; fields a version lacks are dropped by ``build``.
"""

from __future__ import annotations

import datetime

from kio.schema.errors import ErrorCode

from mqlog.server.kafka._codec import Entity, Request, build, part, response_type
from mqlog.server.kafka._context import CLIENT_ADDRESS, ServerState
from mqlog.server.kafka._group_coordinator import GroupCoordinator
from mqlog.server.kafka._lifecycle import on_shutdown

NO_THROTTLE = datetime.timedelta(0)


def coordinator(server: ServerState) -> GroupCoordinator:
    """The server's group coordinator, created on first use."""
    found = server.extensions.get("groups")
    if found is None:
        found = server.extensions["groups"] = GroupCoordinator(server.engine)
        on_shutdown(server, found.close)  # members leave: their files and locks go
    return found


def client_host(request: Request) -> str:
    """The address of the client that sent ``request``, as Kafka reports a
    member's host (``/127.0.0.1``), or "" when the connection did not tell."""
    address = CLIENT_ADDRESS.get()
    return f"/{address}" if address else ""


def _ms(value: datetime.timedelta | int) -> int:
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


async def find_coordinator(server: ServerState, request: Request) -> Entity:
    """This broker, for every key: a group's, and a transactional id's too, so a
    transactional producer goes on to InitProducerId and gets its fatal error
    there (``_producer_id``) rather than retrying a coordinator lookup forever."""
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    found = dict(error_code=ErrorCode.none, error_message=None, node_id=server.node_id,
                 host=server.host, port=server.port)
    if hasattr(body, "coordinator_keys"):  # v4+: a batch of keys
        entry = part(cls, "Coordinator")
        return build(cls, throttle_time=NO_THROTTLE, coordinators=tuple(
            build(entry, key=key, **found) for key in body.coordinator_keys))
    return build(cls, throttle_time=NO_THROTTLE, **found)


async def join_group(server: ServerState, request: Request) -> Entity:
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    session_ms = _ms(body.session_timeout)
    rebalance_ms = _ms(getattr(body, "rebalance_timeout", session_ms))
    outcome = await coordinator(server).join(
        body.group_id, body.member_id, client_id=request.client_id,
        client_host=client_host(request), protocol_type=body.protocol_type,
        protocols=tuple((p.name, bytes(p.metadata)) for p in body.protocols),
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms if rebalance_ms > 0 else session_ms,
        instance_id=getattr(body, "group_instance_id", None))
    member = part(cls, "JoinGroupResponseMember")
    return build(
        cls, throttle_time=NO_THROTTLE, error_code=outcome.error,
        generation_id=outcome.generation, protocol_type=outcome.protocol_type,
        protocol_name=outcome.protocol or ("" if request.api_version < 7 else None),
        leader=outcome.leader, skip_assignment=outcome.skip_assignment,
        member_id=outcome.member_id,
        members=tuple(build(member, member_id=member_id, group_instance_id=instance_id,
                            metadata=metadata)
                      for member_id, instance_id, metadata in outcome.members))


async def sync_group(server: ServerState, request: Request) -> Entity:
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    outcome = await coordinator(server).sync(
        body.group_id, body.member_id, body.generation_id,
        {a.member_id: bytes(a.assignment) for a in body.assignments},
        getattr(body, "group_instance_id", None))
    return build(cls, throttle_time=NO_THROTTLE, error_code=outcome.error,
                 protocol_type=outcome.protocol_type, protocol_name=outcome.protocol,
                 assignment=outcome.assignment)


async def heartbeat(server: ServerState, request: Request) -> Entity:
    body = request.body
    error = await coordinator(server).heartbeat(body.group_id, body.member_id,
                                                body.generation_id,
                                                getattr(body, "group_instance_id", None))
    return build(response_type(request.api_key, request.api_version),
                 throttle_time=NO_THROTTLE, error_code=error)


async def leave_group(server: ServerState, request: Request) -> Entity:
    body = request.body
    cls = response_type(request.api_key, request.api_version)
    if not hasattr(body, "members"):  # v0-2: one member
        (error,) = await coordinator(server).leave(body.group_id, [body.member_id])
        return build(cls, throttle_time=NO_THROTTLE, error_code=error)
    ids = [m.member_id for m in body.members]
    errors = await coordinator(server).leave(body.group_id, ids,
                                             [m.group_instance_id for m in body.members])
    entry = part(cls, "MemberResponse")
    return build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none, members=tuple(
        build(entry, member_id=member_id, group_instance_id=m.group_instance_id,
              error_code=error)
        for member_id, m, error in zip(ids, body.members, errors, strict=True)))
