"""Kafka error codes for what the storage engine raises on produce and fetch.

One table, most specific class first; anything else a client caused is
``UNKNOWN_SERVER_ERROR`` with the message logged.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from mqlog.errors import (
    CorruptRecordError,
    DiskFullError,
    InvalidProducerEpochError,
    InvalidRecordBatchError,
    LogClosedError,
    OffsetOutOfRangeError,
    ProducerSequenceError,
    ReadOnlyError,
    RecordTooLargeError,
    StorageFailedError,
    UnknownPartitionError,
    UnknownTopicError,
)

_CODES: tuple[tuple[type[Exception], ErrorCode], ...] = (
    (UnknownTopicError, ErrorCode.unknown_topic_or_partition),
    (UnknownPartitionError, ErrorCode.unknown_topic_or_partition),
    (OffsetOutOfRangeError, ErrorCode.offset_out_of_range),
    (RecordTooLargeError, ErrorCode.message_too_large),
    (InvalidProducerEpochError, ErrorCode.invalid_producer_epoch),
    (ProducerSequenceError, ErrorCode.out_of_order_sequence_number),
    (CorruptRecordError, ErrorCode.corrupt_message),
    (DiskFullError, ErrorCode.kafka_storage_error),
    (StorageFailedError, ErrorCode.kafka_storage_error),
    (ReadOnlyError, ErrorCode.kafka_storage_error),
    (LogClosedError, ErrorCode.kafka_storage_error),
)


def storage_error_code(error: Exception) -> ErrorCode:
    """The Kafka error code a produce or fetch answers ``error`` with."""
    if isinstance(error, InvalidRecordBatchError):
        return ErrorCode.corrupt_message if error.corrupt else ErrorCode.invalid_record
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return ErrorCode.unknown_server_error
