"""Reading side: consumers, consumer groups, committed offsets and queue groups."""

from mqlog.consumer._config import ConsumerConfig, TopicPartition
from mqlog.consumer._consumer import Consumer
from mqlog.consumer._membership import GroupMembership
from mqlog.consumer._membership_messages import (
    HeartbeatResult,
    JoinResult,
    MembershipListener,
    MemberSubscription,
    SyncResult,
)
from mqlog.consumer._queue import QueueConsumer, QueueMessage

__all__ = [
    "Consumer",
    "ConsumerConfig",
    "GroupMembership",
    "HeartbeatResult",
    "JoinResult",
    "MemberSubscription",
    "MembershipListener",
    "QueueConsumer",
    "QueueMessage",
    "SyncResult",
    "TopicPartition",
]
