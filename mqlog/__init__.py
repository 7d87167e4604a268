"""mqlog: a Kafka-style partitioned log for Python, embedded and multi-process.

    import mqlog

    with mqlog.open("data") as log:
        log.create_topic("orders", partitions=4)
        first = log.append("orders", 0, [b"one", b"two"])
        for record in log.read("orders", 0, first):
            print(record.offset, record.value)
"""

from mqlog.errors import (
    ConfigError,
    CorruptRecordError,
    InvalidTopicError,
    LogClosedError,
    MqlogError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)
from mqlog.logstore import (
    Log,
    PartitionDescription,
    Record,
    TopicConfig,
    TopicDescription,
    open,
)
from mqlog.producer import BatchDelivery, Delivery, Producer, RecordMetadata

__version__ = "0.1.0"

__all__ = [
    "BatchDelivery",
    "Delivery",
    "ConfigError",
    "CorruptRecordError",
    "InvalidTopicError",
    "Log",
    "LogClosedError",
    "MqlogError",
    "OffsetOutOfRangeError",
    "PartitionDescription",
    "Producer",
    "Record",
    "RecordMetadata",
    "RecordTooLargeError",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "open",
]
