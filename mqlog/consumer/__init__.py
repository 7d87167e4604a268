"""Reading side: consumers, consumer groups, committed offsets and queue groups."""

from mqlog.consumer._config import ConsumerConfig, TopicPartition
from mqlog.consumer._consumer import Consumer
from mqlog.consumer._dead_letters import DeadLetter
from mqlog.consumer._pending import PendingMessage, PendingPartition, PendingSummary
from mqlog.consumer._queue import QueueConsumer, QueueMessage
from mqlog.consumer._receipts import ReceivedMessage

__all__ = ["Consumer", "ConsumerConfig", "DeadLetter", "PendingMessage", "PendingPartition",
           "PendingSummary", "QueueConsumer", "QueueMessage", "ReceivedMessage", "TopicPartition"]
