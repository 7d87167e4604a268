"""Reading side: consumers, consumer groups, committed offsets and queue groups.

The clients layer: it uses the storage engine (``mqlog.logstore.Engine``)
and nothing private of it. Everything above (the ``Log`` session, the CLI,
servers) uses the names exported here and the public ``admin`` module.
"""

from mqlog.consumer import admin
from mqlog.consumer._config import ConsumerConfig, TopicPartition, check_timeout
from mqlog.consumer._consumer import Consumer
from mqlog.consumer._dead_letters import (
    DeadLetter,
    dead_letter_at,
    dead_letters,
    purge_dead_letters,
    redrive,
)
from mqlog.consumer._end_floor import consumed_end_floor
from mqlog.consumer._group import is_queue_group
from mqlog.consumer._membership import GroupMembership
from mqlog.consumer._membership_messages import (
    HeartbeatResult,
    JoinResult,
    MembershipListener,
    MemberSubscription,
    SyncResult,
)
from mqlog.consumer._offsets import OFFSETS_TOPIC, offset_store
from mqlog.consumer._open_share_states import OpenShareStates
from mqlog.consumer._pending import (
    PendingMessage,
    PendingPartition,
    PendingSummary,
    pending,
    pending_summary,
)
from mqlog.consumer._queue import QueueConsumer, QueueMessage
from mqlog.consumer._queue_views import (
    QueuePartitionDescription,
    check_dead_letter_topic,
    dead_letter_origin,
    describe_queue,
    next_ready_ms,
)
from mqlog.consumer._receipts import (
    ReceivedMessage,
    ack_receipts,
    extend_receipt,
    nack_receipt,
    receive_with_receipts,
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
    "DeadLetter",
    "GroupDescription",
    "GroupMembership",
    "GroupPartitionDescription",
    "HeartbeatResult",
    "JoinResult",
    "MemberDescription",
    "MemberSubscription",
    "MembershipListener",
    "OpenShareStates",
    "PendingMessage",
    "PendingPartition",
    "PendingSummary",
    "QueueConsumer",
    "QueueMessage",
    "QueuePartitionDescription",
    "ReceivedMessage",
    "SyncResult",
    "TopicPartition",
    "ack_receipts",
    "admin",
    "check_dead_letter_topic",
    "check_timeout",
    "consumed_end_floor",
    "dead_letter_at",
    "dead_letter_origin",
    "dead_letters",
    "describe_queue",
    "extend_receipt",
    "is_queue_group",
    "nack_receipt",
    "next_ready_ms",
    "offset_store",
    "pending",
    "pending_summary",
    "purge_dead_letters",
    "receive_with_receipts",
    "redrive",
]
