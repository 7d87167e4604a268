"""The consumer protocol inside Kafka's group messages: what the server reads of
the bytes it relays.

A JoinGroup names protocols (assignors) with metadata bytes, a
``ConsumerProtocolSubscription``; the leader's SyncGroup carries one
``ConsumerProtocolAssignment`` per member. The server relays both unchanged;
it decodes them only to tell mqlog's group membership what each member
subscribes to and owns. Both begin with an int16 version; a version newer
than kio knows is read with the newest schema it has (fields are only ever
appended, so the older fields come first), as Kafka's ``ConsumerProtocol``
does.

Invariant: nothing here raises anything but :class:`ConsumerProtocolError`
on bad bytes.
"""

from __future__ import annotations

import io
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from kio.schema.consumer_protocol_assignment.v0.data import (
    ConsumerProtocolAssignment as AssignmentV0,
)
from kio.schema.consumer_protocol_assignment.v0.data import TopicPartition as AssignedV0
from kio.schema.consumer_protocol_assignment.v3.data import ConsumerProtocolAssignment
from kio.schema.consumer_protocol_subscription.v0.data import (
    ConsumerProtocolSubscription as SubscriptionV0,
)
from kio.schema.consumer_protocol_subscription.v3.data import ConsumerProtocolSubscription
from kio.schema.types import TopicName
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32

from mqlog.consumer import TopicPartition
from mqlog.errors import MqlogError

#: The only protocol type whose groups own partitions (Kafka's consumers).
CONSUMER_PROTOCOL_TYPE = "consumer"

#: Kafka assignor names -> the mqlog assignor that computes the placeholder
#: plan until the group's leader sends its assignment (see ``_group_coordinator``).
MQLOG_ASSIGNORS = {
    "range": "range",
    "roundrobin": "roundrobin",
    "sticky": "sticky",
    "cooperative-sticky": "sticky",
}

_VERSION = struct.Struct(">h")
_NEWEST = 3


class ConsumerProtocolError(MqlogError, ValueError):
    """Subscription or assignment bytes that do not decode."""


@cache
def _reader(kind: str, version: int) -> Any:
    module = f"kio.schema.consumer_protocol_{kind}.v{version}.data"
    name = "ConsumerProtocolSubscription" if kind == "subscription" else (
        "ConsumerProtocolAssignment")
    return entity_reader(getattr(__import__(module, fromlist=[name]), name))


def _decode(kind: str, data: bytes) -> Any:
    if len(data) < _VERSION.size:
        raise ConsumerProtocolError(f"consumer protocol {kind} of {len(data)} bytes")
    (version,) = _VERSION.unpack_from(data, 0)
    if version < 0:
        raise ConsumerProtocolError(f"consumer protocol {kind} version {version}")
    try:
        entity, _used = _reader(kind, min(version, _NEWEST))(data, _VERSION.size)
    except Exception as error:  # kio raises several kinds on bad bytes
        raise ConsumerProtocolError(
            f"consumer protocol {kind} v{version}: {type(error).__name__}: {error}") from error
    return entity


def subscribed_topics(metadata: bytes) -> list[str]:
    """The topics a member's subscription metadata names (sorted, distinct)."""
    subscription: ConsumerProtocolSubscription = _decode("subscription", metadata)
    return sorted(set(subscription.topics))


def assigned_partitions(assignment: bytes) -> list[TopicPartition]:
    """The partitions an assignment gives its member (empty bytes: none)."""
    if not assignment:
        return []
    decoded: ConsumerProtocolAssignment = _decode("assignment", assignment)
    return sorted({TopicPartition(topic.topic, int(number))
                   for topic in decoded.assigned_partitions for number in topic.partitions})


def encode_subscription(topics: Iterable[str]) -> bytes:
    """Version-0 subscription metadata naming ``topics`` (how the server shows
    the members of a group that no Kafka client formed)."""
    out = io.BytesIO()
    out.write(_VERSION.pack(0))
    _writer("subscription")(out, SubscriptionV0(topics=tuple(sorted(set(topics))),
                                                user_data=None))
    return out.getvalue()


def encode_assignment(partitions: Iterable[TopicPartition]) -> bytes:
    """Version-0 assignment bytes giving ``partitions``."""
    by_topic: dict[str, list[Any]] = {}
    for tp in sorted(partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    out = io.BytesIO()
    out.write(_VERSION.pack(0))
    _writer("assignment")(out, AssignmentV0(assigned_partitions=tuple(
        AssignedV0(topic=TopicName(topic), partitions=tuple(i32(n) for n in numbers))
        for topic, numbers in by_topic.items()),
        user_data=None))
    return out.getvalue()


@cache
def _writer(kind: str) -> Any:
    return entity_writer(SubscriptionV0 if kind == "subscription" else AssignmentV0)


def mqlog_assignors(protocols: Sequence[str]) -> list[str]:
    """mqlog assignor names for a member's Kafka protocols (preferred first); range
    when none is known: the placeholder plan it computes is replaced by the
    leader's assignment anyway."""
    names = [MQLOG_ASSIGNORS[name] for name in protocols if name in MQLOG_ASSIGNORS]
    return list(dict.fromkeys(names)) or ["range"]


def choose_protocol(preferences: Sequence[Sequence[str]]) -> str | None:
    """The protocol every member supports that most members prefer, as Kafka's
    coordinator picks it: each member votes for its most preferred protocol
    among the common ones; ties go to the one the first member prefers. None
    when the members have no protocol in common."""
    if not preferences:
        return None
    common = set(preferences[0]).intersection(*map(set, preferences[1:]))
    if not common:
        return None
    votes = Counter(next(name for name in names if name in common) for names in preferences)
    best = max(votes.values())
    return next(name for name in preferences[0] if name in common and votes[name] == best)
