"""mqlog: a Kafka-style partitioned log for Python, embedded and multi-process.

    import mqlog

    with mqlog.open("data") as log:
        log.create_topic("orders", partitions=4)
        first = log.append("orders", 0, [b"one", b"two"])
        for record in log.read("orders", 0, first):
            print(record.offset, record.value)
"""

from mqlog.consumer import (
    Consumer,
    ConsumerConfig,
    DeadLetter,
    PendingMessage,
    PendingPartition,
    PendingSummary,
    QueueConsumer,
    QueueMessage,
    ReceivedMessage,
    TopicPartition,
)
from mqlog.errors import (
    CommitFailedError,
    ConfigError,
    CorruptMetadataError,
    CorruptRecordError,
    DeliveryLostError,
    DiskFullError,
    GroupNotEmptyError,
    IllegalStateError,
    InvalidProducerEpochError,
    InvalidTopicError,
    LogClosedError,
    MqlogError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    ProducerSequenceError,
    ReadOnlyError,
    RecordTooLargeError,
    RemoteHandlerError,
    StorageFailedError,
    TopicExistsError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from mqlog.logstore import (
    Log,
    Message,
    PartitionDescription,
    ProducerBatch,
    Record,
    RecordColumns,
    TopicConfig,
    TopicDescription,
    open,
)
from mqlog.producer import BatchDelivery, Delivery, Producer, ProducerConfig, RecordMetadata

__version__ = "0.1.0"

__all__ = [
    "BatchDelivery",
    "CommitFailedError",
    "ConfigError",
    "Consumer",
    "ConsumerConfig",
    "CorruptMetadataError",
    "CorruptRecordError",
    "DeadLetter",
    "Delivery",
    "DeliveryLostError",
    "DiskFullError",
    "GroupNotEmptyError",
    "IllegalStateError",
    "InvalidProducerEpochError",
    "InvalidTopicError",
    "Log",
    "LogClosedError",
    "Message",
    "MqlogError",
    "NoOffsetForPartitionError",
    "OffsetOutOfRangeError",
    "PartitionDescription",
    "PendingMessage",
    "PendingPartition",
    "PendingSummary",
    "Producer",
    "ProducerBatch",
    "ProducerConfig",
    "ProducerSequenceError",
    "QueueConsumer",
    "QueueMessage",
    "ReadOnlyError",
    "ReceivedMessage",
    "Record",
    "RecordColumns",
    "RecordMetadata",
    "RecordTooLargeError",
    "RemoteHandlerError",
    "StorageFailedError",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "TopicPartition",
    "UnknownGroupError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "open",
]
