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
    GroupDescription,
    GroupPartitionDescription,
    MemberDescription,
    PendingMessage,
    PendingPartition,
    PendingSummary,
    QueueConsumer,
    QueueMessage,
    QueuePartitionDescription,
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
    IllegalGenerationError,
    IllegalStateError,
    InvalidProducerEpochError,
    InvalidRecordBatchError,
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
    UnknownMemberError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsupportedError,
)
from mqlog.log import Log, open
from mqlog.logstore import (
    Message,
    PartitionDescription,
    ProducerBatch,
    Record,
    RecordColumns,
    TopicConfig,
    TopicDescription,
)
from mqlog.producer import BatchDelivery, Delivery, Producer, ProducerConfig, RecordMetadata
from mqlog.request import Responder

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
    "GroupDescription",
    "GroupNotEmptyError",
    "GroupPartitionDescription",
    "IllegalGenerationError",
    "IllegalStateError",
    "InvalidProducerEpochError",
    "InvalidRecordBatchError",
    "InvalidTopicError",
    "Log",
    "LogClosedError",
    "MemberDescription",
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
    "QueuePartitionDescription",
    "ReadOnlyError",
    "ReceivedMessage",
    "Record",
    "RecordColumns",
    "RecordMetadata",
    "RecordTooLargeError",
    "RemoteHandlerError",
    "Responder",
    "StorageFailedError",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "TopicPartition",
    "UnknownGroupError",
    "UnknownMemberError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "UnsupportedError",
    "open",
]
