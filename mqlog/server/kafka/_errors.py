"""mqlog's errors as Kafka error codes: the one mapping every handler uses.

:func:`error_code` walks the exception's class hierarchy, so the most
specific mapping wins (``UnknownMemberError`` before ``CommitFailedError``);
an error with no mapping (and any exception that is not an ``MqlogError``)
is ``UNKNOWN_SERVER_ERROR``. ``ValueError``/``TypeError`` from validating a
client's input (an unknown topic option) are ``INVALID_CONFIG`` only where a
handler says so; here they are not guessed at.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from mqlog.errors import (
    CommitFailedError,
    ConfigError,
    CorruptMetadataError,
    CorruptRecordError,
    DiskFullError,
    GroupNotEmptyError,
    IllegalGenerationError,
    InvalidProducerEpochError,
    InvalidRecordBatchError,
    InvalidTopicError,
    LogClosedError,
    MqlogError,
    OffsetOutOfRangeError,
    ProducerSequenceError,
    ReadOnlyError,
    RecordTooLargeError,
    StorageFailedError,
    TopicExistsError,
    UnknownGroupError,
    UnknownMemberError,
    UnknownPartitionError,
    UnknownTopicError,
)

#: mqlog error class -> the Kafka error code a client is answered with.
ERROR_CODES: dict[type[MqlogError], ErrorCode] = {
    UnknownTopicError: ErrorCode.unknown_topic_or_partition,
    UnknownPartitionError: ErrorCode.unknown_topic_or_partition,
    InvalidTopicError: ErrorCode.invalid_topic_exception,
    TopicExistsError: ErrorCode.topic_already_exists,
    ConfigError: ErrorCode.invalid_config,
    RecordTooLargeError: ErrorCode.message_too_large,
    OffsetOutOfRangeError: ErrorCode.offset_out_of_range,
    # Damage on disk and failed writes: Kafka's KAFKA_STORAGE_ERROR (retriable:
    # the client refreshes metadata and tries again).
    CorruptRecordError: ErrorCode.kafka_storage_error,
    CorruptMetadataError: ErrorCode.kafka_storage_error,
    DiskFullError: ErrorCode.kafka_storage_error,
    StorageFailedError: ErrorCode.kafka_storage_error,
    # The log is closing under the server (shutdown): retriable, as a moving leader.
    LogClosedError: ErrorCode.leader_not_available,
    ReadOnlyError: ErrorCode.policy_violation,
    CommitFailedError: ErrorCode.rebalance_in_progress,
    UnknownMemberError: ErrorCode.unknown_member_id,
    IllegalGenerationError: ErrorCode.illegal_generation,
    GroupNotEmptyError: ErrorCode.non_empty_group,
    UnknownGroupError: ErrorCode.group_id_not_found,
    ProducerSequenceError: ErrorCode.out_of_order_sequence_number,
    InvalidProducerEpochError: ErrorCode.invalid_producer_epoch,
}


def error_code(error: BaseException) -> ErrorCode:
    """The Kafka error code for ``error`` (see the module docstring)."""
    if isinstance(error, InvalidRecordBatchError):  # a bad CRC or length, or a kind refused
        return ErrorCode.corrupt_message if error.corrupt else ErrorCode.invalid_record
    for cls in type(error).__mro__:
        code = ERROR_CODES.get(cls)
        if code is not None:
            return code
    return ErrorCode.unknown_server_error


def error_message(error: BaseException) -> str:
    """The text a response's ``error_message`` carries: the error's own message,
    on one line."""
    return " ".join(str(error).split()) or type(error).__name__
