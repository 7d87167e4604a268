"""Reading side: consumers, consumer groups, committed offsets and queue groups."""

from mqlog.consumer._config import ConsumerConfig, TopicPartition
from mqlog.consumer._consumer import Consumer
from mqlog.consumer._queue import QueueConsumer, QueueMessage

__all__ = ["Consumer", "ConsumerConfig", "QueueConsumer", "QueueMessage", "TopicPartition"]
