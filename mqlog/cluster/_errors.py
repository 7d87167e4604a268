"""librdkafka's errors as mqlog's: one translation for every call to the cluster.

:func:`translated` wraps a call: a ``KafkaException`` (or a failed future's)
becomes the MqlogError subclass a log directory would have raised for the same
mistake (UnknownTopicError, TopicExistsError, GroupNotEmptyError...), a
feature the cluster lacks becomes UnsupportedError naming the operation, and
anything else a plain MqlogError with librdkafka's message (``retriable`` as
librdkafka says).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from confluent_kafka import KafkaError, KafkaException

from mqlog.errors import (
    CommitFailedError,
    ConfigError,
    GroupNotEmptyError,
    IllegalGenerationError,
    InvalidTopicError,
    MqlogError,
    RecordTooLargeError,
    TopicExistsError,
    UnknownGroupError,
    UnknownMemberError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsupportedError,
)

_BY_CODE: dict[int, type[MqlogError]] = {
    KafkaError.UNKNOWN_TOPIC_OR_PART: UnknownTopicError,
    KafkaError._UNKNOWN_TOPIC: UnknownTopicError,
    KafkaError._UNKNOWN_PARTITION: UnknownPartitionError,
    KafkaError.TOPIC_ALREADY_EXISTS: TopicExistsError,
    KafkaError.TOPIC_EXCEPTION: InvalidTopicError,
    KafkaError.INVALID_PARTITIONS: ConfigError,
    KafkaError.INVALID_CONFIG: ConfigError,
    KafkaError.INVALID_REPLICATION_FACTOR: ConfigError,
    KafkaError.POLICY_VIOLATION: ConfigError,
    KafkaError._INVALID_ARG: ConfigError,
    KafkaError.MSG_SIZE_TOO_LARGE: RecordTooLargeError,
    KafkaError.INVALID_MSG_SIZE: RecordTooLargeError,
    KafkaError.GROUP_ID_NOT_FOUND: UnknownGroupError,
    KafkaError._UNKNOWN_GROUP: UnknownGroupError,
    KafkaError.NON_EMPTY_GROUP: GroupNotEmptyError,
    KafkaError.UNKNOWN_MEMBER_ID: UnknownMemberError,
    KafkaError.ILLEGAL_GENERATION: IllegalGenerationError,
    KafkaError.REBALANCE_IN_PROGRESS: CommitFailedError,
}
_UNSUPPORTED = {KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION,
                KafkaError._NOT_IMPLEMENTED}


def as_mqlog_error(error: KafkaError, operation: str) -> MqlogError:
    """The MqlogError for librdkafka's ``error`` in ``operation``."""
    code = error.code()
    message = f"{operation}: {error.str()}"
    if code in _UNSUPPORTED:
        return UnsupportedError(operation, f"the cluster does not offer it ({error.str()})")
    kind = _BY_CODE.get(code)
    if kind is not None:
        return kind(message)
    failure = MqlogError(message)
    failure.retriable = bool(error.retriable())
    return failure


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Raise librdkafka's errors in the block as mqlog's (see the module)."""
    try:
        yield
    except KafkaException as exception:
        error = exception.args[0] if exception.args else None
        if not isinstance(error, KafkaError):
            raise MqlogError(f"{operation}: {exception}") from exception
        raise as_mqlog_error(error, operation) from exception
