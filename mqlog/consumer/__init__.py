"""Reading side: consumers, consumer groups, committed offsets and queue groups.

The clients layer: it uses the storage engine (``mqlog.logstore.Engine``)
and nothing private of it. Everything above (the ``Log`` session, the CLI,
servers) uses the names exported here and the public ``admin`` module.
"""

from mqlog.consumer import admin
from mqlog.consumer._config import ConsumerConfig, TopicPartition, check_timeout
from mqlog.consumer._consumer import Consumer
from mqlog.consumer._group import is_queue_group
from mqlog.consumer._membership import GroupMembership
from mqlog.consumer._membership_messages import (
    HeartbeatResult,
    JoinResult,
    MembershipListener,
    MemberSubscription,
    SyncResult,
)
from mqlog.consumer._offsets import OFFSETS_TOPIC, committed_end_floor, offset_store
from mqlog.consumer._queue import (
    QueueConsumer,
    QueueMessage,
    check_dead_letter_topic,
    dead_letter_origin,
    describe_queue,
    redrive,
)
from mqlog.consumer.admin import (
    GroupDescription,
    GroupPartitionDescription,
    MemberDescription,
)

__all__ = [
    "OFFSETS_TOPIC",
    "Consumer",
    "ConsumerConfig",
    "GroupDescription",
    "GroupMembership",
    "GroupPartitionDescription",
    "HeartbeatResult",
    "JoinResult",
    "MemberDescription",
    "MemberSubscription",
    "MembershipListener",
    "QueueConsumer",
    "QueueMessage",
    "SyncResult",
    "TopicPartition",
    "admin",
    "check_dead_letter_topic",
    "check_timeout",
    "committed_end_floor",
    "dead_letter_origin",
    "describe_queue",
    "is_queue_group",
    "offset_store",
    "redrive",
]
