"""Kafka group requests as kio entities, and a way to call a handler with one
(the response is encoded too, so a field of the wrong kind fails here)."""

from __future__ import annotations

import asyncio
import datetime
import io
import struct
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kio.index import load_request_schema
from kio.schema.consumer_protocol_assignment.v1.data import (
    ConsumerProtocolAssignment,
)
from kio.schema.consumer_protocol_assignment.v1.data import TopicPartition as Assigned
from kio.schema.consumer_protocol_subscription.v1.data import ConsumerProtocolSubscription
from kio.serial import entity_writer

from mqlog.server.kafka._codec import Request, encode_response, part
from mqlog.server.kafka._context import ServerState
from mqlog.server.kafka._group_admin import delete_groups, describe_groups, list_groups
from mqlog.server.kafka._group_handlers import (
    find_coordinator,
    heartbeat,
    join_group,
    leave_group,
    sync_group,
)
from mqlog.server.kafka._offset_commit import offset_commit
from mqlog.server.kafka._offset_fetch import offset_fetch

JOIN, SYNC, HEARTBEAT, LEAVE, COMMIT, FETCH = 11, 14, 12, 13, 8, 9
FIND, DESCRIBE, LIST, DELETE = 10, 15, 16, 42
HANDLERS: dict[int, Callable[[ServerState, Request], Awaitable[Any]]] = {
    JOIN: join_group, SYNC: sync_group, HEARTBEAT: heartbeat, LEAVE: leave_group,
    COMMIT: offset_commit, FETCH: offset_fetch, FIND: find_coordinator,
    DESCRIBE: describe_groups, LIST: list_groups, DELETE: delete_groups,
}


def subscription(*topics: str) -> bytes:
    out = io.BytesIO()
    out.write(struct.pack(">h", 1))
    entity_writer(ConsumerProtocolSubscription)(out, ConsumerProtocolSubscription(
        topics=topics, user_data=None, owned_partitions=()))
    return out.getvalue()


def assignment(partitions: Iterable[tuple[str, int]]) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for topic, number in partitions:
        by_topic.setdefault(topic, []).append(number)
    out = io.BytesIO()
    out.write(struct.pack(">h", 1))
    entity_writer(ConsumerProtocolAssignment)(out, ConsumerProtocolAssignment(
        assigned_partitions=tuple(Assigned(topic=t, partitions=tuple(n))
                                  for t, n in by_topic.items()), user_data=None))
    return out.getvalue()


def body(api_key: int, version: int, **fields: Any) -> Any:
    return load_request_schema(api_key, version)(**fields)


def nested(api_key: int, version: int, entity: str, **fields: Any) -> Any:
    return part(load_request_schema(api_key, version), entity)(**fields)


async def call(server: ServerState, api_key: int, version: int, client_id: str = "client",
               **fields: Any) -> Any:
    request = Request(api_key, version, 7, client_id, body(api_key, version, **fields))
    response = await HANDLERS[api_key](server, request)
    encode_response(api_key, version, 7, response)
    return response


def join_request(group: str, member_id: str = "", topics: tuple[str, ...] = ("t",),
                 protocols: tuple[str, ...] = ("range",), session_ms: int = 10_000,
                 rebalance_ms: int = 20_000, instance_id: str | None = None,
                 protocol_type: str = "consumer") -> dict[str, Any]:
    """The fields of a JoinGroup v5 request."""
    return dict(
        group_id=group, member_id=member_id, protocol_type=protocol_type,
        session_timeout=datetime.timedelta(milliseconds=session_ms),
        rebalance_timeout=datetime.timedelta(milliseconds=rebalance_ms),
        group_instance_id=instance_id,
        protocols=tuple(nested(JOIN, 5, "JoinGroupRequestProtocol", name=name,
                               metadata=subscription(*topics)) for name in protocols))


async def settle(predicate: Callable[[], bool], what: str) -> None:
    """Let the event loop (and the threads of the coordinator's file work) run
    until ``predicate`` holds; a test bug if it never does."""
    for _ in range(4000):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never happened: {what}")
