"""Reading side: consumers, consumer groups and committed offsets."""

from mqlog.consumer._config import ConsumerConfig, TopicPartition
from mqlog.consumer._consumer import Consumer

__all__ = ["Consumer", "ConsumerConfig", "TopicPartition"]
