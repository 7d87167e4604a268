"""The mqlog exception hierarchy.

Every error mqlog raises on purpose is a subclass of :class:`MqlogError`::

    MqlogError
    ├── ConfigError                  bad configuration value or combination
    ├── InvalidTopicError            topic name breaks the naming rules
    ├── TopicExistsError             create_topic on a name already in use
    ├── UnknownTopicError            the topic does not exist
    ├── UnknownPartitionError        the topic has no such partition
    ├── RecordTooLargeError          a record exceeds max_record_bytes
    ├── InvalidRecordBatchError      a Kafka record batch that is malformed or unsupported
    ├── OffsetOutOfRangeError        an offset outside [start_offset, end_offset]
    ├── CorruptRecordError           a batch on disk fails its checksum or framing
    ├── CorruptMetadataError         a metadata file (mqlog.json, topic.json) cannot be read
    ├── LogClosedError               the Log (or one of its parts) is closed
    ├── ReadOnlyError                a write through a Log opened with read_only=True
    ├── NoOffsetForPartitionError    no committed offset and auto_offset_reset="error"
    ├── CommitFailedError            a commit for a partition this member does not own
    │   ├── UnknownMemberError           ... or from a member id the group does not know (any more)
    │   └── IllegalGenerationError       ... or with a generation that is not the member's
    ├── GroupNotEmptyError           an admin change refused while the group has members
    ├── IllegalStateError            a call that does not fit the client's state
    ├── UnknownGroupError            no consumer or queue group of that name
    ├── DeliveryLostError            a queue ack/nack after another worker took the message
    ├── RemoteHandlerError           a request's handler raised (its error's type and message)
    ├── ProducerSequenceError        an idempotent producer's batch out of sequence
    │   └── InvalidProducerEpochError    ... sent with an epoch older than the producer's
    ├── DiskFullError (OSError)      no space for a write (errno ENOSPC); retriable
    ├── StorageFailedError           a flush failed: the partition refuses writes until reopened
    └── UnsupportedError             an operation a Kafka cluster (``kafka://``) cannot do

Errors caused by bad input are raised before anything is written: a rejected
call leaves the log directory unchanged. Each error carries a message that says
what was wrong and, where it helps, the valid alternative.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable as _Callable


class MqlogError(Exception):
    """Root of every error mqlog raises on purpose."""

    #: True when retrying the same call later may succeed.
    retriable: bool = False


class ConfigError(MqlogError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class InvalidTopicError(MqlogError, ValueError):
    """A topic name breaks the rules: ``[a-zA-Z0-9._-]``, 1..249 chars, not ``.``/``..``."""


class TopicExistsError(MqlogError):
    """``create_topic`` was asked for a name that already exists."""


class UnknownTopicError(MqlogError, KeyError):
    """The topic does not exist in this log directory."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownPartitionError(MqlogError, KeyError):
    """The topic exists but has no partition with that number."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RecordTooLargeError(MqlogError, ValueError):
    """A record's encoded size is over the topic's ``max_record_bytes``."""


class InvalidRecordBatchError(MqlogError, ValueError):
    """A Kafka record batch offered for append is malformed (``corrupt``: its
    CRC or a length is wrong) or of a kind mqlog does not store (an old magic,
    a transactional or control batch, an unknown compression codec)."""

    def __init__(self, message: str, *, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt

    def __reduce__(self):
        return _rebuild_invalid_batch, (str(self), self.corrupt)


def _rebuild_invalid_batch(message: str, corrupt: bool) -> InvalidRecordBatchError:
    return InvalidRecordBatchError(message, corrupt=corrupt)


class OffsetOutOfRangeError(MqlogError, IndexError):
    """An offset below the log start or beyond the log end.

    ``start_offset`` and ``end_offset`` give the valid range: offsets from
    ``start_offset`` up to and including ``end_offset`` may be read (reading
    at ``end_offset`` returns no records).
    """

    def __init__(self, message: str, *, offset: int, start_offset: int, end_offset: int):
        super().__init__(message)
        self.offset = offset
        self.start_offset = start_offset
        self.end_offset = end_offset


class CorruptRecordError(MqlogError):
    """A batch on disk failed its checksum or framing checks.

    Carries where: ``topic``, ``partition``, ``offset`` (the first offset that
    could not be served) and ``file`` (the segment file's path); and how far
    the damage reaches: offsets ``damaged_start`` to ``damaged_end``
    (inclusive) cannot be read, and ``next_offset`` (``damaged_end + 1``) is
    the first offset after them that can (it may be the end offset, where
    nothing is written yet). These three are None when unknown. Reading from
    ``next_offset`` goes on past the damage; ``mqlog repair`` removes it.
    """

    def __init__(self, message: str, *, topic: str, partition: int, offset: int, file: str,
                 damaged_start: int | None = None, damaged_end: int | None = None,
                 next_offset: int | None = None):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.file = file
        self.damaged_start = damaged_start
        self.damaged_end = damaged_end
        self.next_offset = next_offset


class CorruptMetadataError(MqlogError):
    """A metadata file (``mqlog.json``, a topic's ``topic.json``) is damaged: it is
    not the JSON mqlog writes. ``file`` names it. mqlog writes these files whole
    (temp file, fsync, rename), so only damage from outside makes one unreadable;
    restore it from a copy, or rewrite it as docs/format.md describes."""

    def __init__(self, message: str, *, file: str):
        super().__init__(message)
        self.file = file


class LogClosedError(MqlogError):
    """An operation on a Log, partition or client that was already closed."""


class ReadOnlyError(MqlogError):
    """A call that would write (append, commit, create or delete a topic, retention,
    compaction...) on a Log opened with ``read_only=True``. Nothing was written."""


class NoOffsetForPartitionError(MqlogError):
    """A partition has no committed offset and ``auto_offset_reset`` is ``error``."""


class CommitFailedError(MqlogError):
    """A commit named a partition this group member does not own (any more).

    The committed offset did not move. Typical cause: the member did not poll
    within ``max_poll_interval_ms``, or the group rebalanced and the partition
    went to another member; the records since the last commit will be
    processed again by the new owner.
    """


class UnknownMemberError(CommitFailedError):
    """A member id the group does not know (any more): the member left, or it was
    removed because it did not poll or heartbeat within its session timeout
    (Kafka's UNKNOWN_MEMBER_ID). Raised by commits and by the group membership's
    heartbeat and sync; the member must join again, under a new member id."""


class IllegalGenerationError(CommitFailedError):
    """A commit or sync named a generation of the group that is not the member's
    current one: it comes from before a rebalance the member has gone through
    since, or from a generation that never existed (Kafka's ILLEGAL_GENERATION).
    The member must join (or sync) again to learn the current generation."""


class GroupNotEmptyError(MqlogError):
    """The group has live members; stop them first (as Kafka refuses too)."""


class IllegalStateError(MqlogError):
    """A call that does not fit the client's state, e.g. ``assign`` after ``subscribe``."""


class DeliveryLostError(MqlogError):
    """A queue message's ack, nack or extend came after its lock ran out and
    another worker took it; that worker will process it (again)."""


class RemoteHandlerError(MqlogError):
    """The responder's handler raised while answering a request (``Log.request``).

    ``type_name`` is the name of the exception's class (e.g. ``"KeyError"``) and
    ``message`` its text, as the responder saw them: the exception itself stays
    in the responder's process. The request was answered and acked, so it is
    not retried; send it again to retry.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"the responder's handler raised {type_name}: {message}"
                         if message else f"the responder's handler raised {type_name}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self):
        return RemoteHandlerError, (self.type_name, self.message)


class ProducerSequenceError(MqlogError):
    """An idempotent append came with sequence numbers that neither follow the
    producer's last append nor repeat one of its last 5 (Kafka's
    OutOfOrderSequence: two producers share an id, or appends were lost)."""


class InvalidProducerEpochError(ProducerSequenceError):
    """An idempotent append came with an epoch older than the producer's current
    one: a newer instance of the producer fenced this one (Kafka's
    InvalidProducerEpoch)."""


class UnknownGroupError(MqlogError, KeyError):
    """No consumer group (or queue group) of that name has members or offsets."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DiskFullError(MqlogError, OSError):
    """The file system had no room for a write (``errno`` is ``ENOSPC``).

    Nothing was published: the call that raised it wrote no record, commit or
    ack, and what was acknowledged before is intact. The same call succeeds
    again once space is freed, in the same process, without reopening.
    Carries ``filename`` (the file that could not grow) and ``bytes_needed``.
    """

    retriable = True

    def __init__(self, message: str, *, filename: str, bytes_needed: int,
                 code: int = _errno.ENOSPC) -> None:
        OSError.__init__(self, code, message, filename)
        self.bytes_needed = bytes_needed

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[_Callable[..., DiskFullError], tuple[object, ...]]:
        return _rebuild_disk_full, (self.strerror, self.filename, self.bytes_needed, self.errno)


def _rebuild_disk_full(message: str, filename: str, bytes_needed: int,
                       code: int) -> DiskFullError:
    return DiskFullError(message, filename=filename, bytes_needed=bytes_needed, code=code)


class StorageFailedError(MqlogError):
    """Storage failed under a partition (or a queue's state): an fsync or a write
    reported an I/O error, so data this process wrote may not be on disk.

    The failure is latched: every later write to it in this process raises this
    error again, naming the first failure (``original``, also the
    ``__cause__``); a failed flush is never retried silently. Close the log and
    open it again (opening runs recovery) once the storage is sound.
    """

    def __init__(self, message: str, *, original: BaseException) -> None:
        super().__init__(message)
        self.original = original
        self.__cause__ = original

    def __reduce__(self) -> tuple[_Callable[..., StorageFailedError], tuple[object, ...]]:
        return _rebuild_storage_failed, (self.args[0], self.original)


def _rebuild_storage_failed(message: str, original: BaseException) -> StorageFailedError:
    return StorageFailedError(message, original=original)


class UnsupportedError(MqlogError):
    """An operation the log cannot do where it runs: on a Kafka cluster opened with
    ``mqlog.open("kafka://...")``, queue groups, durability classes, local
    retention and compaction calls, and what the cluster does not offer (say,
    DeleteRecords). ``operation`` names it; the message says why. Nothing was
    changed."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation} is not supported here: {reason}")
        self.operation = operation
        self.reason = reason

    def __reduce__(self) -> tuple[_Callable[..., UnsupportedError], tuple[object, ...]]:
        return UnsupportedError, (self.operation, self.reason)
